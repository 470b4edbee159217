"""PGD (Madry et al. 2018), L∞ and L2, with random start. Deep-Bayes code used step 0.01, 40 steps, random start.

With ``detector_aware`` (:mod:`robustsweep.attacks.adaptive`) PGD also descends a fitted detector's evasion term:
paper 001's appendix A.1 attack is ``pgd`` + ``eot`` + ``{detector: marginal|logit|kl, form: hinge}``, and
``he-pgd`` is the preset ``pgd`` + energy (raw).

``restarts: R`` (default 1: the attack as it always was) runs R attempts and keeps per example the first that
fools the model, else the highest-loss one (:func:`~robustsweep.attacks.base.restarted`); attempts 2..R always
start at a random point of the ball and only attack the examples not fooled yet.
"""
from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge

from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import (
    clamp01,
    detector_aware,
    linf_random_start,
    linf_steps,
    loss_grad,
    normalize_l2,
    project_l2,
    restarted,
)
from robustsweep.registry import ATTACKS


@ATTACKS.register("pgd", norm="linf", budget="eps", threat="white-box", iterative=True)
@detector_aware()
def pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    steps: int = 40,
    step_size: float = 0.01,
    random_start: bool = True,
    eot: int = 1,
    term: DetectorTerm | None = None,
    restarts: Annotated[int, Ge(1)] = 1,
) -> torch.Tensor:
    """Projected gradient descent, L∞ ball, signed steps, uniform random start; ``eot`` averages the gradient over
    that many draws of a stochastic model; ``detector_aware``/``det_lambda``: also evade a fitted detector;
    ``restarts``: best of that many attempts per example (module docstring)."""

    def attempt(xs: torch.Tensor, ys: torch.Tensor, first: bool) -> torch.Tensor:
        start = linf_random_start(xs, eps) if random_start or not first else xs.clone()
        return linf_steps(model, xs, ys, start, eps, steps, step_size, eot, term=term)

    return restarted(attempt, model, x, y, restarts, term)


def l2_random_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """A random point of the ℓ2 ball of radius eps around x (uniform direction, uniform radius), clipped to [0, 1]."""
    radius = torch.rand(len(x), *([1] * (x.dim() - 1)), device=x.device) * eps
    return clamp01(x + normalize_l2(torch.randn_like(x)) * radius)


@ATTACKS.register("pgd-l2", norm="l2", budget="eps", threat="white-box", iterative=True)
@detector_aware()
def pgd_l2(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 1.0,
    steps: int = 40,
    step_size: float = 0.1,
    random_start: bool = True,
    eot: int = 1,
    term: DetectorTerm | None = None,
    restarts: Annotated[int, Ge(1)] = 1,
) -> torch.Tensor:
    """Projected gradient descent, L2 ball, normalised-gradient steps, random start inside the ball
    (``detector_aware``/``det_lambda``: also evade a fitted detector; ``restarts``: best of that many attempts)."""

    def attempt(xs: torch.Tensor, ys: torch.Tensor, first: bool) -> torch.Tensor:
        x_adv = l2_random_start(xs, eps) if random_start or not first else xs.clone()
        for _ in range(steps):
            g = loss_grad(model, x_adv, ys, eot, term=term)
            x_adv = project_l2(x_adv + step_size * normalize_l2(g), xs, eps)
        return x_adv.detach()

    return restarted(attempt, model, x, y, restarts, term)
