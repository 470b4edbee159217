"""Paper 003's threshold-aware white-box attack (eq. 10), fooling attack (eq. 11) and τ rejection, on a tiny
hand-built GMM-prior "VAE" whose encoder/decoder are exact linear maps (the duck-typed interface of
robustsweep.attacks.gmm_vae: encode_mean, decode, class_means, tau_enc, tau_dec, latent_precision)."""
from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2

from robustsweep.attacks.gmm_vae import GmmVaeView, gmmvae_fooling, gmmvae_whitebox
from robustsweep.registry import DETECTORS

D, K, SIGMA = 6, 2, 0.1


class LinearGmmVae(torch.nn.Module):
    """x = 0.5 + A z (+ pixel noise), z ~ N(μ_y, σ² I) with one-hot means (paper 003); f = A⁺(x - 0.5), g = 0.5 + A z.

    τ_enc = chi-square critical value (3σ rule, df = K) of the squared Mahalanobis distance; τ_dec = a fixed
    reconstruction-error bound above the pixel noise level."""

    num_classes = K

    def __init__(self) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(D, K, generator=torch.Generator().manual_seed(0)))
        self.register_buffer("A", 0.2 * q)
        self.class_means = torch.eye(K)
        self.latent_precision = 1.0 / SIGMA**2
        self.tau_enc = float(chi2.ppf(0.9973, df=K))
        self.tau_dec = 0.05

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.pinv(self.A).matmul((x.flatten(1) - 0.5).T).T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return 0.5 + z @ self.A.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode_mean(x)
        return -0.5 * self.latent_precision * torch.cdist(z, self.class_means).pow(2)

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, K, (n,), generator=g)
        z = self.class_means[y] + SIGMA * torch.randn(n, K, generator=g)
        return (self.decode(z) + 0.005 * torch.randn(n, D, generator=g)).clamp(0, 1), y


@pytest.fixture(scope="module")
def vae():
    m = LinearGmmVae()
    x, y = m.sample(400, 0)
    return m, x, y


def _accepted_as(model, det, x, t):
    with torch.no_grad():
        return (model(x).argmax(1) == t) & ~det.reject(model, x)


def test_tau_detector_uses_model_thresholds_and_rejects_off_manifold(vae):
    m, x, y = vae
    det = DETECTORS.get("gmmvae-tau").fn().fit(m, x, y)
    assert (det.tau_enc, det.tau_dec) == (m.tau_enc, m.tau_dec)
    assert det.reject(m, x).float().mean() < 0.02          # clean data accepted (3σ thresholds)
    noise = torch.rand(200, D, generator=torch.Generator().manual_seed(1))
    assert det.reject(m, noise).float().mean() > 0.95      # uniform noise is off the decoder's manifold
    refit = DETECTORS.get("gmmvae-tau").fn(use_model_thresholds=False, quantile=0.95).fit(m, x, y)
    assert 0.03 <= refit.reject(m, x).float().mean() <= 0.12  # union of two 5% tails


def test_whitebox_eq10_reaches_target_and_passes_thresholds(vae):
    m, x, y = vae
    det = DETECTORS.get("gmmvae-tau").fn().fit(m, x, y)
    x0, y0 = x[:100], y[:100]
    t = (y0 + 1) % K
    xa = gmmvae_whitebox(m, x0, y0, target="next", a=2.0, b=2.0, steps=300, lr=0.01)
    assert xa.min() >= 0 and xa.max() <= 1
    ok = _accepted_as(m, det, xa, t)
    assert ok.float().mean() > 0.9
    # the ||η||₂ term keeps η near the minimum needed: well below jumping to the target mean's decoding
    full_jump = (m.decode(m.class_means[t]) - x0).norm(dim=1)
    assert (xa - x0).norm(dim=1).mean() < full_jump.mean()


def test_whitebox_eps_bound_is_respected(vae):
    m, x, y = vae
    xa = gmmvae_whitebox(m, x[:20], y[:20], steps=50, eps=0.02)
    assert (xa - x[:20]).abs().max() <= 0.02 + 1e-6


def test_fooling_eq11_minimises_its_objective_from_noise(vae):
    """On this linear model the decoder's manifold is reachable, so eq. 11 converges to accepted images of the
    target class (paper 003: "the attack converged to a legitimate image of the target class")."""
    m, x, y = vae
    det = DETECTORS.get("gmmvae-tau").fn().fit(m, x, y)
    y0 = y[:50]
    t = (y0 + 1) % K
    start = gmmvae_fooling(m, x[:50], y0, steps=0)
    out = gmmvae_fooling(m, x[:50], y0, steps=600, lr=0.02)
    view = GmmVaeView(m)
    with torch.no_grad():
        loss0 = (view.recon_error(start) / m.tau_dec) ** 2 + (view.latent_distance(start, t) / m.tau_enc) ** 2
        loss1 = (view.recon_error(out) / m.tau_dec) ** 2 + (view.latent_distance(out, t) / m.tau_enc) ** 2
    assert det.reject(m, start).all()                      # uniform noise starts rejected
    assert (loss1 < loss0).all()
    assert _accepted_as(m, det, out, t).float().mean() > 0.9


def test_not_a_gmm_vae_is_a_clear_error():
    with pytest.raises(TypeError, match="not a GMM-VAE"):
        gmmvae_whitebox(torch.nn.Linear(D, 2), torch.rand(3, D), torch.zeros(3, dtype=torch.long))


def test_target_offsets_cover_every_other_class():
    """``"+k"`` targets (y + k) mod C; the grid +1 .. +9 sends each input to each of the 9 other classes once."""
    from robustsweep.attacks._util import choose_targets

    y = torch.tensor([0, 2, 5, 9])
    assert choose_targets(y, 10, "+4").tolist() == [4, 6, 9, 3]  # paper 003 Fig. 4(a): 2 -> 6 and 5 -> 9
    every = torch.stack([choose_targets(y, 10, f"+{k}") for k in range(1, 10)])
    for i, yi in enumerate(y.tolist()):
        assert sorted(every[:, i].tolist()) == [c for c in range(10) if c != yi]
    for bad in ("+0", "+10"):
        with pytest.raises(ValueError, match="offset"):
            choose_targets(y, 10, bad)


def test_noise_starts_differ_between_batches_and_are_reproducible():
    """The fooling attack never learns which batch it is given: its noise starts depend on the seed and the batch's
    inputs, so two batches do not share starts (20 copies of 500 at paper scale before), and recomputing a batch's
    starts (core/selective.py does) gives the same images."""
    from robustsweep.attacks.gmm_vae import noise_start

    a, b = torch.rand(4, 1, 3, 3), torch.rand(4, 1, 3, 3)
    assert not torch.equal(noise_start(a, 0), noise_start(b, 0))
    assert not torch.equal(noise_start(a, 0), noise_start(a, 1))
    assert torch.equal(noise_start(a, 0), noise_start(a.clone(), 0))
    assert noise_start(a, 0).min() >= 0 and noise_start(a, 0).max() <= 1
