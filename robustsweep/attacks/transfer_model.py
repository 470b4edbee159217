"""Transfer from a *named* source model (paper 001 appendix A.3): white-box PGD crafted on another trained
classifier of the zoo, evaluated on the trial's model (the victim).

Appendix A.3 asks whether adversarials transfer between the seven deep-Bayes classifiers and the discriminative
baselines: the public code (deepgenerativeclassifier/DeepBayes, ``detect_attacks_logp.py --victim A --guard B``)
crafts on one trained model and evaluates on another. Here one trial = one victim, and each attack entry names a
source::

    attacks:
      - {name: transfer-from, label: from-gfz, source: {name: gfz, dim_z: 16, ...}, eps: [0.15], steps: 10, ...}

``source`` is a model section exactly like the experiment file's ``model:`` (a bare name = the registry defaults);
``None`` = the victim itself (white-box PGD: the matrix diagonal).

The source is trained with the *victim trial's* data set, seed and ``train`` settings, through the content-hashed
model cache (:mod:`robustsweep.models.cache`) under the very key :func:`robustsweep.core.trial.train_model` uses
(model section, data set, seed, train section). So a distinct source is trained once per sweep, not once per trial
-- and when the same sweep has that model as a victim (the A.3 grid does), source and victim are one cache entry,
trained once. A source equal to the victim's own model section is the victim object itself.

Why a hook: an attack function only sees ``(model, x, y)``; the training data, the data-set config, the seed and
the train config live in the trial (``core``, which attacks may not import). The trial hands them over once with
:func:`register_source_context` (``register_source_context(model, data, cfg, log)``), keyed weakly by the victim
model like :func:`robustsweep.attacks.transfer.register_substitute_data`.

Training or loading a source never moves the global random state (python, numpy, torch): a trial's rows are the
same whether its sources came from the cache or were trained in it (the property ``core.trial`` keeps for the
victim by re-seeding after training).
"""
from __future__ import annotations

import contextlib
import random
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustsweep.attacks._util import model_device
from robustsweep.attacks.pgd import pgd
from robustsweep.data.base import DataSplit
from robustsweep.registry import ATTACKS

Log = Callable[[str], None]


@dataclass(frozen=True)
class SourceContext:
    """What a source model is trained from: the victim trial's data, data-set config, seed, train config."""

    data: DataSplit
    dataset: dict[str, Any]
    train: dict[str, Any]
    seed: int
    victim_model: dict[str, Any]  # the victim's own model section (a source equal to it is the victim)
    log: Log | None = None


_CONTEXT: weakref.WeakKeyDictionary[torch.nn.Module, SourceContext] = weakref.WeakKeyDictionary()
# per victim: cache-key hash -> trained source (an eps grid and the evaluator's batches reuse it)
_SOURCES: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, torch.nn.Module]] = weakref.WeakKeyDictionary()


def register_source_context(model: torch.nn.Module, data: DataSplit, cfg: Any, log: Log | None = None) -> None:
    """Tell ``transfer-from`` how the trial of ``model`` trains models: its data split and its config's
    ``dataset``, ``seed``, ``train`` and ``model`` sections (``cfg`` is the trial config).

    The sources named by the config's ``transfer-from`` attacks are loaded (or trained) here, at once: their
    training then counts neither in an attack's ``attack_time_s`` nor in the order the attacks run. They are taken
    in the file's order starting after the victim's own section, so that parallel trials of one matrix (victims in
    that same order) train different sources at the same time instead of queueing on one cache lock."""
    _CONTEXT[model] = SourceContext(data=data, dataset=dict(cfg["dataset"]), train=dict(cfg["train"]),
                                    seed=int(cfg["seed"]), victim_model=dict(cfg["model"]), log=log)
    sources = [source_section(a["source"]) for a in cfg.get("attacks") or []
               if a.get("name") == "transfer-from" and a.get("source") is not None]
    start = sources.index(dict(cfg["model"])) + 1 if dict(cfg["model"]) in sources else 0
    for section in sources[start:] + sources[:start]:
        source_model(model, section)


def source_section(source: str | dict[str, Any]) -> dict[str, Any]:
    """A model section from ``source``: a name (registry defaults) or a section with a ``name`` key."""
    if isinstance(source, str):
        return {"name": source}
    if isinstance(source, dict) and isinstance(source.get("name"), str):
        return dict(source)
    raise ValueError(f"transfer-from source must be a model name or a model section with a 'name', got {source!r}")


def cache_key(section: dict[str, Any], ctx: SourceContext) -> dict[str, Any]:
    """The model-cache key of ``section`` trained in ``ctx``: the same dict ``core.trial.train_model`` builds
    (``{"model", "dataset", "seed", "train"}``), so a source and a victim of one sweep share their cache entry."""
    return {"model": section, "dataset": ctx.dataset, "seed": ctx.seed, "train": ctx.train}


@contextlib.contextmanager
def _rng_untouched(device: torch.device) -> Iterator[None]:
    """Run the block, then restore python's, numpy's and torch's (CPU and the device's) global random states."""
    py, npy = random.getstate(), np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def load_source(section: dict[str, Any], ctx: SourceContext, device: torch.device) -> tuple[torch.nn.Module, bool]:
    """(source model in eval mode on ``device``, loaded from the cache?). Built, seeded and trained exactly as
    ``core.trial.train_model`` builds a victim, in the cache folder the trial set (``models.cache.default_cache_dir``;
    none: trained in memory), under the entry's file lock, so parallel trials wanting one source train it once."""
    from robustsweep.models.cache import default_cache_dir, key_hash, load_or_train
    from robustsweep.ops.train import TrainConfig, fit, seed_everything
    from robustsweep.registry import MODELS

    entry = MODELS.get(section["name"])
    opts = {k: v for k, v in section.items() if k != "name"}
    key = cache_key(section, ctx)
    cache_dir = default_cache_dir()
    ckpt = Path(cache_dir) / f"{key_hash(key)}.ckpt" if cache_dir else None

    def build() -> torch.nn.Module:
        seed_everything(ctx.seed)
        return entry.fn(input_shape=ctx.data.input_shape, num_classes=ctx.data.num_classes, **opts)

    def train(m: torch.nn.Module) -> None:
        seed_everything(ctx.seed)
        fit(m, ctx.data, TrainConfig(**ctx.train), device, ctx.log, seed=ctx.seed, checkpoint=ckpt)

    if ctx.log:
        ctx.log(f"transfer-from: source {section['name']} ({key_hash(key)[:12]})")
    with _rng_untouched(device):
        model, cached = load_or_train(key, build, train, cache_dir, progress=ctx.log)
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    return model.to(device).eval(), cached


def source_model(victim: torch.nn.Module, source: str | dict[str, Any]) -> torch.nn.Module:
    """The trained source for ``victim``'s trial (the victim itself when the sections are equal); cached per victim."""
    from robustsweep.models.cache import key_hash

    try:
        ctx = _CONTEXT[victim]
    except KeyError:
        raise ValueError(
            "transfer-from with a source needs the victim trial's data and settings: call "
            "robustsweep.attacks.transfer_model.register_source_context(model, data, cfg) before attacking"
        ) from None
    section = source_section(source)
    if section == ctx.victim_model:
        return victim
    h = key_hash(cache_key(section, ctx))
    per_victim = _SOURCES.setdefault(victim, {})
    if h not in per_victim:
        per_victim[h], _ = load_source(section, ctx, model_device(victim))
    return per_victim[h]


@ATTACKS.register("transfer-from", norm="linf", budget="eps", threat="transfer", iterative=True,
                 prepare=register_source_context)
def transfer_from(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    source: str | dict[str, Any] | None = None,
    steps: int = 40,
    step_size: float = 0.01,
    random_start: bool = True,
    eot: int = 1,
) -> torch.Tensor:
    """Transfer (paper 001 A.3): white-box PGD on a named source model trained like the victim, evaluated on it.

    ``source``: a model section (``{name: gfz, dim_z: 16, ...}``) or name; None = the victim (white-box PGD).
    ``steps``, ``step_size``, ``random_start``, ``eot``: the PGD run on the source (as the ``pgd`` attack).
    """
    if eps == 0:
        return x.clone()
    src = model if source is None else source_model(model, source)
    return pgd(src, x, y, eps=eps, steps=steps, step_size=step_size, random_start=random_start, eot=eot)


def cache_info(model: torch.nn.Module) -> dict[str, Any]:
    """Which sources are held for ``model`` (tests and debugging)."""
    return {"n_sources": len(_SOURCES.get(model, {})), "has_context": model in _CONTEXT}
