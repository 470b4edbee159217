"""Our attacks against torchattacks 3.5.1 (test-only oracle) on one small trained MLP, plus the ε/box contract.

torchattacks conventions matched here: PGD's random start draws ``torch.empty_like(x).uniform_(-eps, eps)`` exactly
as ours does (so with the same seed the runs are identical); PGD-L2's random start draws differently, so it is
compared with ``random_start=False``; BIM/MIM/DeepFool have no random start; CW uses the same tanh box, Adam,
``c``, best-iterate tracking and early abort.
"""
from __future__ import annotations

import inspect

import pytest
import torch
import torchattacks

from robustsweep.attacks import cw, deepfool, fgsm, he_pgd, ifgsm, mim, pgd
from robustsweep.ops.train import accuracy
from robustsweep.registry import ATTACKS


@pytest.fixture(scope="module")
def victim(mlp_victim):
    m, _, xte, yte = mlp_victim
    return m, xte[:200], yte[:200]


def test_fgsm_matches_torchattacks(victim):
    m, x, y = victim
    ours = fgsm.fgsm(m, x, y, eps=0.1)
    ref = torchattacks.FGSM(m, eps=0.1)(x, y)
    assert abs(accuracy(m, ours, y) - accuracy(m, ref, y)) <= 0.02
    assert torch.allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_linf_matches_torchattacks(victim, random_start):
    m, x, y = victim
    torch.manual_seed(1)
    ours = pgd.pgd(m, x, y, eps=0.1, steps=20, step_size=0.01, random_start=random_start)
    torch.manual_seed(1)
    ref = torchattacks.PGD(m, eps=0.1, alpha=0.01, steps=20, random_start=random_start)(x, y)
    assert abs(accuracy(m, ours, y) - accuracy(m, ref, y)) <= 0.02
    assert accuracy(m, ours, y) < accuracy(m, x, y) - 0.2  # the attack does something


def test_pgd_l2_matches_torchattacks(victim):
    m, x, y = victim
    ours = pgd.pgd_l2(m, x, y, eps=0.5, steps=20, step_size=0.05, random_start=False)
    ref = torchattacks.PGDL2(m, eps=0.5, alpha=0.05, steps=20, random_start=False)(x, y)
    assert abs(accuracy(m, ours, y) - accuracy(m, ref, y)) <= 0.02
    assert accuracy(m, ours, y) < accuracy(m, x, y) - 0.2


def test_bim_and_mim_match_torchattacks(victim):
    m, x, y = victim
    ours = ifgsm.ifgsm(m, x, y, eps=0.1, steps=10, step_size=0.02)
    ref = torchattacks.BIM(m, eps=0.1, alpha=0.02, steps=10)(x, y)
    assert abs(accuracy(m, ours, y) - accuracy(m, ref, y)) <= 0.02
    ours = mim.mim(m, x, y, eps=0.1, steps=10, step_size=0.02, decay=1.0)
    ref = torchattacks.MIFGSM(m, eps=0.1, alpha=0.02, steps=10, decay=1.0)(x, y)
    assert abs(accuracy(m, ours, y) - accuracy(m, ref, y)) <= 0.02
    assert accuracy(m, ours, y) < accuracy(m, x, y) - 0.2


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_cw_matches_torchattacks(victim, c):
    m, x, y = victim
    ours = cw.cw(m, x, y, c=c, kappa=0.0, steps=100, lr=0.01)
    ref = torchattacks.CW(m, c=c, kappa=0, steps=100, lr=0.01)(x, y)
    assert abs(accuracy(m, ours, y) - accuracy(m, ref, y)) <= 0.02
    # CW returns the clean input where it fails, so its successes have small but non-zero L2
    d = (ours - x).flatten(1).norm(dim=1)
    assert (d > 0).any() and d.max() < 3.0


def test_deepfool_matches_torchattacks(victim):
    """DeepFool with torchattacks' per-step overshoot + clipping can converge onto the decision boundary (the
    clipped step keeps shrinking the logit gap without crossing), leaving exact logit ties whose argmax is decided
    by 1e-16 rounding. So the comparison runs in float64, counts a point within 1e-9 of the boundary as fooled
    for both implementations, and also checks that the two adversarial batches are the same points."""
    m, x, y = victim
    m64, x64 = m.double(), x[:100].double()
    y = y[:100]
    try:
        ours = deepfool.deepfool(m64, x64, y, steps=50, overshoot=0.02)
        ref = torchattacks.DeepFool(m64, steps=50, overshoot=0.02)(x64, y)

        def robustaccuracy(xa):
            with torch.no_grad():
                lg = m64(xa)
            true = lg.gather(1, y[:, None]).squeeze(1)
            other = lg.scatter(1, y[:, None], float("-inf")).amax(1)
            return (true - other > 1e-9).double().mean().item()

        assert abs(robustaccuracy(ours) - robustaccuracy(ref)) <= 0.02
        assert robustaccuracy(ours) < 0.5
        assert torch.allclose(ours, ref, atol=1e-9)
    finally:
        m.float()


def test_truncated_deepfool_is_smaller_and_still_fools(victim):
    m, x, y = victim
    x, y = x[:100], y[:100]
    full = deepfool.deepfool(m, x, y)
    trunc = deepfool.truncated_deepfool(m, x, y, search_steps=12)
    with torch.no_grad():
        fooled_full = m(full).argmax(1) != y
        fooled_trunc = m(trunc).argmax(1) != y
    n_full = (full - x).flatten(1).norm(dim=1)
    n_trunc = (trunc - x).flatten(1).norm(dim=1)
    assert (n_trunc <= n_full + 1e-6).all()
    assert n_trunc[fooled_full].mean() < n_full[fooled_full].mean()
    assert fooled_trunc.sum() >= fooled_full.sum() - 2


def test_he_pgd_lambda0_equals_pgd(victim):
    m, x, y = victim
    torch.manual_seed(3)
    a = pgd.pgd(m, x, y, eps=8 / 255, steps=10, step_size=1 / 255)
    torch.manual_seed(3)
    b = he_pgd.he_pgd(m, x, y, eps=8 / 255, steps=10, step_size=1 / 255, lam=0.0)
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c = he_pgd.he_pgd(m, x, y, eps=8 / 255, steps=10, step_size=1 / 255, lam=1.2)
    assert not torch.equal(a, c)


def test_he_pgd_raises_energy(victim):
    """Eq. 10: the λ·E term must leave the adversarial points with higher energy than plain PGD's."""
    m, x, y = victim
    torch.manual_seed(4)
    a = pgd.pgd(m, x, y, eps=0.1, steps=20, step_size=0.01)
    torch.manual_seed(4)
    b = he_pgd.he_pgd(m, x, y, eps=0.1, steps=20, step_size=0.01, lam=5.0)
    with torch.no_grad():
        ea, eb = -torch.logsumexp(m(a), 1), -torch.logsumexp(m(b), 1)
    assert eb.mean() > ea.mean()


# every L∞ attack that works on any model and needs no substitute data, read from the registry's metadata
LINF = [e.name for e in ATTACKS.entries()
        if e.meta.get("norm") == "linf" and not e.meta.get("needs") and e.meta.get("threat") != "transfer"]


def _fast(name: str) -> dict:
    params = inspect.signature(ATTACKS.get(name).fn).parameters
    small = {"steps": 5, "step_size": 0.05, "samples": 16}
    return {k: v for k, v in small.items() if k in params}


@pytest.mark.parametrize("name", LINF)
def test_linf_attacks_respect_eps_and_box(victim, name):
    m, x, y = victim
    eps = 0.07
    xa = ATTACKS.get(name).fn(m, x, y, eps=eps, **_fast(name))
    assert xa.shape == x.shape
    assert (xa - x).abs().max() <= eps + 1e-6
    assert xa.min() >= 0 and xa.max() <= 1
    assert (xa != x).any()


def test_l2_attack_respects_eps_and_box(victim):
    m, x, y = victim
    xa = pgd.pgd_l2(m, x, y, eps=0.6, steps=5, step_size=0.2)
    assert (xa - x).flatten(1).norm(dim=1).max() <= 0.6 + 1e-5
    assert xa.min() >= 0 and xa.max() <= 1


@pytest.mark.parametrize("name,kw", [("cw", {"steps": 20}), ("deepfool", {"steps": 5}),
                                     ("truncated-deepfool", {"steps": 5}), ("zoo", {"steps": 5, "coords": 16})])
def test_unbounded_attacks_stay_in_box(victim, name, kw):
    m, x, y = victim
    xa = ATTACKS.get(name).fn(m, x[:50], y[:50], **kw)
    assert xa.shape == x[:50].shape and xa.min() >= 0 and xa.max() <= 1


def test_cw_binary_search_never_worse(victim):
    """With a binary search the best-found perturbation per example can only shrink or appear (never vanish)."""
    m, x, y = victim
    x, y = x[:60], y[:60]
    fixed = cw.cw(m, x, y, c=0.1, steps=50)
    searched = cw.cw(m, x, y, c=0.1, steps=50, search_steps=3)
    with torch.no_grad():
        f_fixed = m(fixed).argmax(1) != y
        f_search = m(searched).argmax(1) != y
    assert f_search.sum() >= f_fixed.sum()
    assert f_search.sum() > f_fixed.sum()  # c = 0.1 is too small for many inputs; x10 finds them
