"""High-Energy PGD (Beadini & Masi, paper 004 eq. 10-11): a named preset of the detector-aware mechanism.

PGD on L(θ(x*), y) + λ E_θ(x*), E = -logsumexp(logits): the λ term pushes the adversarial point's energy up to
the level of natural data so the energy detector (eq. 9, which rejects *low* energy) is bypassed. Since issue 19
this is exactly ``pgd`` with ``detector_aware = {detector: <energy term>, form: raw}`` and ``det_lambda = lam``
(:mod:`robustsweep.attacks.adaptive`): the raw form needs no fitted threshold, so the preset carries its own
energy term; ``pgd`` + ``{detector: <a fitted energy detector's label>, form: raw}`` gives the same adversarials
(same score), and ``form: hinge`` the A.1-style variant that stops pushing once the detector accepts. The tests
check the preset bit-for-bit against the pre-issue-19 implementation, and that λ = 0 is exactly PGD given the same
random start. The paper's settings: ε = 8/255, step 1/255, 10-20 steps, λ = 1.2.
"""
from __future__ import annotations

import torch

from robustsweep.attacks.adaptive import EnergyEvasion
from robustsweep.attacks.pgd import pgd
from robustsweep.registry import ATTACKS

ENERGY_TERM = EnergyEvasion()


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
    """High-Energy PGD, L∞: sign-gradient ascent on CE + lam * energy, uniform random start (eq. 11); the preset
    pgd + energy (raw form) with det_lambda = lam."""
    return pgd(model, x, y, eps=eps, steps=steps, step_size=step_size, random_start=random_start, eot=eot,
               detector_aware={"detector": ENERGY_TERM, "form": "raw"}, det_lambda=float(lam))
