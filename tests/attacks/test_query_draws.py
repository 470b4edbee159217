"""Common random numbers for score-based attacks on stochastic models (paper 001, Table 3: PGD vs SPSA).

A deep-Bayes classifier draws fresh importance samples on every forward call: on the GFZ trained below the logit
margin of a test digit has a std of ~1.4-1.6 nats over repeated calls. SPSA (δ = 0.01) and ZOO (h = 1e-4)
difference two queries a tiny step apart, so with independent draws their gradient estimates are mostly noise and
the model looks more robust than it is. ``robustsweep.models.draws.shared_draws`` fixes the noise so that both
queries of a difference see the same draws; these tests check the mechanism and measure its effect on a REAL
trained GFZ (scikit-learn digits, 10 epochs; clean test accuracy ~0.93).

Measured on this machine (CPU, torch 2.x, 1 thread), over 3 batches x 2 seeds:

* SPSA estimate (64 directions, 20 digits) vs autograd of the same fixed-draw objective: cosine 0.67-0.70 with
  shared draws (the most 64 Rademacher directions in 64 dimensions can give is ~0.71), 0.17-0.20 with fresh
  draws; vs the ideal estimator with the same directions and exact directional derivatives: ~1.0 (shared).
* ZOO partial derivatives (32 coordinates, h = 1e-4) vs autograd: cosine 1.000 with shared draws, -0.06..0.02
  with fresh draws (the fresh estimate is ~5000x too large: noise / 2h).
* SPSA attack, 60 digits, ε = 0.2, 10 steps, 32 directions, lr 0.04: accuracy 0.93 clean, 0.52 with shared draws,
  0.83 with fresh draws (mean of 5 evaluation draws).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robustsweep.attacks import spsa, zoo
from robustsweep.attacks._util import margin
from robustsweep.models.draws import derive_seed, is_stochastic, shared_draws
from robustsweep.ops.train import TrainConfig, accuracy, fit_loss, seed_everything
from robustsweep.registry import MODELS


@pytest.fixture(scope="module")
def gfz(digits):
    """A real, briefly trained GFZ (digits, 10 epochs, ~5 s on one core), frozen."""
    seed_everything(0)
    m = MODELS.get("gfz").fn(input_shape=(1, 8, 8), num_classes=10, hidden=128, dim_z=16,
                             likelihood="gaussian_fixed", sigma=0.25)
    fit_loss(m, digits.x_train, digits.y_train, TrainConfig(epochs=10, batch_size=64, lr=2e-3),
             torch.device("cpu"), seed=0)
    for p in m.parameters():
        p.requires_grad_(False)
    torch.manual_seed(0)
    assert accuracy(m, digits.x_test, digits.y_test) > 0.9
    return m


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


# ---- (a) the mechanism ----
def test_shared_draws_fix_the_noise_and_only_inside_the_context(gfz, digits):
    x = digits.x_test[:100]  # more than one internal chunk of DeepBayes (4096 rows / (K=10 x C=10) = 40 inputs)
    assert is_stochastic(gfz)
    rng = torch.get_rng_state()
    with torch.no_grad():
        with shared_draws(gfz, 7):
            a, b = gfz(x), gfz(x)
            head = gfz(x[:30])
        with shared_draws(gfz, 8):
            c = gfz(x)
        assert torch.equal(torch.get_rng_state(), rng), "the global RNG is neither used nor reseeded"
        d, e = gfz(x), gfz(x)
    assert torch.equal(a, b), "same seed, same batch size: identical logits"
    assert not torch.equal(a, c), "another seed, other noise"
    assert not torch.equal(d, e), "outside the context: fresh draws again"
    # the noise is a function of (seed, batch size): a smaller batch is another draw, not a prefix
    assert not torch.equal(head, a[:30])
    # the spread the attacks fight: ~1 nat of margin between two fresh calls
    assert (margin(d, digits.y_test[:100]) - margin(e, digits.y_test[:100])).std() > 0.5


def test_default_draws_are_unchanged_and_wrappers_are_covered(gfz, digits):
    x = digits.x_test[:8]
    with torch.no_grad():
        torch.manual_seed(5)
        default = gfz(x)
        torch.manual_seed(5)
        explicit = gfz.logits(x, torch.randn(gfz.K, 10, 8, gfz.dim_z))
        wrapper = torch.nn.Sequential(torch.nn.Identity(), gfz)
        assert is_stochastic(wrapper)
        with shared_draws(wrapper, 3):
            w1 = wrapper(x)
        with shared_draws(gfz, 3):
            w2 = gfz(x)
        with shared_draws(gfz, 3), shared_draws(wrapper, 4):  # the inner context wins, and is undone on exit
            inner = gfz(x)
            with shared_draws(gfz, None):  # None = no-op: keeps the enclosing seed
                inner_none = gfz(x)
        with shared_draws(gfz, 4):
            w4 = gfz(x)
    assert torch.equal(default, explicit), "no context: noise from the global RNG exactly as before"
    assert torch.equal(w1, w2), "the context covers every submodule of the model it is given"
    assert torch.equal(inner, w4) and torch.equal(inner_none, w4)
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 2, 1)


# ---- (b) gradient estimates vs the true gradient of the same fixed-draw objective ----
def test_spsa_estimate_follows_the_fixed_draw_gradient_only_with_shared_draws(gfz, digits):
    """Shared draws: cosine ~0.68 to the autograd gradient (the S = 64 direction limit is ~0.71) and ~1.0 to the
    ideal estimator with the same directions; fresh draws: ~0.19 (see module docstring)."""
    n, S, seed = 20, 64, 1
    x, y = digits.x_test[:n], digits.y_test[:n]
    # the objective SPSA differences under seed s: row (i, s) of an (n*S)-row call, F = mean_s margin_{ξ_s}
    xr = x[:, None].expand(n, S, *x.shape[1:]).flatten(0, 1).clone().requires_grad_(True)
    with torch.enable_grad(), shared_draws(gfz, seed):
        (g_rows,) = torch.autograd.grad(margin(gfz(xr), y.repeat_interleave(S)).sum(), xr)
    g_rows = g_rows.view(n, S, *x.shape[1:])
    true = g_rows.mean(1)
    torch.manual_seed(0)
    v = torch.randint(0, 2, (n, S, *x.shape[1:]), dtype=x.dtype) * 2 - 1  # the directions _spsa_grad will draw
    ideal = ((g_rows * v).flatten(2).sum(2).view(n, S, 1, 1, 1) * v).mean(1)
    torch.manual_seed(0)
    shared = spsa._spsa_grad(gfz, x, y, 0.01, S, 8192, seeds=[seed], split=True)
    torch.manual_seed(0)
    fresh = spsa._spsa_grad(gfz, x, y, 0.01, S, 8192)
    c_shared, c_fresh, c_ideal = _cos(shared, true).mean(), _cos(fresh, true).mean(), _cos(shared, ideal).min()
    assert c_ideal > 0.95, c_ideal
    assert c_shared > 0.55, c_shared
    assert c_fresh < 0.35, c_fresh


def test_zoo_estimate_follows_the_fixed_draw_gradient_only_with_shared_draws(gfz, digits):
    """Shared draws: cosine 1.000 to the autograd partial derivatives; fresh draws: ~0 (see module docstring)."""
    n, k, c, seed = 20, 32, 10.0, 2
    x, y = digits.x_test[:n], digits.y_test[:n]
    x0 = x.flatten(1)
    cols = torch.rand(n, x0.shape[1], generator=torch.Generator().manual_seed(0)).argsort(1)[:, :k]
    xr = x0.repeat_interleave(k, 0).clone().requires_grad_(True)  # row i*k + j: coordinate j of example i
    with torch.enable_grad(), shared_draws(gfz, seed):
        loss = c * margin(gfz(xr.view(-1, *x.shape[1:])).log_softmax(1), y.repeat_interleave(k)).clamp_min(0)
        (g,) = torch.autograd.grad(loss.sum(), xr)
    true = g.view(n, k, -1).gather(2, cols[:, :, None]).squeeze(2)
    live = true.abs().sum(1) > 0  # misclassified digits sit on the clamp (zero gradient)
    assert live.sum() >= 15
    shared = zoo._coord_grad(gfz, x0, x0, y, cols, x.shape[1:], 1e-4, c, 0.0, 16384, seeds=[seed], split=True)
    fresh = zoo._coord_grad(gfz, x0, x0, y, cols, x.shape[1:], 1e-4, c, 0.0, 16384)
    assert _cos(shared, true)[live].min() > 0.9
    assert _cos(fresh, true)[live].mean().abs() < 0.2


# ---- (c) the attack ----
def test_spsa_with_shared_draws_lowers_gfz_accuracy_clearly_more(gfz, digits):
    """Same budget (ε 0.2, 10 steps, 32 directions): measured 0.52 with shared draws vs 0.83 without (clean 0.93)."""
    x, y = digits.x_test[:60], digits.y_test[:60]

    def acc(xa: torch.Tensor) -> float:  # mean over 5 evaluation draws: the model is stochastic
        torch.manual_seed(100)
        return sum(accuracy(gfz, xa, y) for _ in range(5)) / 5

    kw = dict(eps=0.2, steps=10, samples=32, lr=0.04)
    torch.manual_seed(0)
    xs = spsa.spsa(gfz, x, y, shared_draws=True, **kw)
    torch.manual_seed(0)
    xf = spsa.spsa(gfz, x, y, shared_draws=False, **kw)
    clean, a_shared, a_fresh = acc(x), acc(xs), acc(xf)
    assert (xs - x).abs().max() <= 0.2 + 1e-6
    assert a_shared < a_fresh - 0.15, (clean, a_shared, a_fresh)
    assert a_shared < clean - 0.25, (clean, a_shared, a_fresh)


def test_draws_option_and_batching_on_a_stochastic_model(gfz, digits):
    """``draws`` averages each query over several seeds; the number of model calls still does not grow with n."""

    class Counter(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, x):
            self.calls += 1
            return self.inner(x)

    for attack, kw in ((spsa.spsa, dict(steps=2, samples=4, eps=0.1)), (zoo.zoo, dict(steps=2, coords=4))):
        counts = []
        for n in (4, 8):
            cm = Counter(gfz)
            torch.manual_seed(0)
            xa = attack(cm, digits.x_test[:n], digits.y_test[:n], draws=2, **kw)
            assert xa.shape == digits.x_test[:n].shape and torch.isfinite(xa).all()
            counts.append(cm.calls)
        assert counts[0] == counts[1], (attack.__name__, counts)
    with pytest.raises(ValueError, match="draws"):
        spsa.spsa(gfz, digits.x_test[:2], digits.y_test[:2], draws=0)


# ---- deterministic models: nothing changes ----
def test_shared_draws_change_nothing_on_a_deterministic_model(mlp_victim):
    m, _, x, y = mlp_victim
    x, y = x[:30], y[:30]
    assert not is_stochastic(m)
    with torch.no_grad(), shared_draws(m, 3):
        inside = m(x)
    assert torch.equal(inside, m(x))
    runs = {}
    for shared, draws in ((True, 1), (False, 1), (True, 3)):
        torch.manual_seed(0)
        runs["spsa", shared, draws] = spsa.spsa(m, x, y, eps=0.1, steps=3, samples=8, shared_draws=shared,
                                                draws=draws)
        runs["zoo", shared, draws] = zoo.zoo(m, x, y, steps=3, coords=8, shared_draws=shared, draws=draws)
    for name in ("spsa", "zoo"):
        ref = runs[name, False, 1]
        assert torch.equal(runs[name, True, 1], ref) and torch.equal(runs[name, True, 3], ref), name
