"""What an evaluation step is: the hooks the evaluation loop calls, and the context every hook receives.

The loop (:mod:`robustsweep.core.evaluate`) knows no paper. Every measurement beyond an attack point's own metrics
-- detection columns, eq. 9 reclassification, example images, the minimum perturbation of an ε grid, counterfactual
speed, ROAR, the decision grid, the commonly-correct subset -- is a :class:`Step` in its own file under
``core/steps/``, registered with ``@STEPS.register(name, order=…)`` and found the way attacks are. A step overrides
only the hooks it needs; the others are no-ops. Adding a per-row measurement is one new file.

Hooks, in the order a trial calls them:

1. ``select`` (trial): which test points are attacked (None: the seeded ``eval.n_eval`` subset);
2. ``reorder`` (before the clean prediction): the order of those points;
3. ``arrange``: columns every row shares (``AttackPoints.base``) and which points are kept as examples;
4. ``clean_columns``: the clean-only row of a trial without attacks;
5. ``columns``: per attack point, the step's columns of that row;
6. ``attack_done``: after the whole grid of one attack entry (e.g. a statistic over the grid);
7. ``rows``: extra rows after the attacks (``adds_rows`` says whether it will yield any);
8. ``finish`` (trial): the trial's rows, changed (ROAR replaces the clean-only row by its own);
9. ``trial_columns`` (trial): columns every row of the trial gets at the end;
10. ``artifacts`` (trial): files written beside the trial's rows (the per-example outcomes), as
    ``{name: columns}``; written before the trial's own file, so a trial that reads as finished has them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from robustsweep.config.eval_options import EvalOptions
from robustsweep.config.trial import Trial
from robustsweep.core.craft import GridPoint
from robustsweep.core.points import AttackPoints


@dataclass
class TrialEnv:
    """What a trial-level hook may need beyond the evaluated model: the typed trial and its data, where it runs, and
    ``train(trial, data, extra_key)`` -- the trial's own train-or-load-from-cache of another model (ROAR's retrained
    models, ``correct_for``'s variants; a :class:`~robustsweep.config.trial.Trial` or its wire dict)."""

    trial: Trial
    data: Any
    device: torch.device
    train: Callable[..., torch.nn.Module]
    log: Callable[[str], None]

    @property
    def seed(self) -> int:
        return self.trial.seed


@dataclass
class Evaluation:
    """One evaluation of one trained model. ``options`` is the trial's typed ``eval`` section, defaults applied (a
    step is switched on by its option); ``trial`` is None when the evaluator is called on its own (tests,
    benchmarks). ``memo`` holds what a step computes once per evaluation (eq. 9 on the clean inputs, the example
    indices)."""

    model: torch.nn.Module
    options: EvalOptions = field(default_factory=EvalOptions)
    detectors: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 500
    progress: Callable[[str], None] | None = None
    calibration: tuple[torch.Tensor, torch.Tensor] | None = None
    trial: TrialEnv | None = None
    memo: dict[Any, Any] = field(default_factory=dict)

    def say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)


class Step:
    """An evaluation step (module docstring). ``option``: the ``eval.<option>`` that switches it on (None: always
    considered; override :meth:`active` for another rule)."""

    option: str | None = None

    def active(self, ev: Evaluation) -> bool:
        return self.option is None or bool(getattr(ev.options, self.option))

    def select(self, ev: Evaluation) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any], torch.Tensor] | None:
        """(inputs, labels, columns every row gets, the points' indices in the test split) or None."""
        return None

    def reorder(self, ev: Evaluation, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                attacks: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The points (and their test-split indices) in another order."""
        return x, y, index

    def arrange(self, ev: Evaluation, pts: AttackPoints) -> AttackPoints:
        return pts

    def clean_columns(self, ev: Evaluation, pts: AttackPoints) -> dict[str, Any]:
        return {}

    def columns(self, ev: Evaluation, pts: AttackPoints, point: GridPoint) -> dict[str, Any]:
        return {}

    def attack_done(self, ev: Evaluation, pts: AttackPoints, points: list[GridPoint], rows: list[dict[str, Any]]) -> None:
        return None

    def adds_rows(self, ev: Evaluation) -> bool:
        return False

    def rows(self, ev: Evaluation, pts: AttackPoints) -> Iterable[dict[str, Any]]:
        return ()

    def finish(self, ev: Evaluation, x: torch.Tensor, y: torch.Tensor, rows: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
        return rows

    def trial_columns(self, ev: Evaluation) -> dict[str, Any]:
        return {}

    def artifacts(self, ev: Evaluation) -> dict[str, dict[str, Any]]:
        return {}
