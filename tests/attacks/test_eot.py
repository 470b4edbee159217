"""EOT checked against an independent oracle: robustsweep's ``pgd(eot=R)`` vs torchattacks' ``EOTPGD(eot_iter=R)`` on
a trained *stochastic* model (a deep-Bayes GFZ: fresh importance samples z ~ q(z|x, y) on every forward call).

Why they are the same algorithm in expectation: both start uniformly in the ε-ball (clipped to [0, 1]), then take
``steps`` signed steps of ``alpha`` on the gradient of the cross-entropy summed over R fresh forward passes, each
projected onto the ε-ball and [0, 1]. torchattacks sums the gradients of the *batch-mean* loss over the R draws,
robustsweep averages the gradients of the *batch-sum* loss; per example the two differ by the positive factor
R / N, which the sign step ignores -- so the iterates are identical given the same draws.

That last point gives an exact check besides the statistical one: both consume the global RNG in the same order
(the random start, then one set of K x C x N normals per forward pass), so from one seed they must produce the same
adversarials (up to float rounding). An EOT that ignored ``eot``, ran a different number of draws, or reused one
draw would break it.

Not asserted: that R > 1 is stronger than R = 1. On this model it is not measurably so (digits GFZ, 360 test
points, eps 0.1 / 0.15, 8 steps: R = 4 gave accuracy 0.636 / 0.403 vs R = 1 0.642 / 0.411, inside the run-to-run
spread of ~0.01-0.02): K = 10 importance samples already make the logits' gradient smooth enough.
The statistical check (independent seeds) is the one the issue asks for; its tolerance is derived below.
"""
from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import trained_gfz

torchattacks = pytest.importorskip("torchattacks")

EPS, STEPS, R = 0.1, 8, 4
R_STAT = 2  # draws per step in the statistical comparison (half the cost of R; the exact test uses R)
ALPHA = EPS / 4  # 8 steps of eps/4 reach the boundary from anywhere in the ball


@pytest.fixture(scope="module")
def gfz(digits):
    """A small deep-Bayes GFZ trained for a few epochs on digits."""
    return trained_gfz(digits, epochs=6, lr=3e-3)


def _ours(model, x, y, eot: int, seed: int) -> torch.Tensor:
    from robustsweep.attacks.pgd import pgd

    torch.manual_seed(seed)
    return pgd(model, x, y, eps=EPS, steps=STEPS, step_size=ALPHA, random_start=True, eot=eot)


def _oracle(model, x, y, eot: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torchattacks.EOTPGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, eot_iter=eot, random_start=True)(x, y)


@torch.no_grad()
def _correct(model, x, y) -> torch.Tensor:
    return (model(x).argmax(1) == y).float()


def test_model_is_stochastic_and_learned(gfz, digits):
    from robustsweep.models.draws import is_stochastic

    x = digits.x_test[:50]
    with torch.no_grad():
        assert not torch.equal(gfz(x), gfz(x))
    assert is_stochastic(gfz)
    assert _correct(gfz, digits.x_test, digits.y_test).mean() > 0.85


def test_same_seed_gives_the_oracles_adversarials(gfz, digits):
    """Same seed, same draws: the iterates agree up to float rounding (torchattacks projects as x + clip(x_adv - x),
    we clip x_adv itself: a 1-ulp difference, measured <= 1.5e-8), on every example -- while a different number of
    draws per step (R = 1 against the oracle's R) sends the iterates elsewhere by whole steps."""
    x, y = digits.x_test[:64], digits.y_test[:64]
    ours, theirs = _ours(gfz, x, y, R, seed=11), _oracle(gfz, x, y, R, seed=11)
    gap = (ours - theirs).abs().flatten(1).amax(1)
    assert gap.max().item() <= 1e-6, f"{(gap > 1e-6).sum().item()} of 64 adversarials differ from EOTPGD's"
    wrong_r = (_ours(gfz, x, y, 1, seed=11) - theirs).abs().flatten(1).amax(1)
    assert (wrong_r > ALPHA / 2).float().mean().item() > 0.5, "EOT with R = 1 must not reproduce R draws"


def test_adversarial_accuracy_agrees_with_torchattacks_within_sampling_noise(gfz, digits):
    """Independent seeds. Tolerance: the difference of two accuracies over the same n points has variance at most
    2 p(1-p) / n (binomial bound over the points' outcomes); the model's own prediction noise -- the fraction f of
    points whose prediction flips between two calls -- adds at most f / n. We allow 3 standard deviations of the
    sum (conservative: the binomial bound already contains the prediction noise)."""
    x, y = digits.x_test, digits.y_test
    n = len(x)
    ours, theirs = _ours(gfz, x, y, R_STAT, seed=1), _oracle(gfz, x, y, R_STAT, seed=2)
    torch.manual_seed(3)
    acc_ours, acc_theirs = _correct(gfz, ours, y).mean().item(), _correct(gfz, theirs, y).mean().item()
    with torch.no_grad():
        flips = (gfz(ours).argmax(1) != gfz(ours).argmax(1)).float().mean().item()
    p = (acc_ours + acc_theirs) / 2
    tol = 3 * math.sqrt(2 * p * (1 - p) / n + flips / n)
    clean = _correct(gfz, x, y).mean().item()
    assert acc_ours < clean - 0.2, "the attack must bite for the comparison to mean anything"
    assert abs(acc_ours - acc_theirs) <= tol, (acc_ours, acc_theirs, tol, flips)
