"""``eval.examples``: example images on every row (paper 001 Fig. 6, 002 Figs. 1-2, 003 Fig. 4, 004 Fig. 4).

The pixels and predictions are those of :mod:`robustsweep.core.examples`; this step decides where they go: the
kept points move to the front where an attack entry's ``n_eval`` prefix would otherwise leave one out, the clean
columns are shared by every row, and every attack row gets its adversarials of the kept points.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from robustsweep.core import examples as ex
from robustsweep.core.craft import GridPoint
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.registry import STEPS

_IDX = "examples.idx"  # memo key: the kept points' indices after reorder


@STEPS.register("examples", order=10)
class Examples(Step):
    """Example images (``ex.*`` columns) of the kept attacked points on every row."""

    option = "examples"

    def reorder(self, ev: Evaluation, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                attacks: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = ex.example_indices(y, ev.options.examples)
        prefixes = [int(a["n_eval"]) for a in attacks if a.get("n_eval") is not None]
        if (order := ex.examples_first(idx, len(x), prefixes)) is not None:
            x, y, idx = x[order.to(x.device)], y[order.to(y.device)], torch.arange(len(idx))
            index = index[order.to(index.device)]
        ev.memo[_IDX] = idx
        return x, y, index

    def arrange(self, ev: Evaluation, pts: AttackPoints) -> AttackPoints:
        idx = ev.memo[_IDX]
        cols = ex.trial_columns(ev.model, pts.x, pts.y, pts.pred_clean, ev.options.examples, idx)
        return replace(pts, base={**pts.base, **cols}, kept=idx)

    def columns(self, ev: Evaluation, pts: AttackPoints, point: GridPoint) -> dict[str, Any]:
        if pts.kept is None:  # an n_eval prefix holding none of the examples: the row has no images of its own
            return {}
        return ex.row_columns(ev.model, point.x_adv, point.pred_adv, ev.options.examples, point.target, pts.kept)
