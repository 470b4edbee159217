"""FAB (Croce & Hein 2020, "Minimally distorted adversarial examples with a Fast Adaptive Boundary attack"),
within an ε-ball: untargeted, or FAB-T (``targeted: true``, AutoAttack's third component).

FAB walks to the closest point of the linearised decision boundary (projections onto hyperplanes, with an
extrapolation ``eta`` and a step back ``beta`` towards x) and so finds small perturbations without a step size.
As a budgeted attack an adversarial counts only inside the ε-ball; elsewhere the clean input is returned.
FAB-T runs the targeted version towards each other class in order of the clean logits.

From whom: torchattacks 3.5.1's ``FAB`` (``multi_targeted=True`` for FAB-T; a port of github.com/fra31/auto-attack)
through :mod:`robustsweep.attacks._torchattacks`; nothing is rewritten. Choices: ``steps`` defaults to
AutoAttack's 100; ``alpha_max``, ``eta`` and ``beta`` keep the paper's 0.1, 1.05, 0.9 (not exposed); restarts after
the first start at a random point (torchattacks). Not detector-aware (its steps follow logit differences only).
"""
from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge

from robustsweep.attacks._torchattacks import Norm, check_eps, draw_seed, n_classes, run
from robustsweep.attacks.base import norm_param
from robustsweep.registry import ATTACKS


@ATTACKS.register("fab", norm=norm_param("norm"), budget="eps", threat="white-box")
def fab(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 8 / 255,
    norm: Norm = "Linf",
    steps: int = 100,
    restarts: Annotated[int, Ge(1)] = 1,
    targeted: bool = False,
    seed: int | None = None,
) -> torch.Tensor:
    """Fast Adaptive Boundary attack inside the ε-ball (``targeted``: FAB-T, every other class in turn)."""
    check_eps("fab", eps)
    if eps == 0:
        return x.clone()
    return run("FAB", model, x, y, draw_seed(seed), norm=norm, eps=eps, steps=steps, n_restarts=restarts,
               multi_targeted=targeted, n_classes=n_classes(model, x))
