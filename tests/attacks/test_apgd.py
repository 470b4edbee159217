"""APGD (Croce & Hein 2020, L∞, CE) against torchattacks 3.5.1 (test-only oracle) on the small digits MLP.

The victim is built exactly as in ``tests/attacks/test_torchattacks_reference.py``: a fixed 1400/397 split of scikit-learn's digits and
an 8-epoch MLP with seed 0. torchattacks' APGD draws its random start differently (scaled so one coordinate sits
on the ε sphere), so the two are compared on robust accuracy only.
"""
from __future__ import annotations

import pytest
import torch
import torchattacks

from robustsweep.attacks import apgd, pgd
from robustsweep.ops.train import accuracy
from robustsweep.registry import ATTACKS


@pytest.fixture(scope="module")
def victim(mlp_victim):
    m, _, xte, yte = mlp_victim
    return m, xte[:200], yte[:200]


@pytest.mark.parametrize("random_start", [False, True])
def test_apgd_respects_eps_and_box(victim, random_start):
    m, x, y = victim
    eps = 0.07
    torch.manual_seed(0)
    xa = ATTACKS.get("apgd").fn(m, x, y, eps=eps, steps=10, random_start=random_start)
    assert xa.shape == x.shape
    assert (xa - x).abs().max() <= eps + 1e-6
    assert xa.min() >= 0 and xa.max() <= 1
    assert (xa != x).any()
    assert torch.equal(apgd.apgd(m, x, y, eps=0.0), x)


@pytest.mark.parametrize("eps,steps", [(0.05, 20), (0.1, 20), (8 / 255, 50)])
def test_apgd_matches_torchattacks(victim, eps, steps):
    m, x, y = victim
    torch.manual_seed(1)
    ours = apgd.apgd(m, x, y, eps=eps, steps=steps)
    ref = torchattacks.APGD(m, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce", rho=0.75)(x, y)
    a_ours, a_ref = accuracy(m, ours, y), accuracy(m, ref, y)
    assert abs(a_ours - a_ref) <= 0.02, (a_ours, a_ref)
    assert a_ours < accuracy(m, x, y)  # the attack does something


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_apgd_at_least_as_strong_as_pgd(victim, eps):
    m, x, y = victim
    torch.manual_seed(2)
    a_apgd = accuracy(m, apgd.apgd(m, x, y, eps=eps, steps=20), y)
    torch.manual_seed(2)
    a_pgd = accuracy(m, pgd.pgd(m, x, y, eps=eps, steps=20, step_size=eps / 10), y)
    assert a_apgd <= a_pgd + 0.02, (a_apgd, a_pgd)


def test_dlr_loss_equals_torchattacks(victim):
    """The per-example DLR loss against torchattacks' own ``dlr_loss`` (the oracle), true class on top or not."""
    m, x, y = victim
    logits = m(x[:50]).detach()
    y2 = y[:50].clone()
    y2[::2] = (y2[::2] + 3) % 10  # half the labels are not the top class
    ref = torchattacks.APGD(m, norm="Linf", eps=0.1, loss="dlr").dlr_loss(logits, y2)
    assert torch.allclose(apgd.dlr_loss(logits, y2), ref, atol=1e-6)


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_apgd_dlr_matches_torchattacks(victim, eps):
    m, x, y = victim
    torch.manual_seed(3)
    ours = apgd.apgd(m, x, y, eps=eps, steps=20, loss="dlr")
    ref = torchattacks.APGD(m, norm="Linf", eps=eps, steps=20, n_restarts=1, loss="dlr", rho=0.75)(x, y)
    a_ours, a_ref = accuracy(m, ours, y), accuracy(m, ref, y)
    assert abs(a_ours - a_ref) <= 0.03, (a_ours, a_ref)
    assert a_ours < accuracy(m, x, y)
    assert (ours - x).abs().max() <= eps + 1e-6


def test_apgd_dlr_refuses_two_classes_and_unknown_losses(victim):
    m, x, y = victim
    two = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with pytest.raises(ValueError, match="3 classes"):
        apgd.apgd(two, x[:4], (y[:4] % 2), eps=0.1, loss="dlr")
    with pytest.raises(ValueError, match="loss must be one of"):
        apgd.apgd(m, x[:4], y[:4], eps=0.1, loss="hinge")
