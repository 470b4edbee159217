"""Two sizes of one experiment: ``paper`` (the paper's data, architecture and hyperparameters, for a GPU cluster)
and ``ci`` (the same grid shape on digits / two-rings / the bundled MNIST sample, minutes on 2 CPU cores).

Why overlays in one file instead of two files: the two sizes must stay the *same experiment* (same attacks, same
grid shape, same table cells), and one file makes a divergence visible in review. The top of the file is the
``paper`` version; ``scales.ci`` is an overlay merged onto it::

    name: deep-bayes-fig3
    paper: 001_c207276a6492ab58.txt (§4.1 Fig. 3)
    dataset: {name: mnist}
    model: {name: gfz, dim_z: 64, hidden: 500}
    ...
    scales:
      ci:                                  # merged onto the file: mappings merge key by key, anything else replaces
        dataset: {name: digits}
        model: {dim_z: 16, hidden: 256}
        attacks.1.steps: 10                # a dotted key sets one place (list items by index), like --set
      smoke: {train.epochs: 1}             # optional: extra shrinking for --smoke, on top of the generic one

``scale:`` at top level names the size the top of the file is at, and so the default (``paper`` when absent); the
other size is the overlay (a laptop-first file such as the quickstart says ``scale: ci`` and overlays
``scales.paper``). ``--smoke`` shrinks whichever scale was
chosen to the smallest run that still fills every table cell (:func:`smoke_overlay`): one training epoch, a few
test examples, the first seed only, score-based attacks at a few queries per step, iterative attacks (and a
detector's own fitting attack, ``fit_steps``) cut to a few steps with the step size raised so that steps ×
step_size is unchanged (the reach check still passes and ε
keeps its meaning).
A resolved spec records ``scale`` (and ``smoke``), and its sweep is named ``<name>-<scale>`` (``-smoke`` added),
so the two sizes of one experiment never share a sweep folder.
"""
from __future__ import annotations

import copy
from typing import Any

from robustsweep.errors import UsageError

SCALES = ("ci", "mini", "paper")  # small -> large; --scale choices everywhere come from here
SMOKE_EPOCHS = 1
SMOKE_N_EVAL = 24
SMOKE_N_FIT = 200  # clean images the detectors fit on under --smoke
SMOKE_STEPS = 3  # iterative attacks: at most this many steps (step size raised to keep the travel)
SMOKE_CW_STEPS = 5  # optimisation attacks (CW ...): at most this many steps
SMOKE_QUERIES = 8  # score-based attacks: at most this many queries per step (the knob their entry names: ``queries=``)


class ScaleError(UsageError):
    """An unknown scale, or a scale the experiment file does not define."""


def merge(base: Any, overlay: Any) -> Any:
    """``overlay`` onto ``base``: mappings merge key by key (recursively), anything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for k, v in overlay.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(overlay)


def set_path(doc: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.0.c`` in a YAML document (numeric parts index lists); missing mapping keys are created."""
    parts = key.split(".")
    node: Any = doc
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def apply_overlay(doc: dict[str, Any], overlay: dict[str, Any], where: str) -> dict[str, Any]:
    """Merge the plain keys of ``overlay`` onto ``doc``, then set its dotted keys (``attacks.1.steps: 10``)."""
    if not isinstance(overlay, dict):
        raise ScaleError(f"{where}: expected a mapping of keys to replace, got {type(overlay).__name__}")
    plain = {k: v for k, v in overlay.items() if "." not in str(k)}
    out = merge(copy.deepcopy(doc), plain)  # never mutate the caller's document
    for k, v in overlay.items():
        if "." in str(k):
            try:
                set_path(out, str(k), copy.deepcopy(v))
            except (IndexError, ValueError, TypeError, AttributeError, KeyError):
                raise ScaleError(f"{where}.{k}: no such place in the experiment file") from None
    return out


def available_scales(doc: dict[str, Any]) -> list[str]:
    """The scales a raw experiment file offers: ``paper`` (its top) plus each overlay under ``scales``."""
    default = str(doc.get("scale") or "paper")
    overlays = doc.get("scales") or {}
    return [s for s in SCALES if s == default or s in overlays]


def resolve_scale(doc: dict[str, Any], scale: str | None = None, *, smoke: bool = False, prefer: str | None = None,
                  source: str = "<spec>") -> dict[str, Any]:
    """The experiment document at ``scale``, ``--smoke`` applied. ``scale`` None: ``prefer`` when the file offers
    it (``submit`` prefers ``paper``), else the file's own ``scale:`` (``paper`` when absent).

    Files without a ``scales`` section have one size: asking for another one is an error that says so.
    """
    overlays = doc.get("scales") or {}
    if not isinstance(overlays, dict):
        raise ScaleError(f"{source}: scales: expected a mapping like {{ci: {{...}}}}")
    unknown = sorted(set(overlays) - {*SCALES, "smoke"})
    if unknown:
        raise ScaleError(f"{source}: scales.{unknown[0]}: unknown scale; allowed: {', '.join(SCALES)}, smoke")
    default = str(doc.get("scale") or "paper")
    want = scale or (prefer if prefer in available_scales(doc) else default)
    if want not in SCALES:
        raise ScaleError(f"--scale {want}: unknown scale; choose one of {', '.join(SCALES)}")
    out = {k: v for k, v in doc.items() if k not in ("scales", "scale")}
    if default not in SCALES:
        raise ScaleError(f"{source}: scale: {default!r} is not one of {', '.join(SCALES)}")
    if want != default:
        if want not in overlays:
            raise ScaleError(f"{source}: no scales.{want} section: this file offers {', '.join(available_scales(doc))}"
                             f" (the top of the file is its {default!r} size; see robustsweep/config/scales.py)")
        out = apply_overlay(out, overlays[want], f"{source}: scales.{want}")
    if smoke:
        out = apply_overlay(out, smoke_overlay(out), f"{source}: --smoke")
        if "smoke" in overlays:
            out = apply_overlay(out, overlays["smoke"], f"{source}: scales.smoke")
    out["scale"], out["smoke"] = want, smoke
    return out


def smoke_overlay(doc: dict[str, Any]) -> dict[str, Any]:
    """The generic ``--smoke`` shrinking of a resolved document (module docstring), as dotted-key settings."""
    o: dict[str, Any] = {"train.epochs": SMOKE_EPOCHS}
    n_eval = (doc.get("eval") or {}).get("n_eval", "absent")
    if n_eval is None or n_eval == "absent" or int(n_eval) > SMOKE_N_EVAL:
        o["eval.n_eval"] = SMOKE_N_EVAL
    if doc.get("detectors"):  # detectors fit on fewer clean images (a K x C-pass score per image on deep-Bayes)
        o["eval.n_fit"] = SMOKE_N_FIT
    seeds = ((doc.get("search") or {}).get("seed") or {}).get("grid")
    if isinstance(seeds, list) and len(seeds) > 1:
        o["search.seed.grid"] = seeds[:1]
    for section, steps_key, step_key in (("attacks", "steps", "step_size"), ("detectors", "fit_steps", "fit_step_size")):
        for i, comp in enumerate(doc.get(section) or []):  # a detector's own fitting attack (energy) too
            if isinstance(comp, dict):
                o.update(_fewer_steps(f"{section}.{i}", comp, section, steps_key, step_key))
    for i, comp in enumerate(doc.get("attacks") or []):
        if isinstance(comp, dict):
            o.update(_fewer_queries(f"attacks.{i}", comp))
    return o


def _fewer_queries(where: str, comp: dict[str, Any]) -> dict[str, Any]:
    """A score-based attack's queries per step (ZOO's coordinates, SPSA's samples: the knob its registry entry names
    as ``queries=``) cut to SMOKE_QUERIES. Why: on a deep-Bayes model every query is K x C decoder passes, so the
    query batch, not the step count, is what a smoke run of a query attack pays for."""
    from robustsweep.registry import ATTACKS

    name = str(comp.get("name"))
    if name not in ATTACKS:
        return {}
    entry = ATTACKS.get(name)
    knob = entry.meta.get("queries")
    if not knob:
        return {}
    n = comp.get(knob, entry.defaults().get(knob))
    if isinstance(n, int) and not isinstance(n, bool) and n > SMOKE_QUERIES:
        return {f"{where}.{knob}": SMOKE_QUERIES}
    return {}


def _fewer_steps(where: str, comp: dict[str, Any], section: str, steps_key: str, step_key: str) -> dict[str, Any]:
    """Dotted settings cutting one component's iterations (in the file or a signature default) to SMOKE_STEPS with
    the same travel steps × step size; with no fixed step size (eps / steps, or none as in CW) to SMOKE_STEPS or
    SMOKE_CW_STEPS."""
    from robustsweep.registry import ATTACKS, DETECTORS

    reg = ATTACKS if section == "attacks" else DETECTORS
    name = str(comp.get("name"))
    params = reg.get(name).defaults() if name in reg else {}  # an unknown name: validation reports it
    steps = comp.get(steps_key, params.get(steps_key))
    if not isinstance(steps, int) or isinstance(steps, bool):
        return {}
    step = comp.get(step_key, params.get(step_key))
    if isinstance(step, (int, float)) and not isinstance(step, bool):
        if steps <= SMOKE_STEPS:
            return {}
        return {f"{where}.{steps_key}": SMOKE_STEPS, f"{where}.{step_key}": float(step) * steps / SMOKE_STEPS}
    if steps > SMOKE_CW_STEPS:
        return {f"{where}.{steps_key}": SMOKE_STEPS if step_key in params else SMOKE_CW_STEPS}
    return {}


def sweep_name(name: str, scale: str | None, smoke: bool, has_scales: bool) -> str:
    """``<name>-<scale>`` (``-smoke`` appended) for files with scales; a one-size file keeps its name."""
    if not has_scales:
        return name + ("-smoke" if smoke else "")
    return f"{name}-{scale}" + ("-smoke" if smoke else "")
