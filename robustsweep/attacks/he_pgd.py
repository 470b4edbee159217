"""High-Energy PGD (Beadini & Masi, paper 004 eq. 10-11).

PGD on L(θ(x*), y) + λ E_θ(x*), E = -logsumexp(logits): the λ term pushes the adversarial point's energy up to
the level of natural data so the energy detector (eq. 9, which rejects *low* energy) is bypassed. λ = 0 is
exactly PGD given the same random start (same RNG draws, same update), which the tests check bit-for-bit.
The paper's settings: ε = 8/255, step 1/255, 10-20 steps, λ = 1.2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robustsweep.attacks.base import linf_random_start, linf_steps
from robustsweep.registry import ATTACKS


def _he_loss(lam: float):
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        energy = -torch.logsumexp(logits, dim=1)
        return F.cross_entropy(logits, y, reduction="sum") + lam * energy.sum()

    return loss


@ATTACKS.register("he-pgd", norm="linf", budget="eps", threat="white-box", iterative=True)
def he_pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 8 / 255,
    steps: int = 10,
    step_size: float = 1 / 255,
    lam: float = 1.2,
    random_start: bool = True,
    eot: int = 1,
) -> torch.Tensor:
    """High-Energy PGD, L∞: sign-gradient ascent on CE + lam * energy, uniform random start (eq. 11)."""
    if eps == 0:
        return x.clone()
    # lam == 0 uses the default loss so the result is bit-identical to ``pgd`` (no 0 * E term in the graph).
    loss_fn = None if lam == 0 else _he_loss(float(lam))
    x_adv = linf_random_start(x, eps) if random_start else x.clone()
    return linf_steps(model, x, y, x_adv, eps, steps, step_size, eot, loss_fn=loss_fn)
