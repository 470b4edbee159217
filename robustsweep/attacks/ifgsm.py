"""I-FGSM / BIM (Kurakin et al. 2017): PGD L∞ without random start.

Used by paper 000 for counterfactual speed (fewest iterations that bring accuracy below 0.4) and by CleverHans
as ``BasicIterativeMethod``. Registered twice ("ifgsm" and "bim") because the papers use both names.
"""
from __future__ import annotations

import torch

from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import detector_aware
from robustsweep.attacks.pgd import pgd
from robustsweep.registry import ATTACKS


@detector_aware()
def ifgsm(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    steps: int = 10,
    step_size: float | None = None,
    eot: int = 1,
    term: DetectorTerm | None = None,
) -> torch.Tensor:
    """Iterative FGSM (BIM): ``steps`` signed steps from x, projected on the L∞ ball and [0, 1].

    ``step_size=None`` means eps / steps (Kurakin's "total travel = eps" convention, also Dong et al.'s MIM);
    give it explicitly to match torchattacks' ``alpha``. ``detector_aware``/``det_lambda``: also evade a fitted
    detector (:mod:`robustsweep.attacks.adaptive`).
    """
    alpha = eps / max(steps, 1) if step_size is None else step_size
    return pgd.__wrapped__(model, x, y, eps=eps, steps=steps, step_size=alpha, random_start=False, eot=eot, term=term)


ATTACKS.register("ifgsm", norm="linf", budget="eps", threat="white-box", iterative=True)(ifgsm)
ATTACKS.register("bim", norm="linf", budget="eps", threat="white-box", iterative=True,
                 help="Alias of ifgsm: Basic Iterative Method (I-FGSM), PGD L∞ without random start.")(ifgsm)
