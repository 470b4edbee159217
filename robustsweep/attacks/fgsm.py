"""FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps on the cross-entropy."""
from __future__ import annotations

import torch

from robustsweep.attacks.base import clamp01, loss_grad
from robustsweep.registry import ATTACKS


@ATTACKS.register("fgsm", norm="linf", budget="eps", threat="white-box")
def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1, eot: int = 1) -> torch.Tensor:
    """Fast gradient sign method, L∞ (one step of size eps)."""
    if eps == 0:
        return x.clone()
    g = loss_grad(model, x, y, eot)
    return clamp01(x + eps * g.sign()).detach()
