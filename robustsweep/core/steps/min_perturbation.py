"""``m.min_perturbation`` on every row of an ε grid of two or more values (paper 001, footnote 4): the mean over
initially-correct inputs of the smallest ε that fooled each one, max(ε) + 0.1 when none did."""
from __future__ import annotations

from typing import Any

import torch

from robustsweep.core.craft import GridPoint
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.ops.metrics import mean_minimum_perturbation
from robustsweep.registry import STEPS
from robustsweep.store import columns as col


@STEPS.register("min_perturbation", order=40)
class MinPerturbation(Step):
    """The mean minimum perturbation of an attack's ε grid, written on each of its rows."""

    def attack_done(self, ev: Evaluation, pts: AttackPoints, points: list[GridPoint], rows: list[dict[str, Any]]) -> None:
        if not points or points[0].key != "eps" or len(points) < 2:
            return
        mmp = mean_minimum_perturbation([p.value for p in points], torch.stack([p.success for p in points]),
                                        mask=pts.correct)
        for r in rows:
            r[col.metric("min_perturbation")] = mmp
