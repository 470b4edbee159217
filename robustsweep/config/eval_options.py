"""The ``eval`` section of a trial (:class:`EvalOptions`) and its sub-sections (counterfactual speed, example images,
decision grid): what a trial measures besides the attack grid, with every default declared once, here. Kept apart
from :mod:`robustsweep.config.spec` so that module keeps one job (parsing, validating and expanding experiment files).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from robustsweep.config.identity import ADDED, Section


class CounterfactualSpec(Section):
    """Counterfactual speed of paper 000: fewest I-FGSM / PGD iterations (<= max_iter) that bring accuracy below
    ``threshold``; one row per method, from one max_iter-step run each."""

    methods: list[Literal["ifgsm", "pgd"]] = ["ifgsm", "pgd"]
    eps: float = 0.1
    step_size: float = 0.01
    threshold: float = 0.4
    max_iter: int = 30


DEFAULT_N_FIT = 2000  # detectors' clean fitting images (core/trial.py explains the cap)


class ExamplesSpec(Section):
    """Example images kept in every row (core/examples.py): the first ``n`` attacked test points, clean and as each
    row's adversarials, for the papers' image-grid figures (001 Fig. 6, 002 Figs. 1-2, 003 Fig. 4, 004 Fig. 4).
    Keeping them changes no metric: their extra model calls run under a forked RNG."""

    n: int = Field(4, ge=1, le=64)  # at most 64: rows carry the pixels, so a grid's worth and no more
    reconstruction: bool = False  # also decode(encode(x)) of clean and adversarial inputs (models that reconstruct)
    gradients: bool = False  # also d CE / d x of the clean inputs (paper 004 Fig. 4)
    # instead of the first n: the first attacked point of each of these classes, in this order (paper 003 Fig. 4
    # shows chosen classes); a class absent from the attacked points is skipped
    labels: list[int] | None = None


class DecisionGridSpec(Section):
    """Decision and detector-acceptance regions on an n x n grid (2-D data only; core/decision_grid.py): paper 001
    Fig. 2."""

    n: int = Field(100, ge=10, le=400)  # at most 400: 160,000 points per column per row


class SanitySpec(Section):
    """The gradient-masking probes every trial with gradient attacks runs (core/steps/sanity.py; Carlini et al. 2019
    §5, Athalye et al. 2018): PGD at ``eps`` (L∞, no random start) on the first ``n`` attacked points, where a model
    with honest gradients falls to chance or below on inputs in [0, 1]; PGD of ``steps`` and of twice as many steps at
    the trial's largest L∞ ε (more steps must not raise accuracy); the input gradient's finiteness and non-zeroness."""

    eps: float = Field(1.0, gt=0)  # 1 = the whole [0, 1] image box: an unbounded attack
    steps: int = Field(10, ge=1, le=1000)
    n: int = Field(100, ge=1)


class EvalOptions(Section):
    """What one trial measures besides its attacks; every field is part of its identity (config/identity.py: the
    ``ADDED`` ones only away from their default). The experiment file's ``eval`` section adds the run-time knobs
    (``batch_size``, ``device``: :class:`robustsweep.config.spec.EvalSpec`)."""

    n_eval: int | None = 500  # test examples attacked (a fixed seeded subset); None = whole test set
    counterfactual: Annotated[CounterfactualSpec | None, ADDED] = None
    # clean training images the detectors fit their thresholds on; None = all of them
    n_fit: Annotated[int | None, ADDED] = DEFAULT_N_FIT
    examples: Annotated[ExamplesSpec | None, ADDED] = None  # example images in the rows; None = no images
    decision_grid: Annotated[DecisionGridSpec | None, ADDED] = None  # 2-D data: regions on a grid in the rows
    # attack only test points all these models (each replacing model.name, other model options kept) classify
    # correctly: paper 001 on CIFAR-binary (core/correct_subset.py); None = any test point
    correct_for: Annotated[list[str] | None, ADDED, Field(min_length=1)] = None
    # keep every attacked example's outcome (outcomes/<trial_id>.parquet) and add the worst case over attacks per
    # norm and budget (core/steps/outcomes.py); false: neither (a sweep whose per-example files are not wanted)
    outcomes: Annotated[bool, ADDED] = True
    # the number of gradient draws every attack of the file averages over where it takes ``eot`` and does not set
    # it (EOT, Athalye et al. 2018): a stochastic model's white-box numbers need it; None = each attack's default
    eot: Annotated[int | None, ADDED, Field(ge=1)] = None
    # clean predictions drawn per attacked point of a stochastic model for m.flip_rate (core/steps/stochasticity.py);
    # 0 = not measured
    draws: Annotated[int, ADDED, Field(ge=0, le=100)] = 10
    # the gradient-masking probes (core/steps/sanity.py); null (or false) = not run
    sanity: Annotated[SanitySpec | None, ADDED] = SanitySpec()

    @field_validator("sanity", mode="before")
    @classmethod
    def _sanity_off(cls, v: object) -> object:
        return None if v is False else ({} if v is True else v)
