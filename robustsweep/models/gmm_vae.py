"""Gaussian-mixture-prior VAE as a selective classifier (paper 003).

- Encoder f outputs only the mean; z = f(x) + eps with eps ~ N(0, noise_var I) of fixed entropy.
- Prior: one Gaussian per class, mean mu_c = one-hot(c) zero-padded to dim_z (dim_z >= number of classes).
- Loss eq. 7 (labelled): ||x - g(f(x) + eps)||^2 + alpha ||f(x) - mu_y||^2. Unlabelled (eq. 3 with the mixture
  prior, semi-supervised mode): ||x - g(f(x) + eps)||^2 - log sum_c exp(-alpha ||f(x) - mu_c||^2), i.e. the same
  component variance 1/(2 alpha) the labelled term implies. ``labels_per_class`` keeps that many labels per class
  (chosen with the training seed) and treats the rest as unlabelled; in a mixed batch the labelled and the
  unlabelled rows are averaged separately and added (the paper does not say how it balances them).
- Classification: nearest class mean of f(x) (eq. 8 with the single sample z = E[z]); ``forward`` returns
  logits -alpha ||f(x) - mu_c||^2 (softmax = mixture responsibilities, argmax = nearest mean).
- Rejection: tau_enc = chi-square critical value (dim_z dof, ``coverage`` 0.9973 = the 3-sigma rule) on the
  squared Mahalanobis distance of f(x) to the predicted class's mean, under the second moment of that class's
  training encodings about that mean (shrunk towards a scaled identity); tau_dec = mean + 3 std of the training reconstruction errors
  ||x - g(f(x))||_2 (the "corresponding value" for the decoder). Both are buffers, so they are cached.
- ``learn_entropy`` (Fig. 5's variant): a second head predicts a diagonal log-variance, so H(Q(z|x)) is learned;
  the latent term becomes the single-sample estimate of cross-entropy minus entropy, alpha ||z - mu_y||^2 -
  1/2 sum log sigma^2 (labelled; unlabelled: -log sum_c exp(-alpha ||z - mu_c||^2) - 1/2 sum log sigma^2), the
  KL of the fixed-entropy loss with the entropy term no longer constant. Classification and both thresholds are
  unchanged (on the encoder mean). Why: the paper finds detection collapses because reconstructions blur and
  tau_dec grows.
- Reclassification (eq. 9): z* = argmin_z ||g(z) - x||^2 by Adam from every class mean at once; label = nearest
  mean of the best z*; optionally rejected again when z* or its reconstruction exceeds the thresholds.

The attack/detector side (``robustsweep.attacks.gmm_vae``, ``detect/tau.py``) reads ``encode_mean``,
``decode``, ``class_means``, ``tau_enc``, ``tau_dec``, ``recon_error`` and ``latent_distance``.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from robustsweep.data.base import DataSplit
from robustsweep.models.nets import Decoder, XEncoder
from robustsweep.ops.batching import batched
from robustsweep.ops.train import Progress, TrainConfig, fit_loss
from robustsweep.registry import MODELS


class GMMVAE(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, dim_z: int | None = None,
                 hidden: int = 256, arch: str = "conv", alpha: float = 1.0, noise_var: float = 1 / 3000,
                 labels_per_class: int | None = None, coverage: float = 0.9973, tau_dec_k: float = 3.0,
                 cov_shrink: float = 0.1, learn_entropy: bool = False):
        super().__init__()
        dim_z = num_classes if dim_z is None else dim_z
        if dim_z < num_classes:
            raise ValueError(f"dim_z must be >= num_classes ({num_classes}) for one-hot class means, got {dim_z}")
        if arch == "conv" and len(input_shape) != 3:
            arch = "mlp"
        self.input_shape = tuple(input_shape)
        self.num_classes, self.dim_z = num_classes, dim_z
        self.alpha, self.noise_var = alpha, noise_var
        self.labels_per_class = labels_per_class
        self.coverage, self.tau_dec_k, self.cov_shrink = coverage, tau_dec_k, cov_shrink
        self.enc = nn.Sequential(XEncoder(self.input_shape, hidden, arch, layers=2), nn.Linear(hidden, dim_z))
        self.dec = Decoder(dim_z, self.input_shape, hidden, arch, layers=2)
        self.learn_entropy = learn_entropy
        # only the variable-entropy variant has the log-variance head (the fixed model's state dict is unchanged)
        self.logvar = nn.Linear(hidden, dim_z) if learn_entropy else None
        if self.logvar is not None:  # start at the fixed model's entropy ("keeping all other parameters same")
            nn.init.zeros_(self.logvar.weight)
            nn.init.constant_(self.logvar.bias, math.log(noise_var))
        self.register_buffer("class_means", torch.eye(num_classes, dim_z))
        self.register_buffer("class_precision", torch.eye(dim_z).repeat(num_classes, 1, 1))
        self.register_buffer("_tau_enc", torch.tensor(float("nan")))
        self.register_buffer("_tau_dec", torch.tensor(float("nan")))

    # ---- the interface the attacks and detectors use ----
    @property
    def tau_enc(self) -> float:
        return float(self._tau_enc)

    @property
    def tau_dec(self) -> float:
        return float(self._tau_dec)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., dim_z) -> reconstruction in input shape (..., *input_shape), values in (0, 1)."""
        return torch.sigmoid(self.dec(z)).view(*z.shape[:-1], *self.input_shape)

    def recon_error(self, x: torch.Tensor) -> torch.Tensor:
        """||x - g(f(x))||_2 per example (no encoder noise: the deterministic reconstruction tau_dec is set on)."""
        return (x - self.decode(self.encode_mean(x))).flatten(1).norm(dim=1)

    def latent_distance(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance of f(x) to mu_c under class c's training covariance."""
        return self._mahalanobis(self.encode_mean(x), classes)

    def _mahalanobis(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        d = z - self.class_means[classes]
        return torch.einsum("ni,nij,nj->n", d, self.class_precision[classes], d)

    # ---- classifier ----
    def _sqdist(self, z: torch.Tensor) -> torch.Tensor:
        return ((z.unsqueeze(-2) - self.class_means) ** 2).sum(-1)  # (..., C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.alpha * self._sqdist(self.encode_mean(x))

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised log p(x) proxy (eq. 5 at z = f(x)): -||x - g(f(x))||^2 + log sum_c exp(-alpha d_c^2)."""
        z = self.encode_mean(x)
        rec = (x - self.decode(z)).flatten(1).pow(2).sum(1)
        return -rec + torch.logsumexp(-self.alpha * self._sqdist(z), dim=1)

    def predict_with_reject(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(nearest-mean class, rejected) with rejected = Mahalanobis > tau_enc or recon error > tau_dec."""
        self._check_calibrated()
        z = self.encode_mean(x)
        pred = self._sqdist(z).argmin(-1)
        rec = (x - self.decode(z)).flatten(1).norm(dim=1)
        return pred, (self._mahalanobis(z, pred) > self._tau_enc) | (rec > self._tau_dec)

    def reclassify(self, x: torch.Tensor, steps: int = 200, lr: float = 0.05,
                   reject_fooling: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 9: optimise z from every class mean to reconstruct x; (label of best z*, rejected)."""
        self._check_calibrated()
        N, C = len(x), self.num_classes
        x = x.detach()
        z = self.class_means.unsqueeze(1).expand(C, N, self.dim_z).clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            with torch.enable_grad():
                err = (self.decode(z) - x).flatten(2).pow(2).sum(-1)  # (C, N)
                opt.zero_grad()
                err.sum().backward()
            opt.step()
        with torch.no_grad():
            err = (self.decode(z) - x).flatten(2).pow(2).sum(-1)
            best = err.argmin(0)
            zs = z[best, torch.arange(N)]
            label = self._sqdist(zs).argmin(-1)
            rejected = torch.zeros(N, dtype=torch.bool, device=x.device)
            if reject_fooling:
                rejected = (self._mahalanobis(zs, label) > self._tau_enc) | (err[best, torch.arange(N)].sqrt()
                                                                             > self._tau_dec)
        return label, rejected

    def _check_calibrated(self) -> None:
        if math.isnan(self.tau_enc):
            raise RuntimeError("GMM-VAE thresholds are not set: train with fit() or call calibrate()")

    # ---- training ----
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Eq. 7 for labelled rows, the mixture-prior eq. 3 for rows with y < 0 (unlabelled); mean over the batch."""
        if self.logvar is None:
            mu = self.encode_mean(x)
            z = mu + math.sqrt(self.noise_var) * torch.randn_like(mu)
            d2, neg_entropy = self._sqdist(mu), 0.0  # (N, C); the entropy is a constant
        else:
            h = self.enc[0](x)
            mu, logvar = self.enc[1](h), self.logvar(h).clamp(-12.0, 4.0)
            z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            d2, neg_entropy = self._sqdist(z), -0.5 * logvar.sum(1)  # single-sample cross-entropy, minus H
        rec = (x - self.decode(z)).flatten(1).pow(2).sum(1)
        labelled = y >= 0
        lat_l = d2.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1) * self.alpha
        lat_u = -torch.logsumexp(-self.alpha * d2, dim=1)
        per = rec + torch.where(labelled, lat_l, lat_u) + neg_entropy
        if labelled.all() or not labelled.any():
            return per.mean()
        # semi-supervised: the few labelled rows of a batch weigh as much as the many unlabelled ones, else the
        # mixture term alone decides which component each cluster falls into
        return per[labelled].mean() + per[~labelled].mean()

    def fit(self, data: DataSplit, cfg: TrainConfig, device: torch.device, progress: Progress | None = None) -> None:
        seed = torch.initial_seed()  # the trial runner seeds before training
        y = data.y_train.clone()
        if self.labels_per_class is not None:
            keep = self.labelled_subset(y, self.labels_per_class, seed)
            y[~keep] = -1
            if progress:
                progress(f"semi-supervised: {int(keep.sum())} labelled, {int((~keep).sum())} unlabelled")
        fit_loss(self, data.x_train, y, cfg, device, progress, seed)
        x = data.x_train.to(device)
        y = y.to(device)
        with torch.no_grad():  # unlabelled rows enter the class statistics under their predicted class
            pred = batched(lambda xb: self(xb).argmax(1), x)
        self.calibrate(x, torch.where(y >= 0, y, pred))

    @staticmethod
    def labelled_subset(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        keep = torch.zeros(len(y), dtype=torch.bool)
        for c in y.unique():
            idx = (y == c).nonzero().squeeze(1)
            keep[idx[torch.randperm(len(idx), generator=g)[:per_class]]] = True
        return keep

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Class covariances, tau_enc (chi-square) and tau_dec (mean + k std of reconstruction errors)."""
        from scipy.stats import chi2

        was = self.training
        self.eval()
        z, rec = batched(self.encode_mean, x), batched(self.recon_error, x)
        eye = torch.eye(self.dim_z, device=z.device)
        for c in range(self.num_classes):
            zc = z[y == c]
            if len(zc) < 2:
                cov = eye * self.noise_var
            else:
                d = zc - self.class_means[c]  # spread about the component mean the distance is measured to
                s = d.T @ d / (len(d) - 1)
                cov = (1 - self.cov_shrink) * s + self.cov_shrink * (s.trace() / self.dim_z) * eye
                cov = cov + 1e-6 * eye
            self.class_precision[c] = torch.linalg.inv(cov)
        self._tau_enc.fill_(float(chi2.ppf(self.coverage, df=self.dim_z)))
        self._tau_dec.fill_(float(rec.mean() + self.tau_dec_k * rec.std()))
        self.train(was)


@MODELS.register("gmmvae", kind="generative", stochastic=False, input="any", provides="gmmvae")
def gmmvae(
    input_shape: tuple[int, ...],
    num_classes: int,
    dim_z: int | None = None,
    hidden: int = 256,
    arch: str = "conv",
    alpha: float = 1.0,
    noise_var: float = 1 / 3000,
    labels_per_class: int | None = None,
    coverage: float = 0.9973,
    tau_dec_k: float = 3.0,
    learn_entropy: bool = False,
) -> GMMVAE:
    """GMM-prior VAE selective classifier (paper 003): eq. 7 loss, nearest-mean class, tau_enc/tau_dec reject option.

    dim_z: latent size (default = number of classes; larger pads the one-hot means with zeros), alpha: eq. 7
    trade-off, noise_var: fixed encoder variance (1/3000 on MNIST), labels_per_class: semi-supervised (None = all
    labels), coverage: chi-square level of tau_enc (0.9973 = 3 sigma), tau_dec_k: tau_dec = mean + k std,
    learn_entropy: Fig. 5's variant with a learned (diagonal) encoder variance instead of the fixed noise_var.
    """
    return GMMVAE(input_shape, num_classes, dim_z, hidden, arch, alpha, noise_var, labels_per_class, coverage,
                  tau_dec_k, learn_entropy=learn_entropy)
