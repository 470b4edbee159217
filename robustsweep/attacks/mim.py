"""MIM / MI-FGSM (Dong et al. 2018): I-FGSM with a momentum term on L1-normalised gradients.

Matches CleverHans' ``MomentumIterativeMethod`` (used by paper 001) and torchattacks' ``MIFGSM``: the gradient is
divided by its per-example mean absolute value before accumulating, so the momentum is scale-free.
``detector_aware`` (:mod:`robustsweep.attacks.adaptive`) subtracts λ · a fitted detector's evasion term from the loss.
``random_start`` (default off, as Dong et al. and torchattacks) starts from a uniform point of the ε-ball, as paper
001's public code runs CleverHans' MIM (``rand_init``).
``restarts: R`` (default 1: one run, as always): attempts 2..R start at a random point of the ball (from x they
would repeat the first) on the examples not fooled yet; per example the first fooling one is kept, else the
highest-loss one (:func:`~robustsweep.attacks.base.restarted`).
"""
from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge

from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import detector_aware, linf_random_start, loss_grad, project_linf, restarted
from robustsweep.registry import ATTACKS


@ATTACKS.register("mim", norm="linf", budget="eps", threat="white-box", iterative=True)
@detector_aware()
def mim(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    steps: int = 10,
    step_size: float | None = None,
    decay: float = 1.0,
    eot: int = 1,
    term: DetectorTerm | None = None,
    random_start: bool = False,
    restarts: Annotated[int, Ge(1)] = 1,
) -> torch.Tensor:
    """Momentum iterative FGSM, L∞. ``step_size=None`` means eps / steps (Dong et al.); ``decay`` is μ;
    ``random_start``: begin at a uniform point of the ε-ball instead of x; ``restarts``: best of that many runs."""
    alpha = eps / max(steps, 1) if step_size is None else step_size
    dims = tuple(range(1, x.dim()))

    def attempt(xs: torch.Tensor, ys: torch.Tensor, first: bool) -> torch.Tensor:
        x_adv = linf_random_start(xs, eps) if random_start or not first else xs.clone()
        momentum = torch.zeros_like(xs)
        for _ in range(steps):
            g = loss_grad(model, x_adv, ys, eot, term=term)
            g = g / g.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12)
            momentum = decay * momentum + g
            x_adv = project_linf(x_adv + alpha * momentum.sign(), xs, eps)
        return x_adv.detach()

    return restarted(attempt, model, x, y, restarts, term)
