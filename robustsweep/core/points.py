"""The attacked test points of a trial, as one value: inputs, labels, clean predictions and the columns every row of
them shares.

Why a value: every attack entry attacks the same seeded points -- or, with its own ``n_eval: n``, their first n
(a prefix of the same subset, so its rows compare with the other attacks' on the same images). Cutting a prefix
used to mean cutting five parallel tensors and dicts by hand; :meth:`AttackPoints.prefix` does it in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from robustsweep.core import examples as ex


@dataclass(frozen=True)
class AttackPoints:
    """``x`` / ``y`` on the model's device, ``pred_clean`` the clean predictions the metrics count (one draw of a
    stochastic model, shared by every row), ``base`` the columns of every row (``n_eval``, ``clean_accuracy`` and
    what steps add), ``kept`` the indices of the example points (``eval.examples``) among them, or None; ``index``
    each point's index in the test split (the per-example outcomes name points by it)."""

    x: torch.Tensor
    y: torch.Tensor
    pred_clean: torch.Tensor
    base: dict[str, Any]
    kept: torch.Tensor | None = None
    index: torch.Tensor | None = None  # each point's index in the test split (None: 0, 1, … in order)

    @property
    def correct(self) -> torch.Tensor:
        """Clean prediction == label, per point."""
        return self.pred_clean == self.y

    def __len__(self) -> int:
        return len(self.x)

    def prefix(self, n: int | None) -> AttackPoints:
        """The first ``n`` points (all of them for None or n >= len). Their rows say so: ``n_eval`` = n and
        ``clean_accuracy`` of those n points (a row's success and accuracy are fractions of them). Their ``ex.*``
        columns hold the kept examples among the n (:func:`~robustsweep.core.examples.within_prefix`); none among
        them: the trial's, and ``kept`` None (the rows have no images of their own)."""
        if n is None or int(n) >= len(self.x):
            return self
        n = int(n)
        base = {**self.base, "n_eval": n, "clean_accuracy": self.correct[:n].float().mean().item()}
        kept = None
        if self.kept is not None and len(self.kept):
            base, kept = ex.within_prefix(base, self.kept, n)
        return replace(self, x=self.x[:n], y=self.y[:n], pred_clean=self.pred_clean[:n], base=base, kept=kept,
                       index=None if self.index is None else self.index[:n])

    @property
    def test_index(self) -> torch.Tensor:
        """``index``, or 0 … n-1 when the points were given without one."""
        return torch.arange(len(self.x)) if self.index is None else self.index.cpu()
