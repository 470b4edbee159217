"""The values a key of an experiment file may take: numeric domains of every hyperparameter, and sweep names.

Why one table instead of checks in each factory: a value outside its domain (``eps: -0.1``, ``train.lr: .nan``,
``model.dim_z: 0``, ``train.epochs: 0``) used to be accepted and then fail -- or worse, "succeed" -- in every trial,
on a cluster after a queue. The validator (:mod:`robustsweep.config.spec`) reads this table for every value of every
grid, every search value and the bounds of every random range, before anything is written or launched.

A domain is found, most specific first:

1. ``typing.Annotated`` constraints on the factory's parameter (a :class:`Domain`, or ``annotated_types``' ``Ge``,
   ``Gt``, ``Le``, ``Lt``, ``Interval`` -- what pydantic uses too), so a factory can declare its own beside the
   parameter: ``def pgd(..., eps: Annotated[float, Ge(0)] = 0.1)``;
2. ``DOMAINS["<kind>.<entry>.<param>"]`` (one entry's meaning of a shared name, e.g. APGD's ``alpha``);
3. ``DOMAINS["<kind>.<param>"]`` (``train.lr``, ``detector.alpha``);
4. ``DOMAINS["<param>"]`` (the name's meaning across the registries: ``eps``, ``steps``, ``dim_z``…).

A parameter with none of these only has to be a finite number when it is one. ``None`` (e.g. ``step_size: null``,
meaning "derive it") and non-numbers are left to the type check.
"""
from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass
from typing import Any

from robustsweep.registry import ATTACKS, DATASETS, DETECTORS, MODELS, Registry


@dataclass(frozen=True)
class Domain:
    """An interval of the real line; open or closed at each end, unbounded where the end is None."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def describe(self, name: str) -> str:
        """``eps ≥ 0``, ``lr > 0``, ``0 < target_fpr < 1``, ``0 ≤ rho ≤ 1``: how the error message states it."""
        lo = None if self.lo is None else f"{self.lo:g} {'<' if self.lo_open else '≤'} "
        hi = None if self.hi is None else f" {'<' if self.hi_open else '≤'} {self.hi:g}"
        if lo and hi:
            return f"{lo}{name}{hi}"
        if lo:
            return f"{name} {'>' if self.lo_open else '≥'} {self.lo:g}"
        if hi:
            return f"{name}{hi}"
        return f"{name} finite"


def ge(x: float) -> Domain:
    return Domain(lo=x)


def gt(x: float) -> Domain:
    return Domain(lo=x, lo_open=True)


POSITIVE, NONNEG, COUNT, UNIT, OPEN_UNIT = gt(0), ge(0), ge(1), Domain(0, 1), Domain(0, 1, True, True)
FINITE = Domain()

#: name -> domain (see the module docstring for the lookup order). A new parameter whose name is listed here gets
#: its domain without a line of code; a name with another meaning in one entry gets a ``kind.entry.param`` key.
DOMAINS: dict[str, Domain] = {
    # shared names
    "eps": NONNEG, "steps": COUNT, "step_size": POSITIVE, "lr": POSITIVE, "epochs": COUNT, "batch_size": COUNT,
    "dim_z": COUNT, "dim_m": COUNT, "hidden": COUNT, "layers": COUNT, "enc_layers": COUNT, "dec_layers": COUNT,
    "K": COUNT, "K_train": COUNT, "sigma": POSITIVE, "seed": NONNEG, "eot": COUNT, "target_fpr": OPEN_UNIT,
    "quantile": OPEN_UNIT, "coverage": OPEN_UNIT, "dropout": Domain(0, 1, hi_open=True), "n_eval": COUNT,
    "n_train": COUNT, "n_test": COUNT, "val_size": NONNEG, "test_size": OPEN_UNIT, "image_size": COUNT,
    "weight_decay": NONNEG, "threshold": UNIT, "max_iter": COUNT, "decay": NONNEG, "c": NONNEG, "kappa": NONNEG,
    "search_steps": NONNEG, "overshoot": NONNEG, "delta": POSITIVE, "samples": COUNT, "max_batch": COUNT,
    "draws": COUNT, "coords": COUNT, "h": POSITIVE, "beta1": Domain(0, 1, hi_open=True),
    "beta2": Domain(0, 1, hi_open=True), "n_seed": COUNT, "rounds": NONNEG, "aug_lambda": POSITIVE,
    "sub_epochs": COUNT, "sub_lr": POSITIVE, "rho": UNIT, "backbone_epochs": COUNT, "backbone_lr": POSITIVE,
    "backbone_batch_size": COUNT, "noise_var": NONNEG, "labels_per_class": COUNT, "tau_dec_k": POSITIVE,
    "fit_eps": NONNEG, "fit_steps": COUNT, "fit_step_size": POSITIVE, "num_samples": COUNT,
    # one entry's (or one section's) meaning of a shared name
    "attack.apgd.alpha": UNIT,  # momentum weight of Auto-PGD
    "model.gmmvae.alpha": NONNEG,  # weight of a loss term
    "eval.draws": NONNEG,  # 0: flip rate not measured
    "eval.batch_size": COUNT, "resources.cpus_per_trial": NONNEG, "resources.gpus_per_trial": NONNEG,
    "dataset.two-rings.sigma": NONNEG,  # ring noise: 0 is a valid noiseless data set
}

#: kind used in DOMAINS keys and messages, per registry
KINDS: dict[str, Registry] = {"dataset": DATASETS, "model": MODELS, "attack": ATTACKS, "detector": DETECTORS}


def annotated_domain(hint: Any) -> Domain | None:
    """The domain a ``typing.Annotated`` parameter annotation declares (None when it declares none)."""
    if typing.get_origin(hint) is not typing.Annotated:
        # Optional[Annotated[...]] = Union[Annotated[...], None]: look inside the union
        for arg in typing.get_args(hint):
            if (d := annotated_domain(arg)) is not None:
                return d
        return None
    lo = hi = None
    lo_open = hi_open = False
    for m in hint.__metadata__:
        if isinstance(m, Domain):
            return m
        for attr, open_ in (("ge", False), ("gt", True)):
            if getattr(m, attr, None) is not None:
                lo, lo_open = float(getattr(m, attr)), open_
        for attr, open_ in (("le", False), ("lt", True)):
            if getattr(m, attr, None) is not None:
                hi, hi_open = float(getattr(m, attr)), open_
    return None if lo is None and hi is None else Domain(lo, hi, lo_open, hi_open)


def domain_for(kind: str, entry: str | None, param: str) -> Domain | None:
    """The domain of ``param`` of registry entry ``entry`` (``kind`` in KINDS), or of a section key (``kind`` =
    ``train``, ``eval``, ``eval.counterfactual``, ``resources``, ``top`` and ``entry`` None)."""
    if kind in KINDS and entry is not None and entry in KINDS[kind]:
        try:
            hints = typing.get_type_hints(KINDS[kind].get(entry).fn, include_extras=True)
        except Exception:  # unresolvable annotation: fall back to the table
            hints = {}
        if param in hints and (d := annotated_domain(hints[param])) is not None:
            return d
    for key in (f"{kind}.{entry}.{param}", f"{kind}.{param}", param):
        if key in DOMAINS:
            return DOMAINS[key]
    return None


def violation(where: str, param: str, value: Any, domain: Domain | None) -> str | None:
    """The error line for ``value`` at ``where``, or None when it is fine (non-numbers are not judged here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        dom = f" (its domain: {domain.describe(param)})" if domain else ""
        return f"{where} = {value} is not a finite number{dom}"
    if domain is not None and value not in domain:
        return f"{where} = {value!r} is outside its domain {domain.describe(param)}"
    return None


def section_violation(section: str, values: dict[str, Any]) -> str | None:
    """First out-of-domain value of a plain section (``train``, ``eval``…): ``train.epochs = 0 is outside…``."""
    for k, v in values.items():
        if isinstance(v, dict):
            if (msg := section_violation(f"{section}.{k}", v)) is not None:
                return msg
        elif (msg := violation(f"{section}.{k}", k, v, domain_for(section, None, k))) is not None:
            return msg
    return None


def value_violation(cfg: dict[str, Any], path: str, value: Any) -> str | None:
    """Judge ``value`` as if it stood at dotted ``path`` of trial config ``cfg`` (a search value or bound)."""
    parts = path.split(".")
    head = parts[0]
    try:
        if head in ("dataset", "model") and len(parts) == 2:
            return violation(path, parts[1], value, domain_for(head, cfg[head].get("name"), parts[1]))
        if head in ("attacks", "detectors") and len(parts) == 3:
            entry = cfg[head][int(parts[1])].get("name")
            return violation(path, parts[2], value, domain_for(head[:-1], entry, parts[2]))
    except (KeyError, IndexError, ValueError, AttributeError):
        return None  # not a place of this config: the expansion reports it
    if head in ("train", "eval") and len(parts) >= 2:
        return violation(path, parts[-1], value, domain_for(".".join(parts[:-1]), None, parts[-1]))
    if len(parts) == 1:
        return violation(path, head, value, domain_for("top", None, head))
    return None


def trial_violation(cfg: dict[str, Any]) -> str | None:
    """First out-of-domain value of one concrete trial config: every component parameter (each value of an attack's
    grid list too), the train and eval sections, the seed."""
    for kind, where, comp in [("dataset", "dataset", cfg.get("dataset")), ("model", "model", cfg.get("model")),
                              *[("attack", f"attacks.{i}", c) for i, c in enumerate(cfg.get("attacks") or [])],
                              *[("detector", f"detectors.{i}", c) for i, c in enumerate(cfg.get("detectors") or [])]]:
        if not isinstance(comp, dict):
            continue  # the registry check names the problem
        for key, value in comp.items():
            if key in ("name", "label"):
                continue
            dom = domain_for(kind, comp.get("name") if isinstance(comp.get("name"), str) else None, key)
            for v in value if isinstance(value, list) else [value]:
                if (msg := violation(f"{where}.{key}", key, v, dom)) is not None:
                    return msg
    for section in ("train", "eval"):
        if isinstance(cfg.get(section), dict) and (msg := section_violation(section, cfg[section])) is not None:
            return msg
    return violation("seed", "seed", cfg.get("seed"), domain_for("top", None, "seed"))


def search_violation(base: dict[str, Any], search: dict[str, Any]) -> str | None:
    """Every grid / choice value and both bounds of every random range (``search`` maps a dotted key to a
    ``SearchDim``) inside the key's domain, judged on the spec's ``base`` config: no draw can then fall outside it
    (randint's upper bound is exclusive)."""
    for key, dim in search.items():
        values = getattr(dim, dim.kind)
        for v in (values[0], values[1] - 1) if dim.kind == "randint" else values:
            if (msg := value_violation(base, key, v)) is not None:
                return f"search.{key} ({dim.kind}): {msg}"
    return None


# -------------------------------------------------------------------------------------------------- names
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def name_violation(key: str, name: Any) -> str | None:
    """A sweep name becomes a folder under ``--results``: letters, digits, ``.``, ``_``, ``-``, not starting with a
    dot or dash, no ``..`` (so ``../../etc`` or ``/tmp/x`` can never leave the results folder)."""
    if not isinstance(name, str) or not SWEEP_NAME.fullmatch(name) or ".." in name:
        return (f"{key} = {name!r} is not a valid sweep name: use letters, digits, '.', '_' and '-', starting with a "
                f"letter or digit, without '..' (it names a folder inside --results)")
    return None
