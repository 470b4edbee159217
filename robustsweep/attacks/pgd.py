"""PGD (Madry et al. 2018), L∞ and L2, with random start. Deep-Bayes code used step 0.01, 40 steps, random start.

With ``detector_aware`` (:mod:`robustsweep.attacks.adaptive`) PGD also descends a fitted detector's evasion term:
paper 001's appendix A.1 attack is ``pgd`` + ``eot`` + ``{detector: marginal|logit|kl, form: hinge}``, and
``he-pgd`` is the preset ``pgd`` + energy (raw).
"""
from __future__ import annotations

import torch

from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import (
    clamp01,
    detector_aware,
    linf_random_start,
    linf_steps,
    loss_grad,
    normalize_l2,
    project_l2,
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
) -> torch.Tensor:
    """Projected gradient descent, L∞ ball, signed steps, uniform random start; ``eot`` averages the gradient over
    that many draws of a stochastic model; ``detector_aware``/``det_lambda``: also evade a fitted detector."""
    x_adv = linf_random_start(x, eps) if random_start else x.clone()
    return linf_steps(model, x, y, x_adv, eps, steps, step_size, eot, term=term)


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
) -> torch.Tensor:
    """Projected gradient descent, L2 ball, normalised-gradient steps, random start inside the ball
    (``detector_aware``/``det_lambda``: also evade a fitted detector)."""
    x_adv = x.clone()
    if random_start:
        radius = torch.rand(len(x), *([1] * (x.dim() - 1)), device=x.device) * eps
        x_adv = clamp01(x + normalize_l2(torch.randn_like(x)) * radius)
    for _ in range(steps):
        g = loss_grad(model, x_adv, y, eot, term=term)
        x_adv = project_l2(x_adv + step_size * normalize_l2(g), x, eps)
    return x_adv.detach()
