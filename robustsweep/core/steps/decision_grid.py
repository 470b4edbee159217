"""``eval.decision_grid``: decision and detector-acceptance regions on a 2-D grid on every row (paper 001 Fig. 2;
:mod:`robustsweep.core.decision_grid`). Added last, after the validation accuracy, under a forked RNG."""
from __future__ import annotations

from typing import Any

from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.registry import STEPS


@STEPS.register("decision_grid", order=70)
class DecisionGrid(Step):
    """The ``ex.grid_*`` / ``det.<d>.grid_reject`` columns of an n x n grid over the training data."""

    option = "decision_grid"

    def active(self, ev: Evaluation) -> bool:
        return ev.trial is not None and super().active(ev)

    def trial_columns(self, ev: Evaluation) -> dict[str, Any]:
        from robustsweep.core.decision_grid import grid_columns

        assert ev.trial is not None
        return grid_columns(ev.model, ev.detectors, ev.trial.data, ev.options.decision_grid)
