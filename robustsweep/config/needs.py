"""Does the trial's model provide what its attacks and detectors need? A refusal before anything trains.

Registry metadata declares both sides: a model ``provides`` capabilities (``@MODELS.register("gmmvae", ...,
provides="gmmvae")``: a string or a tuple of them), an attack or detector ``needs`` one (``needs="gmmvae"``: paper
003's attacks and thresholds read the GMM-VAE's class means and τ). Read here through the registries, like every
other registry check of the validator (config/spec.py), so config/ never imports torch itself.
"""
from __future__ import annotations

from typing import Any

from robustsweep.registry import ATTACKS, DETECTORS, MODELS, Registry


def provided(model: str) -> tuple[str, ...]:
    """The capabilities registry model ``model`` declares (``provides=``), as a tuple."""
    p = MODELS.get(model).meta.get("provides") or ()
    return (p,) if isinstance(p, str) else tuple(p)


def needs_problem(cfg: dict[str, Any]) -> str | None:
    """The refusal message for the first attack or detector whose ``needs`` the trial's model does not provide,
    None when every need is met. Entries and models unknown to their registry are left to the registry check."""
    model = (cfg.get("model") or {}).get("name")
    if model not in MODELS:
        return None
    has = provided(model)
    for section, reg in (("attacks", ATTACKS), ("detectors", DETECTORS)):
        for i, entry in enumerate(cfg.get(section) or []):
            name = entry.get("name") if isinstance(entry, dict) else None
            need = reg.get(name).meta.get("needs") if name in reg else None
            if need is not None and need not in has:
                return _message(f"{section}.{i}", reg, name, need, model, has)
    return None


def _message(where: str, reg: Registry, name: str, need: str, model: str, has: tuple[str, ...]) -> str:
    givers = [e.name for e in MODELS.entries() if need in provided(e.name)]
    fix = f"use a model that provides it ({', '.join(givers)})" if givers else "no registered model provides it"
    return (f"{where}: {reg.kind} {name!r} needs a model that provides {need!r}, but model {model!r} provides "
            f"{', '.join(repr(h) for h in has) if has else 'nothing'}; {fix}, or remove {name!r} from this experiment")
