"""The causal generative head of paper 000 §3: latent z, perturbation latent m, inputs x1 (image) and x2 (features).

Graph: (y, z, m) -> (x1, x2). Encoders q(m | x1, x2, y) and q(z | x1, x2, y, m) (MLPs, 4 hidden layers of 500 in
the paper), decoder p(x1, x2 | y, z, m) (2 hidden layers), priors p(z) = p(m) = N(0, I), p(y) uniform.

Training (``m_mode="zero"``, the paper): only clean data, m = 0, so the ELBO of eq. 9 is
E_q(z|x1,x2,y,m=0)[log p(x1,x2|y,z,0)] - KL(q(z|.) || p(z)) + log p(y). q(m|.) then receives no gradient; its
output layer is initialised to a near-zero mean and small variance (std 0.1) so that the m drawn at inference
stays near the value the decoder was trained with -- our choice, the paper does not say how q(m) is set up.
Inference is eq. 10: m_k ~ q(m|x1,x2,y_c), z_k ~ q(z|x1,x2,y_c,m_k) and
logits_c = log (1/K) sum_k p(z_k) p(y_c) p(x1,x2|y_c,z_k,m_k) / q(z_k|x1,x2,y_c,m_k), batched over (K, C, N).
``m_mode="elbo"`` instead learns q(m) with its KL term and adds p(m_k)/q(m_k) to the importance weight (the
proper estimator for that model). Deep-CAMA-style fine-tuning of q(m|.) on perturbed inputs
(:mod:`robustsweep.models.m_finetune`) switches a trained ``zero`` head to that estimator; the switch is the
``m_learned`` buffer, so a head restored from the model cache keeps it.

``x2_dim = 0`` is the head on the image alone: Deep CAMA (:mod:`robustsweep.models.deep_cama`).

The head takes ONE tensor, cat(x1.flatten(1), x2), so the generic trainer can fit it; ``x1_dim`` splits it.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from robustsweep.models.likelihoods import kl_normal, log_normal, log_std_normal, make_likelihood
from robustsweep.models.nets import mlp

M_MODES = ("zero", "elbo")


class CondMLP(nn.Module):
    """MLP on cat(x, cond) whose first layer is split so x is projected once and cond is broadcast.

    Why: the logits need the encoder for every class (and sample); concatenating a (C, N, D) copy of a
    10k-dimensional x (CIFAR image + VGG features) would cost C times the memory for nothing.
    """

    def __init__(self, x_dim: int, cond_dim: int, hidden: int, out_dim: int, layers: int):
        super().__init__()
        self.fx = nn.Linear(x_dim, hidden)
        self.fc = nn.Linear(cond_dim, hidden, bias=False)
        self.rest = mlp(hidden, hidden, out_dim, max(layers - 1, 0))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.fx(x)

    def forward(self, px: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """px = project(x) (N, H), cond (..., N or 1, cond_dim) -> (..., N, out_dim)."""
        return self.rest(torch.relu(px + self.fc(cond)))


class CausalHead(nn.Module):
    """Generative classifier p(x1, x2, y, z, m) of paper 000 on a concatenated (image, features) input."""

    def __init__(
        self,
        x1_dim: int,
        x2_dim: int,
        num_classes: int,
        dim_z: int = 64,
        dim_m: int = 16,
        hidden: int = 500,
        enc_layers: int = 4,
        dec_layers: int = 2,
        likelihood: str = "gaussian",
        sigma: float = 0.25,
        K_train: int = 1,
        K: int = 10,
        m_mode: str = "zero",
    ):
        super().__init__()
        if m_mode not in M_MODES:
            raise ValueError(f"m_mode must be one of {M_MODES}, got {m_mode!r}")
        self.x1_dim, self.x2_dim = x1_dim, x2_dim
        self.num_classes = C = num_classes
        self.dim_z, self.dim_m, self.K, self.K_train, self.m_mode = dim_z, dim_m, K, K_train, m_mode
        D = x1_dim + x2_dim
        self.q_m = CondMLP(D, C, hidden, 2 * dim_m, enc_layers)
        self.q_z = CondMLP(D, C + dim_m, hidden, 2 * dim_z, enc_layers)
        self.dec = mlp(C + dim_z + dim_m, hidden, D, dec_layers)
        self.lik1 = make_likelihood(likelihood, x1_dim, sigma, bounded=True)
        self.lik2 = make_likelihood(likelihood, x2_dim, sigma, bounded=False) if x2_dim else None
        self.register_buffer("log_prior_y", torch.full((C,), -math.log(C)))
        # 1 once q(m) has been learned (m_mode "elbo", or fine-tuned after "zero" training): eq. 10's weights then
        # carry p(m)/q(m), and the ELBO draws m from q(m) with its KL term
        self.register_buffer("m_learned", torch.tensor(m_mode == "elbo"))
        if m_mode == "zero":
            last = self.q_m.rest[-1]
            with torch.no_grad():
                last.weight.zero_()
                last.bias[:dim_m].zero_()
                last.bias[dim_m:].fill_(math.log(0.01))

    @staticmethod
    def _split(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, lv = p.chunk(2, dim=-1)
        return mu, lv.clamp(-12.0, 6.0)

    @property
    def learns_m(self) -> bool:
        return bool(self.m_learned)

    def _log_px(self, xx: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        d1 = self.x1_dim
        lp = self.lik1.log_prob(xx[:, :d1], out[..., :d1])
        return lp + self.lik2.log_prob(xx[:, d1:], out[..., d1:]) if self.x2_dim else lp

    def logits(self, xx: torch.Tensor, eps_m: torch.Tensor | None = None,
               eps_z: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 10, (N, C). Optional fixed noise: eps_m (K, C, N, dim_m), eps_z (K, C, N, dim_z)."""
        N, C, K = xx.shape[0], self.num_classes, self.K if eps_m is None else eps_m.shape[0]
        yv = torch.eye(C, device=xx.device).unsqueeze(1)  # (C, 1, C)
        m_mu, m_lv = self._split(self.q_m(self.q_m.project(xx), yv))  # (C, N, dm)
        if eps_m is None:
            eps_m = torch.randn(K, C, N, self.dim_m, device=xx.device)
        if eps_z is None:
            eps_z = torch.randn(K, C, N, self.dim_z, device=xx.device)
        m = m_mu + torch.exp(0.5 * m_lv) * eps_m  # (K, C, N, dm)
        yk = yv.expand(K, C, N, C)
        z_mu, z_lv = self._split(self.q_z(self.q_z.project(xx), torch.cat([yk, m], -1)))  # (K, C, N, dz)
        z = z_mu + torch.exp(0.5 * z_lv) * eps_z
        out = self.dec(torch.cat([yk, z, m], -1))
        logw = (log_std_normal(z) + self.log_prior_y.view(1, C, 1) + self._log_px(xx, out)
                - log_normal(z, z_mu, z_lv))
        if self.learns_m:
            logw = logw + log_std_normal(m) - log_normal(m, m_mu, m_lv)
        return (torch.logsumexp(logw, 0) - math.log(K)).transpose(0, 1)

    def forward(self, xx: torch.Tensor) -> torch.Tensor:
        return self.logits(xx)

    def elbo(self, xx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO (eq. 9 with m = 0, or the full ELBO over (z, m) for m_mode="elbo")."""
        N, C, S = xx.shape[0], self.num_classes, self.K_train
        yv = nn.functional.one_hot(y, C).to(xx.dtype)  # (N, C)
        if not self.learns_m:
            m = torch.zeros(S, N, self.dim_m, device=xx.device)
            kl_m = torch.zeros(N, device=xx.device)
        else:
            m_mu, m_lv = self._split(self.q_m(self.q_m.project(xx), yv))
            m = m_mu + torch.exp(0.5 * m_lv) * torch.randn(S, N, self.dim_m, device=xx.device)
            kl_m = kl_normal(m_mu, m_lv, torch.zeros_like(m_mu), torch.zeros_like(m_lv))
        ys = yv.expand(S, N, C)
        z_mu, z_lv = self._split(self.q_z(self.q_z.project(xx), torch.cat([ys, m], -1)))  # (S, N, dz)
        z = z_mu + torch.exp(0.5 * z_lv) * torch.randn_like(z_mu)
        rec = self._log_px(xx, self.dec(torch.cat([ys, z, m], -1)))  # (S, N)
        kl_z = kl_normal(z_mu, z_lv, torch.zeros_like(z_mu), torch.zeros_like(z_lv))  # (S, N)
        return (rec - kl_z).mean(0) - kl_m + self.log_prior_y[y]

    def loss(self, xx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.elbo(xx, y).mean()

    def log_marginal(self, xx: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.logits(xx), dim=1)

    @torch.no_grad()
    def logits_loop(self, xx: torch.Tensor, eps_m: torch.Tensor, eps_z: torch.Tensor) -> torch.Tensor:
        """Eq. 10 one input, class and sample at a time with plain concatenation (checks :meth:`logits`)."""
        N, C, K = xx.shape[0], self.num_classes, eps_m.shape[0]
        out = torch.empty(N, C)

        def enc(net: CondMLP, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            w = torch.cat([net.fx.weight, net.fc.weight], 1)  # the unsplit first layer
            h = torch.relu(torch.cat([x, cond], 1) @ w.T + net.fx.bias)
            return self._split(net.rest(h))

        for n in range(N):
            x = xx[n : n + 1]
            for c in range(C):
                y1 = nn.functional.one_hot(torch.tensor([c]), C).to(xx.dtype)
                m_mu, m_lv = enc(self.q_m, x, y1)
                ws = []
                for k in range(K):
                    m = m_mu + torch.exp(0.5 * m_lv) * eps_m[k, c, n]
                    z_mu, z_lv = enc(self.q_z, x, torch.cat([y1, m], 1))
                    z = z_mu + torch.exp(0.5 * z_lv) * eps_z[k, c, n]
                    o = self.dec(torch.cat([y1, z, m], 1))
                    qz = torch.distributions.Normal(z_mu, torch.exp(0.5 * z_lv))
                    pz = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
                    w = pz.log_prob(z).sum() + self.log_prior_y[c] + self._log_px(x, o)[0] - qz.log_prob(z).sum()
                    if self.learns_m:
                        qm = torch.distributions.Normal(m_mu, torch.exp(0.5 * m_lv))
                        w = w + torch.distributions.Normal(0.0, 1.0).log_prob(m).sum() - qm.log_prob(m).sum()
                    ws.append(w)
                out[n, c] = torch.logsumexp(torch.stack(ws), 0) - math.log(K)
        return out
