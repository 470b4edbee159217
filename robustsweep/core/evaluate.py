"""Evaluate one trained model: clean predictions, then every attack over its whole grid, row by row.

The expensive part of a trial (training) happens once; this module sweeps the cheap parts (attack, ε, c, λ, α) on
that one model. Attacks run batched over the evaluation set (``batch_size`` is only a memory knob).

The loop knows no paper: what a row measures beyond an attack point's own metrics (detection, reclassification,
example images, the minimum perturbation, counterfactual speed, …) is a registered step of
:mod:`robustsweep.core.steps`, each in its own file; an attack point is crafted and judged in
:mod:`robustsweep.core.craft`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from robustsweep.config.eval_options import EvalOptions
from robustsweep.config.needs import eot_of
from robustsweep.core.craft import attack_grid, grid_points
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps import Evaluation, Step, active_steps
from robustsweep.ops.batching import predict
from robustsweep.store import columns as col

__all__ = ["Evaluation", "attack_grid", "evaluate", "run"]


def run(ev: Evaluation, x: torch.Tensor, y: torch.Tensor, attacks: list[dict[str, Any]],
        steps: list[Step] | None = None, index: torch.Tensor | None = None) -> Iterator[dict[str, Any]]:
    """Yield one row per (attack, grid value) of ``attacks`` on the points ``x`` / ``y`` (on the model's device),
    then the steps' extra rows; a clean-only row (``attack = none``) when there is nothing else to yield.
    ``index``: the points' indices in the test split (default 0 … n-1), what the per-example outcomes record."""
    steps = active_steps(ev) if steps is None else steps
    index = torch.arange(len(x)) if index is None else index.cpu()
    for s in steps:
        x, y, index = s.reorder(ev, x, y, index, attacks)
    pred_clean = predict(ev.model, x, ev.batch_size).to(y.device)
    pts = AttackPoints(x, y, pred_clean, {"n_eval": len(x), "clean_accuracy": (pred_clean == y).float().mean().item()},
                       index=index)
    for s in steps:
        pts = s.arrange(ev, pts)
    if not attacks and not any(s.adds_rows(ev) for s in steps):
        row = {**pts.base, "attack": "none", col.KIND: col.CLEAN}
        for s in steps:
            row.update(s.clean_columns(ev, pts))
        yield row
        return
    for spec in attacks:
        spec = with_eval_eot(spec, ev.options.eot)
        sub = pts.prefix(spec.get("n_eval"))
        points, rows = [], []
        for point in grid_points(ev.model, sub, spec, ev.detectors, ev.batch_size):
            row = point.row(sub)
            for s in steps:
                row.update(s.columns(ev, sub, point))
            ev.say(point.progress_line(row))
            points.append(point)
            rows.append(row)
        for s in steps:
            s.attack_done(ev, sub, points, rows)
        yield from rows
    for s in steps:
        yield from s.rows(ev, pts)


def with_eval_eot(spec: dict[str, Any], eot: int | None) -> dict[str, Any]:
    """The attack entry with the file's ``eval.eot`` where it takes ``eot`` and does not set it (its rows then record
    the draws it used)."""
    if eot is None or "eot" in spec or eot_of(spec, None) is None:
        return spec
    return {**spec, "eot": eot}


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: list[dict[str, Any]],
    detectors: dict[str, Any] | None = None,
    batch_size: int = 500,
    progress: Callable[[str], None] | None = None,
    counterfactual: dict[str, Any] | None = None,
    examples: dict[str, Any] | None = None,
    calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
    outcomes: bool = False,
) -> Iterator[dict[str, Any]]:
    """:func:`run` on a model outside a trial (tests, benchmarks, notebooks): the ``eval`` options
    ``counterfactual``, ``examples`` and ``outcomes`` as arguments (``outcomes`` off by default here: one row per
    attack point, as the caller listed them; on, the worst-case rows follow); ``calibration`` (clean held-out inputs
    and labels, never test data) is what a detector that refits per attack point fits on."""
    options = EvalOptions.model_validate({k: v for k, v in {"counterfactual": counterfactual, "examples": examples}.items()
                                          if v} | {"outcomes": outcomes})
    ev = Evaluation(model, options, detectors or {}, batch_size, progress, calibration)
    return run(ev, x, y, attacks)
