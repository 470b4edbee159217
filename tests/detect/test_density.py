"""Detectors: α by bisection hits the target FPR on its calibration data; the exact two-rings generative
classifier of paper 001 Fig. 2 rejects off-manifold points (marginal/logit) and ambiguous ring crossings (TV);
the energy detector's threshold rule; fit_detectors keys."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.detect import NotApplicable, fit_detectors
from robustsweep.detect._common import alpha_for_fpr
from robustsweep.detect.energy import best_threshold
from robustsweep.registry import DETECTORS

CENTERS = torch.tensor([[-0.5, 0.0], [0.5, 0.0]], dtype=torch.float64)
RADII = torch.tensor([1.0, 1.0], dtype=torch.float64)
SIGMA = 0.1


class TwoRingsClassifier(torch.nn.Module):
    """Exact generative classifier of paper 001 Fig. 2: p(x, y) = p(x | y) p(y), p(y) = 1/2,
    p(x | y) = N(x; μ_y(x), σ² I) with μ_y(x) the point of ring y nearest to x, so
    log p(x, y) = -d_y(x)² / (2σ²) - log(2πσ²) + log ½ with d_y(x) = | ||x - c_y|| - r_y |."""

    num_classes = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        d = ((x[:, None, :] - CENTERS[None]).norm(dim=-1) - RADII[None]).abs()
        return -d.pow(2) / (2 * SIGMA**2) - math.log(2 * math.pi * SIGMA**2) + math.log(0.5)


def sample_rings(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """y ~ Bern(0.5), θ ~ U(0, 2π), x | y ~ N(c_y + r_y [cos θ, sin θ], σ² I) (paper 001 §3)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    th = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    x = CENTERS[y] + RADII[y, None] * torch.stack([th.cos(), th.sin()], 1)
    return x + SIGMA * torch.randn(n, 2, generator=g, dtype=torch.float64), y


@pytest.fixture(scope="module")
def rings():
    x, y = sample_rings(2000, 0)
    return TwoRingsClassifier(), x, y


@pytest.mark.parametrize("name", ["marginal", "logit", "kl", "tv"])
def test_alpha_found_for_5pct_fpr_on_calibration_data(rings, name):
    model, x, y = rings
    det = DETECTORS.get(name).fn(target_fpr=0.05).fit(model, x, y)
    fpr = det.reject(model, x).double().mean().item()
    assert abs(fpr - 0.05) <= 0.01, (name, det.alpha, fpr)
    assert 0.0 <= det.alpha <= 3.0  # the deep-Bayes bracket


def test_given_alpha_is_used_verbatim(rings):
    model, x, y = rings
    det = DETECTORS.get("logit").fn(alpha=0.7).fit(model, x, y)
    assert det.alpha == 0.7
    z = det.score(model, x)
    assert torch.equal(det.reject(model, x), z > 0.7)
    # larger α rejects less
    det2 = DETECTORS.get("logit").fn(alpha=2.0).fit(model, x, y)
    assert det2.reject(model, x).sum() < det.reject(model, x).sum()


def test_bisection_matches_quantile_and_widens_bracket():
    z = torch.randn(10000, generator=torch.Generator().manual_seed(1))
    a = alpha_for_fpr(z, 0.05)
    assert abs(a - 1.645) < 0.05 and abs((z > a).float().mean().item() - 0.05) < 1e-3
    # heavy right tail: α outside [0, 3] is still found rather than clipped to 3
    a = alpha_for_fpr(z * 4, 0.01)
    assert a > 3 and abs((z * 4 > a).float().mean().item() - 0.01) < 1e-3


def test_two_rings_marginal_and_logit_reject_off_manifold(rings):
    model, x, y = rings
    dets = fit_detectors([{"name": "marginal", "target_fpr": 0.1}, {"name": "logit", "target_fpr": 0.1}],
                         model, x, y)  # Fig. 2 uses 10% FPR on training data
    g = torch.linspace(-2.5, 2.5, 61, dtype=torch.float64)
    grid = torch.cartesian_prod(g, g)
    dist = ((grid[:, None] - CENTERS[None]).norm(dim=-1) - RADII[None]).abs().amin(1)
    off = grid[dist > 4 * SIGMA]   # far from both rings
    on_x, _ = sample_rings(1000, 1)  # fresh on-manifold points
    for name, det in dets.items():
        assert det.reject(model, off).all(), name
        assert det.reject(model, on_x).double().mean() < 0.15, name


def test_two_rings_tv_rejects_ambiguous_crossings(rings):
    model, x, y = rings
    det = DETECTORS.get("tv").fn(target_fpr=0.1).fit(model, x, y)
    crossings = torch.tensor([[0.0, math.sqrt(3) / 2], [0.0, -math.sqrt(3) / 2]], dtype=torch.float64)
    assert det.reject(model, crossings).all()
    # but not the unambiguous far sides of the rings
    sides = torch.tensor([[-1.5, 0.0], [1.5, 0.0]], dtype=torch.float64)
    assert not det.reject(model, sides).any()


def test_fit_detectors_keys_and_not_applicable(rings):
    model, x, y = rings
    dets = fit_detectors([{"name": "logit"}, {"name": "logit", "alpha": 1.5}, {"name": "kl", "label": "mykl"},
                          {"name": "logit", "alpha": 1.5}], model, x, y)
    assert list(dets) == ["logit", "logit_alpha1.5", "mykl", "logit_alpha1.5_2"]
    assert dets["logit_alpha1.5"].alpha == 1.5
    with pytest.raises(NotApplicable):
        fit_detectors([{"name": "gmmvae-tau"}], model, x, y)
    assert fit_detectors([{"name": "gmmvae-tau"}], model, x, y, skip_inapplicable=True) == {}


def test_best_threshold_youden_and_gmean():
    neg = torch.arange(10.0)                                   # 0 … 9
    pos = torch.tensor([3.5, 9.5, 9.6, 9.7, 9.8, 10, 11, 12, 13, 14])
    # J = TPR - FPR is 0.9 for t in [9, 9.5) (TPR 0.9, FPR 0), 0.4 just below 3.5, lower elsewhere
    for rule in ("youden", "gmean"):
        t = best_threshold(neg, pos, rule)
        tpr, fpr = (pos > t).float().mean().item(), (neg > t).float().mean().item()
        assert (tpr, fpr) == (pytest.approx(0.9), 0.0), (rule, t)
        assert 9.0 <= t < 9.5


def test_energy_detector_flags_pgd(rings):
    """Strong PGD drives an MLP's energy below the clean data (paper 004), weak PGD above it; the fitted detector
    (Youden's J on a validation split) flags the strong attack with direction "low" and "auto" finds "high" for
    the weak one."""
    from sklearn.datasets import load_digits

    from robustsweep.attacks.pgd import pgd
    from robustsweep.models.baselines import mlp
    from robustsweep.ops.train import TrainConfig, fit_loss

    d = load_digits()
    xd = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    yd = torch.tensor(d.target)
    torch.manual_seed(0)
    m = mlp((1, 8, 8), 10, hidden=64)
    fit_loss(m, xd[:1200], yd[:1200], TrainConfig(epochs=6, batch_size=64, lr=3e-3), torch.device("cpu"))
    xv, yv, x_test, y_test = xd[1200:1500], yd[1200:1500], xd[1500:], yd[1500:]
    strong = dict(fit_eps=0.5, fit_steps=20, fit_step_size=0.1)
    det = DETECTORS.get("energy").fn(rule="youden", direction="low", **strong).fit(m, xv, yv)
    torch.manual_seed(1)
    x_adv = pgd(m, x_test, y_test, eps=0.5, steps=20, step_size=0.1)
    tpr = det.reject(m, x_adv).float().mean().item()
    fpr = det.reject(m, x_test).float().mean().item()
    # the threshold fitted on the validation split is close to the best one on the test split
    s_clean, s_adv = det.score(m, x_test), det.score(m, x_adv)
    t_best = best_threshold(s_clean, s_adv, "youden")
    j_best = (s_adv > t_best).float().mean().item() - (s_clean > t_best).float().mean().item()
    assert j_best > 0.4
    assert tpr - fpr > j_best - 0.1, (tpr, fpr, j_best)
    weak = dict(fit_eps=0.1, fit_steps=10, fit_step_size=0.02)
    auto = DETECTORS.get("energy").fn(rule="gmean", direction="auto", **weak).fit(m, xv, yv)
    assert auto.direction == "high"
    fpr_det = DETECTORS.get("energy").fn(rule="fpr", target_fpr=0.05).fit(m, xv, yv)
    assert abs(fpr_det.reject(m, xv).float().mean().item() - 0.05) <= 0.01


def test_well_classified_fits_on_the_correctly_classified_inputs_only(mlp_victim):
    """Paper 002's rule: the thresholds of a detector fitted with well_classified equal those of a plain detector
    fitted on the subset the model classifies correctly (here a third of the labels are made wrong)."""
    model, xtr, _, _ = mlp_victim
    x = xtr[:300]
    y = model(x).argmax(1)
    y[::3] = (y[::3] + 1) % 10  # wrong labels: those inputs are misclassified w.r.t. y
    wc = fit_detectors([{"name": "logit", "well_classified": True}], model, x, y)["logit"]
    keep = model(x).argmax(1) == y
    plain = fit_detectors([{"name": "logit"}], model, x[keep], y[keep])["logit"]
    assert wc.n_fit == int(keep.sum()) == 200
    assert torch.allclose(wc.mean, plain.mean) and torch.allclose(wc.std, plain.std)
    assert wc.alpha == pytest.approx(plain.alpha)
    everything = fit_detectors([{"name": "logit"}], model, x, y)["logit"]
    assert not torch.allclose(everything.mean, plain.mean)  # the filter matters on these labels


class NoisyRings(TwoRingsClassifier):
    """A stochastic stand-in: the exact two-rings logits plus fresh noise on every call, counting the inputs seen."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        return super().forward(x) + 2.0 * torch.randn(len(x), 2, dtype=torch.float64)


def test_fit_detectors_computes_the_fit_logits_once_and_fits_on_that_draw(rings):
    """Issue 20: logit, KL and TV share ONE pass of the model over the fit data (the deep-Bayes code's
    y_logit_train), and each fits its statistics and α on that draw, so the fit-data FPR is the target to one input
    even though the model draws afresh on every call (a second draw for the fit z-scores would miss it)."""
    _, x, y = rings
    model = NoisyRings()
    dets = fit_detectors([{"name": "logit", "per_class_alpha": True}, {"name": "kl"}, {"name": "tv"}], model, x, y)
    assert model.seen == len(x)
    for det in dets.values():
        assert det.fit_fpr == pytest.approx(0.05, abs=1.0 / len(x) + 1e-9)


@pytest.mark.parametrize("name", ["logit", "kl", "tv", "marginal"])
def test_given_fit_logits_are_used_as_they_are(rings, name):
    """A detector handed the fit logits makes no model call and fits exactly what it fits from its own call."""
    exact, x, y = rings
    counting = NoisyRings()
    given = DETECTORS.get(name).fn().fit(counting, x, y, logits=exact(x))
    own = DETECTORS.get(name).fn().fit(exact, x, y)
    assert counting.seen == 0
    assert torch.equal(given.mean, own.mean) and torch.equal(given.std, own.std) and given.alpha == own.alpha


def test_deep_bayes_marginal_fits_on_the_shared_logits():
    """A deep-Bayes model's log p(x) is logsumexp of its logits (marginal_is_logsumexp), so marginal, logit and KL
    detection together make ONE pass over the fit data, and the marginal statistics are those of that draw."""
    from robustsweep.models.deep_bayes import DeepBayes
    from robustsweep.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.get("gfz").fn(input_shape=(1, 8, 8), num_classes=10, hidden=16, dim_z=4, K=3)
    assert isinstance(model, DeepBayes) and model.marginal_is_logsumexp
    x, y = torch.rand(60, 1, 8, 8), torch.randint(0, 10, (60,))
    seen = []
    own = model.logits  # forward and log_marginal both go through logits: count the inputs it sees

    def counted(inputs: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        seen.append(len(inputs))
        return own(inputs, *args, **kwargs)

    model.logits = counted
    dets = fit_detectors([{"name": "marginal"}, {"name": "logit"}, {"name": "kl"}], model, x, y)
    assert sum(seen) == len(x)
    assert dets["marginal"].fit_fpr == pytest.approx(0.05, abs=1.0 / len(x) + 1e-9)
