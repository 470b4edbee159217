"""ROAR (paper 000 Table 1): one row per remove-and-retrain point, after the evaluation (:mod:`robustsweep.core.roar`).

A ``roar`` attack entry is no attack on the trained model: the trial leaves it out of the attack loop and this step
adds its rows at the end. The evaluator's clean-only row (``attack = none``, when ROAR is all the trial runs) gives
way to them, as every ROAR row carries the clean accuracy too. ROAR retrains under a forked RNG, so what runs after
it draws what it draws without ROAR.
"""
from __future__ import annotations

from typing import Any

import torch

from robustsweep.core import roar as core_roar
from robustsweep.core.examples import forked_rng
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.registry import STEPS
from robustsweep.store import columns as col


@STEPS.register("roar", order=60)
class Roar(Step):
    """Remove-and-retrain rows (``attack = roar-<method>``, ``kind = retrain``) of the trial's ``roar`` entries."""

    def active(self, ev: Evaluation) -> bool:
        return ev.trial is not None and bool(retrain_entries(_attacks(ev)))

    def finish(self, ev: Evaluation, x: torch.Tensor, y: torch.Tensor, rows: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
        return with_roar(ev, rows, retrain_entries(_attacks(ev)), x, y)


def _attacks(ev: Evaluation) -> list[dict[str, Any]]:
    assert ev.trial is not None
    return [a.as_dict() for a in ev.trial.trial.attacks]


def retrain_entries(attacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The remove-and-retrain entries (``retrain=True`` in their registration) of an attack list."""
    return [a for a in attacks if core_roar.is_retrain(a)]


def with_roar(ev: Evaluation, rows: list[dict[str, Any]], retrains: list[dict[str, Any]], x: torch.Tensor,
              y: torch.Tensor) -> list[dict[str, Any]]:
    """``rows`` (less the clean-only row) plus one row per ROAR point of ``retrains``. The clean accuracy is that of
    ALL attacked points: an attack entry with its own n_eval reports that of its prefix."""
    assert ev.trial is not None
    env = ev.trial
    clean = next((m["clean_accuracy"] for m in rows if m.get("n_eval") == len(x)), None)
    if clean is None:
        from robustsweep.ops.train import accuracy

        with forked_rng(env.device):
            clean = float(accuracy(ev.model, x, y))

    def retrain(removed, key: dict[str, Any]) -> torch.nn.Module:
        return env.train(env.trial, removed, key)

    out = [m for m in rows if m.get("attack") != "none"]
    with forked_rng(env.device):
        for spec in retrains:
            out.extend({**r, col.KIND: col.RETRAIN}
                       for r in core_roar.roar_rows(spec, ev.model, env.data, x, y, clean, retrain, env.seed,
                                                    ev.batch_size, env.log))
    return out
