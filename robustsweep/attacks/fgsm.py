"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps on the cross-entropy (minus λ · a fitted
detector's evasion term with ``detector_aware``, :mod:`robustsweep.attacks.adaptive`)."""
from __future__ import annotations

import torch

from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import clamp01, detector_aware, loss_grad
from robustsweep.registry import ATTACKS


@ATTACKS.register("fgsm", norm="linf", budget="eps", threat="white-box")
@detector_aware()
def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1, eot: int = 1,
         term: DetectorTerm | None = None) -> torch.Tensor:
    """Fast gradient sign method, L∞ (one step of size eps); ``detector_aware``: also evade a fitted detector."""
    g = loss_grad(model, x, y, eot, term=term)
    return clamp01(x + eps * g.sign()).detach()
