"""The sub-sections of an experiment file's ``eval`` section (counterfactual speed, example images, decision grid)
and the default detector fit size: what a trial measures besides the attack grid. Kept apart from
:mod:`robustsweep.config.spec` so that module keeps one job (parsing, validating and expanding experiment files).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CounterfactualSpec(_Strict):
    """Counterfactual speed of paper 000: fewest I-FGSM / PGD iterations (<= max_iter) that bring accuracy below
    ``threshold``; one row per method, from one max_iter-step run each."""

    methods: list[Literal["ifgsm", "pgd"]] = ["ifgsm", "pgd"]
    eps: float = 0.1
    step_size: float = 0.01
    threshold: float = 0.4
    max_iter: int = 30


DEFAULT_N_FIT = 2000  # detectors' clean fitting images (core/trial.py explains the cap)


class ExamplesSpec(_Strict):
    """Example images kept in every row (core/examples.py): the first ``n`` attacked test points, clean and as each
    row's adversarials, for the papers' image-grid figures (001 Fig. 6, 002 Figs. 1-2, 003 Fig. 4, 004 Fig. 4).
    Keeping them changes no metric: their extra model calls run under a forked RNG."""

    n: int = Field(4, ge=1, le=64)  # at most 64: rows carry the pixels, so a grid's worth and no more
    reconstruction: bool = False  # also decode(encode(x)) of clean and adversarial inputs (models that reconstruct)
    gradients: bool = False  # also d CE / d x of the clean inputs (paper 004 Fig. 4)
    # instead of the first n: the first attacked point of each of these classes, in this order (paper 003 Fig. 4
    # shows chosen classes); a class absent from the attacked points is skipped
    labels: list[int] | None = None


class DecisionGridSpec(_Strict):
    """Decision and detector-acceptance regions on an n x n grid (2-D data only; core/decision_grid.py): paper 001
    Fig. 2."""

    n: int = Field(100, ge=10, le=400)  # at most 400: 160,000 points per column per row
