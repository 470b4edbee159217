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
    None when every need is met. Entries and models unknown to their registry are left to the registry check.
    A random model's need for EOT is a warning, not a refusal (:func:`warn_missing_eot`)."""
    model = (cfg.get("model") or {}).get("name")
    if model not in MODELS:
        return None
    warn_missing_eot(cfg)
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


def eot_of(attack: dict[str, Any], eval_eot: int | None) -> int | None:
    """The number of gradient draws an attack entry averages over: its own ``eot``, else the file's ``eval.eot``,
    else its signature default; None for an attack that takes no ``eot``."""
    if attack.get("name") not in ATTACKS:
        return None
    defaults = ATTACKS.get(attack["name"]).defaults()
    if "eot" not in defaults:
        return None
    eot = attack.get("eot", eval_eot if eval_eot is not None else defaults["eot"])
    return eot if isinstance(eot, int) else None  # a grid over eot is the user's explicit choice


def warn_missing_eot(cfg: dict[str, Any]) -> None:
    """Warn (once per process) for each white-box attack that takes ``eot`` but runs with one draw against a model
    the registry marks ``stochastic``: its gradient is one Monte-Carlo sample, so the attack is weaker than it
    looks and its accuracy an over-estimate (Athalye et al. 2018; AutoAttack checks for this too). The fix is
    ``eot: N`` on the attack or ``eval.eot: N`` for every attack of the file."""
    from robustsweep.config.reach import warn_once

    model = (cfg.get("model") or {}).get("name")
    if model not in MODELS or not MODELS.get(model).meta.get("stochastic"):
        return
    eval_eot = (cfg.get("eval") or {}).get("eot")
    for i, a in enumerate(cfg.get("attacks") or []):
        if not isinstance(a, dict) or a.get("name") not in ATTACKS:
            continue
        if ATTACKS.get(a["name"]).meta.get("threat") == "white-box" and eot_of(a, eval_eot) == 1:
            warn_once(f"attacks.{i} ({a['name']}) attacks the stochastic model {model!r} with eot = 1: one random "
                      f"gradient draw per step under-estimates its robustness; set eot: N on the attack or eval.eot: N "
                      f"for every attack (e.g. 10)")
