"""APGD-T (Croce & Hein 2020, §4): targeted Auto-PGD on the targeted DLR loss, one run per target class.

For each of the other classes in order of the clean logits (the 2nd largest first), APGD is run towards it on
the examples not yet fooled, with the targeted DLR loss -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2), which needs
four classes or more. It is AutoAttack's second component (``autoattack/apgd-t``) and useful on its own.

From whom: torchattacks 3.5.1's ``APGDT`` (a port of github.com/fra31/auto-attack), run through
:mod:`robustsweep.attacks._torchattacks` (seeding, shapes, classes); nothing is rewritten. Choices: ``steps``
defaults to AutoAttack's 100 (torchattacks' class defaults to 10); every other class is a target
(``n_classes - 1``, AutoAttack's 9 on ten classes); ``eot`` is torchattacks' ``eot_iter`` (gradient averaged over
that many draws of a stochastic model); ``restarts`` its ``n_restarts`` (per target class). Not detector-aware:
torchattacks' loss cannot carry our detector term (use ``apgd`` with ``detector_aware`` for that).
"""
from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge

from robustsweep.attacks._torchattacks import Norm, check_eps, draw_seed, n_classes, run
from robustsweep.attacks.base import norm_param
from robustsweep.registry import ATTACKS


@ATTACKS.register("apgd-t", norm=norm_param("norm"), budget="eps", threat="white-box")
def apgd_t(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 8 / 255,
    norm: Norm = "Linf",
    steps: int = 100,
    restarts: Annotated[int, Ge(1)] = 1,
    eot: int = 1,
    rho: float = 0.75,
    seed: int | None = None,
) -> torch.Tensor:
    """Targeted Auto-PGD (DLR-T loss) towards every other class in turn, ``norm`` Linf or L2 (torchattacks')."""
    check_eps("apgd-t", eps)
    if eps == 0:
        return x.clone()
    c = n_classes(model, x)
    if c < 4:
        raise ValueError(f"apgd-t: the targeted DLR loss needs at least 4 classes, the model has {c} "
                         f"(use apgd, or autoattack with version: custom)")
    return run("APGDT", model, x, y, draw_seed(seed), norm=norm, eps=eps, steps=steps, n_restarts=restarts,
               eot_iter=eot, rho=rho, n_classes=c)
