"""The two white-box attacks on the GMM-prior VAE selective classifier of paper 003.

Both know the encoder f (mean only), decoder g, class means μ_c and both rejection thresholds, and minimise
(paper 003 eq. 10, with η initialised at zero, and eq. 11, from uniform noise):

    eq. 10  L_adv  = (rec(x0 + η) / τ_dec)^a + (m_t(x0 + η) / τ_enc)^b + ||η||_2
    eq. 11  L_fool = (rec(η) / τ_dec)^a      + (m_t(η) / τ_enc)^b

where rec(x) = ||x - g(f(x))||_2 is the reconstruction error the decoder threshold is applied to and m_t(x) =
(μ_t - f(x))ᵀ Σ_t⁻¹ (μ_t - f(x)) the squared Mahalanobis distance to the target class mean that the encoder
threshold (a chi-square critical value) is applied to. The paper prints Σ_t inside the quadratic form; the
Mahalanobis distance it thresholds uses the inverse, which is what we use (identical up to scale for the
isotropic fixed-entropy posterior). Exponents a, b > 1 make the loss grow steeply once a threshold is exceeded.

Model interface (duck-typed, so it works on ``robustsweep.models.gmm_vae`` and on hand-built stand-ins):
``encode_mean(x) -> (N, k)`` (or ``encode``), ``decode(z) -> x``, ``class_means -> (C, k)``, ``tau_enc``,
``tau_dec`` (floats); optional ``latent_precision`` ((k, k) or scalar, default identity), ``recon_error(x)`` and
``latent_distance(x, classes)`` to override the two distances above so that attacker and detector use exactly
the model's own definitions.

The result is a plain input batch: success (classified as the target *and* accepted by both thresholds) is
measured by the evaluator (:mod:`robustsweep.core.evaluate`), which reads the registry's ``goal`` ("target":
eq. 10, a perturbation of x aimed at a target class; "fooling": eq. 11, an image from noise, x gives only the
shape) and recomputes each input's target and noise start with :func:`attack_targets` / :func:`noise_start` on the
same batches the attack ran on, so the metrics and the attack cannot disagree about them.
"""
from __future__ import annotations

import hashlib

import torch

from robustsweep.attacks._util import Target, choose_targets
from robustsweep.registry import ATTACKS


class GmmVaeView:
    """Uniform access to a GMM-VAE's encoder, decoder, class means, thresholds and the two distances."""

    def __init__(self, model: torch.nn.Module):
        missing = [a for a in ("decode", "class_means", "tau_enc", "tau_dec") if not hasattr(model, a)]
        if not (hasattr(model, "encode_mean") or hasattr(model, "encode")):
            missing.append("encode_mean")
        if missing:
            raise TypeError(
                f"{type(model).__name__} is not a GMM-VAE classifier (paper 003): missing {', '.join(missing)}"
            )
        self.model = model

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        enc = getattr(self.model, "encode_mean", None) or self.model.encode
        z = enc(x)
        return z[0] if isinstance(z, tuple) else z

    @property
    def means(self) -> torch.Tensor:
        return torch.as_tensor(self.model.class_means)

    @property
    def tau_enc(self) -> float:
        return float(self.model.tau_enc)

    @property
    def tau_dec(self) -> float:
        return float(self.model.tau_dec)

    def recon_error(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self.model, "recon_error"):
            return self.model.recon_error(x)
        return (x - self.model.decode(self.encode(x)).view_as(x)).flatten(1).norm(dim=1)

    def latent_distance(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of f(x) to μ_classes, per example."""
        if hasattr(self.model, "latent_distance"):
            return self.model.latent_distance(x, classes)
        d = self.encode(x) - self.means.to(x.device)[classes]
        p = getattr(self.model, "latent_precision", None)
        if p is None:
            return d.pow(2).sum(1)
        p = torch.as_tensor(p, device=x.device, dtype=d.dtype)
        if p.dim() == 0:
            return p * d.pow(2).sum(1)
        return torch.einsum("ni,ij,nj->n", d, p, d)

    def predict_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest class mean in latent space (paper 003's decision rule)."""
        return torch.cdist(self.encode(x), self.means.to(x.device)).argmin(1)


def attack_targets(y: torch.Tensor, num_classes: int, target: Target = "next", seed: int = 0) -> torch.Tensor:
    """The target class of every input of one attack batch (what both attacks optimise towards)."""
    return choose_targets(y, num_classes, target, seed)


def noise_start(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Eq. 11's uniform-noise start for one batch shaped like ``x`` (on x's device): a pure function of the seed and
    the batch's inputs, so the evaluator can recompute exactly the starts the attack used
    (:mod:`robustsweep.core.selective`). The inputs enter the seed because the attack never learns which batch it
    is given: seeded by ``seed`` alone, every batch of 500 started from the same 500 noise images, and the paper's
    10,000 fooling images were 20 copies of them."""
    key = int(hashlib.sha1(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:15], 16)
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + key) % 2**63)
    return torch.rand(x.shape, generator=g).to(device=x.device, dtype=x.dtype)


def _threshold_terms(view: GmmVaeView, x: torch.Tensor, t: torch.Tensor, a: float, b: float) -> torch.Tensor:
    rec = view.recon_error(x).clamp_min(0) / view.tau_dec
    lat = view.latent_distance(x, t).clamp_min(0) / view.tau_enc
    return rec.pow(a) + lat.pow(b)


def _optimise(loss_fn, init: torch.Tensor, steps: int, lr: float, project) -> torch.Tensor:
    p = init.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            loss = loss_fn(p).sum()
            opt.zero_grad()
            loss.backward()
        opt.step()
        with torch.no_grad():
            p.copy_(project(p))
    return p.detach()


@ATTACKS.register("gmmvae-whitebox", norm="linf", budget="eps", threat="white-box", needs="gmmvae", goal="target")
def gmmvae_whitebox(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: Target = "next",
    a: float = 2.0,
    b: float = 2.0,
    steps: int = 200,
    lr: float = 0.01,
    eps: float | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Paper 003 eq. 10: targeted attack aware of encoder, decoder and both thresholds (Adam on η from 0).

    ``target``: "next" ((y+1) mod C), "random" or a class index. ``eps`` optionally bounds ||η||_∞ (None: only
    the ||η||_2 penalty of eq. 10, as in the paper).
    """
    view = GmmVaeView(model)
    x = x.detach()
    t = attack_targets(y, len(view.means), target, seed)

    def loss(eta: torch.Tensor) -> torch.Tensor:
        xa = (x + eta).clamp(0, 1)
        return _threshold_terms(view, xa, t, a, b) + eta.flatten(1).norm(dim=1)

    def project(eta: torch.Tensor) -> torch.Tensor:
        if eps is not None:
            eta = eta.clamp(-eps, eps)
        return (x + eta).clamp(0, 1) - x

    eta = _optimise(loss, torch.zeros_like(x), steps, lr, project)
    return (x + eta).clamp(0, 1)


@ATTACKS.register("gmmvae-fooling", norm=None, threat="white-box", needs="gmmvae", goal="fooling")
def gmmvae_fooling(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: Target = "next",
    a: float = 2.0,
    b: float = 2.0,
    steps: int = 200,
    lr: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """Paper 003 eq. 11: fooling samples optimised from uniform noise towards class t (x gives only the shape).

    One fooling image per input; its target is derived from y (default (y+1) mod C); the evaluator counts a
    success when the image is classified as that target and accepted by both thresholds.
    """
    view = GmmVaeView(model)
    t = attack_targets(y, len(view.means), target, seed)
    noise = noise_start(x, seed)
    return _optimise(lambda xf: _threshold_terms(view, xf, t, a, b), noise, steps, lr, lambda p: p.clamp(0, 1))
