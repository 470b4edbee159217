"""``eval.correct_for``: attack only the test points every named model classifies correctly (paper 001,
CIFAR-binary; :mod:`robustsweep.core.correct_subset`), the seeded ``n_eval`` subset of them; their count is
recorded as ``m.n_common_correct``."""
from __future__ import annotations

from typing import Any

import torch

from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.core.subset import seeded_indices
from robustsweep.registry import STEPS
from robustsweep.store import columns as col


@STEPS.register("correct_for", order=5)
class CorrectFor(Step):
    """The attacked points: the commonly-correct test points of the named models."""

    option = "correct_for"

    def active(self, ev: Evaluation) -> bool:
        return ev.trial is not None and super().active(ev)

    def select(self, ev: Evaluation) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any], torch.Tensor] | None:
        from robustsweep.core.correct_subset import common_correct

        env = ev.trial
        assert env is not None
        data = env.data
        mask = common_correct(env.trial.to_dict(), ev.model, data.x_test, data.y_test,
                              lambda v: env.train(v, data, None), ev.batch_size, env.log)
        if not mask.any():
            raise ValueError(f"eval.correct_for: no test point is classified correctly by all of "
                             f"{ev.options.correct_for}")
        pool = mask.nonzero().flatten()
        index = pool[seeded_indices(len(pool), ev.options.n_eval, env.seed)]
        return data.x_test[index], data.y_test[index], {col.metric("n_common_correct"): float(mask.sum())}, index
