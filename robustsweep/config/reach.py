"""Can an iterative attack travel its radius? The reach rule of the spec validator (config/spec.py), in its own
module because it is one job: a refusal message for ``steps × step_size`` far below ε, a once-per-process warning
when only the random start makes up the difference."""
from __future__ import annotations

import sys
from typing import Any

from robustsweep.config.grid import split_grid
from robustsweep.registry import ATTACKS

_WARNED: set[str] = set()  # spec warnings this process printed already


def warn_once(msg: str) -> None:
    """``robustsweep: warning: <msg>`` once per process (validation runs per trial), on the current ``sys.stderr``
    (not through logging, whose handlers Ray may have bound to a stream that is closed by now)."""
    if msg not in _WARNED:
        _WARNED.add(msg)
        print(f"robustsweep: warning: {msg}", file=sys.stderr)


def reach_problem(where: str, comp: dict[str, Any]) -> str | None:
    """An iterative attack (registry ``iterative=True``) must be able to travel its radius, at every grid point.

    Rule (seeds README): without a random start steps × step_size >= eps, else refused (larger ε would silently
    repeat a smaller attack). With a random start an iterate can still reach the boundary: warned below eps (the
    paper's PGD, 40 × 0.01 at ε = 0.5), refused below eps / 2 (5 × 0.01). Absent keys take the signature defaults;
    ``step_size: null`` = eps / steps reaches eps exactly; no ``random_start`` parameter (mim, ifgsm) = none.
    Returns the refusal message (the caller raises it as a SpecError), None when accepted.
    """
    if not (entry := ATTACKS.get(comp["name"])).meta.get("iterative"):
        return None
    defaults = entry.defaults()
    key, values, fixed = split_grid(entry.fn, comp)
    short: list[str] = []
    refused: list[tuple[float, str]] = []  # (eps, reason): the largest unreachable eps is reported
    for v in values:
        p = {**defaults, **fixed, **({} if key is None else {key: v})}
        if p.get("eps") is None or p.get("steps") is None or p.get("step_size") is None:
            continue  # step_size None = eps / steps: reaches eps by construction
        eps, steps, step = float(p["eps"]), int(p["steps"]), float(p["step_size"])
        if eps <= 0 or (travel := steps * step) >= eps * (1 - 1e-9):  # tolerance: 30 × 0.01 vs 0.3 in floating point
            continue
        random_start = bool(p.get("random_start", False))
        if not random_start or travel < eps / 2:
            why = "no random start" if not random_start else "below eps / 2 even with the random start"
            refused.append((eps, f"{where}: steps × step_size = {travel:g} cannot reach eps = {eps:g} ({steps} × {step:g}, "
                                 f"{why}); raise steps or step_size (step_size >= {eps / max(steps, 1):.4g} at {steps} steps)"))
        else:
            short.append(f"{steps} × {step:g} = {travel:g} < eps = {eps:g}")
    if refused:
        return max(refused, key=lambda r: r[0])[1]
    if short:
        warn_once(f"{where} ({comp['name']}): steps × step_size = {'; '.join(short)}; accepted for its random start "
                   f"(as the deep-Bayes paper's PGD, 40 × 0.01 at eps = 0.5), but it cannot travel the full radius "
                   f"from its start; raise steps or step_size to be sure")
    return None
