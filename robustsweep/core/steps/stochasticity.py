"""How random is the model's answer? ``m.flip_rate`` on every row of a stochastic model (issue 38, part 5).

A model the registry marks ``stochastic`` (deep-Bayes logits are K-sample Monte-Carlo estimates; BNN, causal and
fusion heads sample too) gives a fresh prediction on every call. Its rows then need two facts a reviewer asks for:
how often the clean prediction changes between draws (``m.flip_rate``: the fraction of attacked points whose
``eval.draws`` clean predictions are not all the same class; ``m.draws``), and whether the white-box attacks
averaged their gradients over draws (EOT; the validator warns where they do not, and the sanity section of every
report reads both). The draws run under a forked RNG, so every other number of the trial is the draw it was before.
"""
from __future__ import annotations

from typing import Any

import torch

from robustsweep.core.examples import forked_rng
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.ops.batching import model_device, predict
from robustsweep.registry import MODELS, STEPS
from robustsweep.store import columns as col


def is_stochastic(ev: Evaluation) -> bool:
    """Whether the trial's model is registered ``stochastic`` (False outside a trial: nothing to look it up by)."""
    if ev.trial is None:
        return False
    name = ev.trial.trial.model.name
    return name in MODELS and bool(MODELS.get(name).meta.get("stochastic"))


def flip_rate(model: torch.nn.Module, x: torch.Tensor, draws: int, batch_size: int) -> float:
    """Fraction of ``x`` whose ``draws`` predictions are not all one class (forked RNG: no later draw changes)."""
    if not len(x):
        return 0.0
    with forked_rng(model_device(model)):
        preds = torch.stack([predict(model, x, batch_size) for _ in range(draws)])
    return (preds != preds[0]).any(0).float().mean().item()


@STEPS.register("stochasticity", order=4)
class Stochasticity(Step):
    """``m.stochastic`` on every row of a trial; ``m.flip_rate`` / ``m.draws`` where the model is stochastic."""

    def active(self, ev: Evaluation) -> bool:
        return ev.trial is not None and ev.options.draws > 0

    def arrange(self, ev: Evaluation, pts: AttackPoints) -> AttackPoints:
        from dataclasses import replace

        cols: dict[str, Any] = {col.metric("stochastic"): is_stochastic(ev)}
        if cols[col.metric("stochastic")]:
            cols[col.metric("flip_rate")] = flip_rate(ev.model, pts.x, ev.options.draws, ev.batch_size)
            cols[col.metric("draws")] = float(ev.options.draws)
        return replace(pts, base={**pts.base, **cols})
