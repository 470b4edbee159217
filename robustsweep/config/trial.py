"""One concrete trial: its wire format (a plain dict) and its typed, frozen value (:class:`Trial`).

A trial config is what :func:`robustsweep.config.spec.expand` produces and what every later layer receives (Tune,
SLURM array tasks, the store's ``config_json``). On the wire it stays a plain JSON-able dict -- Ray and submitit
pickle it, the store hashes it -- typed as :class:`TrialConfig`. Code that *reads* a trial validates it once with
:meth:`Trial.from_dict` and gets every default applied there, from the one place it is declared
(config/eval_options.py, config/train_options.py), instead of ``cfg["eval"].get("n_fit", 2000)`` at each use.

This module imports no pydantic at load time: ``status`` reads :func:`trial_label` on a login node.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from robustsweep.config.eval_options import EvalOptions
    from robustsweep.config.train_options import TrainOptions

SECTIONS = ("dataset", "model", "train", "eval", "attacks", "detectors", "seed")  # the keys every trial has


class TrialConfig(TypedDict, total=False):
    dataset: dict[str, Any]  # {"name": registry name, **loader options}
    model: dict[str, Any]  # {"name": registry name, **factory options}
    train: dict[str, Any]  # TrainOptions' dump (config/train_options.py)
    eval: dict[str, Any]  # EvalOptions' dump (config/eval_options.py)
    attacks: list[dict[str, Any]]  # [{"name": ..., one list-valued grid parameter, fixed params}]
    detectors: list[dict[str, Any]]
    seed: int
    config_hash: str  # hash without the seed: groups a config's seeds
    trial_id: str  # hash of everything: the store's key


def trial_label(cfg: TrialConfig | dict[str, Any]) -> str:
    """``gfz dim_z=8 seed=1``: the model and its options, used in progress lines and ``status``."""
    m = cfg.get("model", {})
    extra = " ".join(f"{k}={v}" for k, v in m.items() if k != "name")
    return f"{m.get('name', '?')}{' ' + extra if extra else ''} seed={cfg.get('seed')}"


def component_label(entry: dict[str, Any]) -> str:
    """The name an attack's rows (column ``attack``) or a detector's columns (``det.<label>.*``) carry: its
    ``label`` when the experiment file gives one (one entry listed twice), else its registry name."""
    return entry.get("label") or entry["name"]


@dataclass(frozen=True)
class Component:
    """A registry entry of a trial by name, with its parameters as the experiment file wrote them (an attack's
    grid list and its ``label`` / ``n_eval`` included; the registry's signature defaults are the entry's own)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)  # read-only by convention: a copy of the wire's

    @property
    def label(self) -> str:
        return component_label({"name": self.name, **self.params})

    def as_dict(self) -> dict[str, Any]:
        """The wire form ``{"name": ..., **params}`` (a copy)."""
        return {"name": self.name, **copy.deepcopy(self.params)}

    @classmethod
    def from_dict(cls, entry: Any, where: str) -> Component:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _spec_error(f"{where}: expected a mapping with a 'name' key")
        return cls(entry["name"], copy.deepcopy({k: v for k, v in entry.items() if k != "name"}))


@dataclass(frozen=True)
class Trial:
    """One concrete trial, validated, defaults applied, frozen. Build it with :meth:`from_dict`; :meth:`to_dict`
    gives the wire dict back unchanged (its identity, config/identity.py)."""

    dataset: Component
    model: Component
    train: TrainOptions
    eval: EvalOptions
    attacks: tuple[Component, ...]
    detectors: tuple[Component, ...]
    seed: int
    trial_id: str
    config_hash: str
    wire: dict[str, Any] = field(repr=False, compare=False)  # read-only by convention; use to_dict()

    @classmethod
    def from_dict(cls, cfg: TrialConfig | dict[str, Any] | Trial) -> Trial:
        """Validate a wire dict (raises :class:`robustsweep.config.spec.SpecError` naming the bad key). Its ids are
        kept when it has them (they are the store's keys), else computed by the identity rule. Registry checks
        (names, parameters, domains, needs / provides) are :func:`robustsweep.config.spec.validate_trial`'s. A
        :class:`Trial` is returned as it is (callers may take either)."""
        if isinstance(cfg, Trial):
            return cfg
        from pydantic import ValidationError

        from robustsweep.config.eval_options import EvalOptions
        from robustsweep.config.identity import ID_KEYS, with_identity
        from robustsweep.config.pydantic_errors import format_validation_error
        from robustsweep.config.train_options import TrainOptions

        if not isinstance(cfg, dict):
            raise _spec_error(f"a trial config must be a mapping, got {type(cfg).__name__}")
        if missing := [k for k in SECTIONS if k not in cfg]:
            raise _spec_error(f"trial config: missing {', '.join(missing)}")
        if unknown := sorted(set(cfg) - {*SECTIONS, *ID_KEYS}):
            raise _spec_error(f"trial config: unknown key {unknown[0]!r}; allowed: {', '.join(SECTIONS)}")
        seed = cfg["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise _spec_error(f"seed: expected an integer, got {seed!r}")
        sections = {}
        for name, model in (("train", TrainOptions), ("eval", EvalOptions)):
            try:
                sections[name] = model.model_validate(cfg[name])
            except ValidationError as e:
                raise _spec_error(format_validation_error(e, prefix=name, root=model)) from None
        for name in ("attacks", "detectors"):
            if not isinstance(cfg[name], list):
                raise _spec_error(f"{name}: expected a list, got {cfg[name]!r}")
        wire = copy.deepcopy(dict(cfg))
        if not all(isinstance(wire.get(k), str) for k in ID_KEYS):
            wire = with_identity({k: v for k, v in wire.items() if k not in ID_KEYS})
        return cls(dataset=Component.from_dict(cfg["dataset"], "dataset"),
                   model=Component.from_dict(cfg["model"], "model"),
                   train=sections["train"], eval=sections["eval"],
                   attacks=tuple(Component.from_dict(a, f"attacks.{i}") for i, a in enumerate(cfg["attacks"])),
                   detectors=tuple(Component.from_dict(d, f"detectors.{i}") for i, d in enumerate(cfg["detectors"])),
                   seed=seed, trial_id=wire["trial_id"], config_hash=wire["config_hash"], wire=wire)

    def to_dict(self) -> dict[str, Any]:
        """The wire dict this trial was built from, ids included (a copy): what Ray, SLURM and ``config_json`` get."""
        return copy.deepcopy(self.wire)

    def model_identity(self) -> dict[str, Any]:
        """What a trained model is a pure function of: the model-cache key (``models/cache.py``) of this trial,
        built from the wire sections so every existing cache entry is found (a copy)."""
        return copy.deepcopy({k: self.wire[k] for k in ("model", "dataset", "seed", "train")})

    @property
    def label(self) -> str:
        return trial_label(self.wire)


def _spec_error(msg: str) -> Exception:
    from robustsweep.errors import SpecError

    return SpecError(msg)
