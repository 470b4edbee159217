"""MIM's optional random start (paper 001's public code runs CleverHans' MIM with ``rand_init``)."""
from __future__ import annotations

import torch

from robustsweep.attacks.mim import mim


def test_random_start_stays_in_the_ball_and_box_and_starts_elsewhere(mlp_victim):
    m, _, x, y = mlp_victim
    x, y = x[:64], y[:64]
    torch.manual_seed(0)
    a = mim(m, x, y, eps=0.1, steps=0, random_start=True)  # zero steps: the start itself
    assert (a - x).abs().max() <= 0.1 + 1e-6 and a.min() >= 0 and a.max() <= 1
    assert (a - x).abs().mean() > 0.02  # a uniform draw in the ball, not x
    torch.manual_seed(0)
    b = mim(m, x, y, eps=0.1, steps=10, step_size=0.01, random_start=True)
    torch.manual_seed(0)
    c = mim(m, x, y, eps=0.1, steps=10, step_size=0.01, random_start=True)
    assert torch.equal(b, c) and (b - x).abs().max() <= 0.1 + 1e-6  # seeded: reproducible, and projected
    assert not torch.equal(b, mim(m, x, y, eps=0.1, steps=10, step_size=0.01))  # default: from x, as torchattacks
