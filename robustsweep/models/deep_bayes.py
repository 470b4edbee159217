"""The seven deep-Bayes classifiers of Li, Bradshaw & Sharma (2019), paper 001 §2, as ONE parameterised class.

Each factorisation of p(x, z, y) is three choices (Fig. 1 of the paper):

=====  ===========  ===========  ============  ==================================
name   z term       y term       x term        logits log p(x, y_c) estimate uses
=====  ===========  ===========  ============  ==================================
gfz    p(z)         p(y|z)       p(x|z,y)      p(z) p(y_c|z) p(x|z,y_c) / q
gfy    p(z|y)       p_D(y)       p(x|z,y)      p_D(y_c) p(z|y_c) p(x|z,y_c) / q
gbz    p(z)         p(y|z)       p(x|z)        p(z) p(y_c|z) p(x|z) / q
gby    p(z|y)       p_D(y)       p(x|z)        p_D(y_c) p(z|y_c) p(x|z) / q
dfx    p(z|x)       p(y|z,x)     p_D(x)        p(z|x) p(y_c|z,x) / q       (p_D(x) cancels)
dfz    p(z)         p(y|z,x)     p(x|z)        p(z) p(x|z) p(y_c|z,x) / q
dbx    p(z|x)       p(y|z)       p_D(x)        p(z|x) p(y_c|z) / q         (p_D(x) cancels)
=====  ===========  ===========  ============  ==================================

Training maximises the ELBO of eq. 1 with the amortised posterior q(z|x,y) (factorised Gaussian). The
Gaussian KL(q || p(z|.)) is taken in closed form (same ELBO, lower-variance gradient), the remaining
expectations use ``K_train`` reparameterised samples. Prediction is eq. 2: for every class c, K samples
z_ck ~ q(z|x, y_c) and logits_c = log (1/K) sum_k p(x, z_ck, y_c) / q(z_ck|x, y_c), computed for all classes
and samples in one batched pass of shape (K, C, N). For DFX and DBX the data density p_D(x) is unknown but the
same for every class, so it is dropped: their logits estimate log p(y_c|x) and ``log_marginal`` (logsumexp over
classes) is ~0 -- they have no density to detect with, which is exactly the paper's point. p_D(y) is uniform
(the buffer ``log_prior_y``; every data set here is near balanced).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robustsweep.models import draws
from robustsweep.models.base import options_from
from robustsweep.models.likelihoods import (
    kl_normal,
    log_normal,
    log_std_normal,
    make_likelihood,
)
from robustsweep.models.nets import Decoder, XEncoder, mlp
from robustsweep.registry import MODELS

LOGVAR_MIN, LOGVAR_MAX = -12.0, 6.0


@dataclass(frozen=True)
class Factorisation:
    z_prior: str  # "std": p(z) = N(0, I) | "y": p(z|y) | "x": p(z|x)
    y_term: str  # "data": p_D(y) | "z": p(y|z) | "zx": p(y|z,x)
    x_term: str  # "zy": p(x|z,y) | "z": p(x|z) | "data": p_D(x), cancels in eq. 2

    @property
    def generates_x(self) -> bool:
        return self.x_term != "data"


FACTORISATIONS: dict[str, Factorisation] = {
    "gfz": Factorisation("std", "z", "zy"),
    "gfy": Factorisation("y", "data", "zy"),
    "gbz": Factorisation("std", "z", "z"),
    "gby": Factorisation("y", "data", "z"),
    "dfx": Factorisation("x", "zx", "data"),
    "dfz": Factorisation("std", "zx", "z"),
    "dbx": Factorisation("x", "z", "data"),
}


def _split(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Network output (..., 2*dz) -> (mean, clamped log-variance)."""
    mu, lv = params.chunk(2, dim=-1)
    return mu, lv.clamp(LOGVAR_MIN, LOGVAR_MAX)


def _pick(logits: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[..., y]: logits (S, G, N, C), yi (G or 1, N or 1) -> (S, G, N)."""
    logp = F.log_softmax(logits, dim=-1)
    idx = yi.expand(logp.shape[:-1]).unsqueeze(-1)
    return logp.gather(-1, idx).squeeze(-1)


class DeepBayes(nn.Module):
    """Deep-Bayes classifier for one factorisation (see module docstring). forward(x) = eq. 2 logits (N, C).

    ``bounded=False`` (used by the fusion models, not settable from a spec) models unbounded standardised
    features: the decoder mean is linear instead of sigmoid.

    The logits are Monte-Carlo estimates: every call draws fresh noise from the global RNG, unless the call runs
    inside :func:`robustsweep.models.draws.shared_draws`, which fixes the noise (common random numbers for
    finite-difference attacks such as SPSA and ZOO; see that module for why).
    """

    stochastic = True  # read by robustsweep.models.draws.is_stochastic
    marginal_is_logsumexp = True  # log_marginal below: detectors reuse logits in hand (detect/density.py)

    def __init__(
        self,
        factorisation: str,
        input_shape: tuple[int, ...],
        num_classes: int,
        dim_z: int = 64,
        hidden: int = 500,
        arch: str = "mlp",
        likelihood: str = "l2",
        sigma: float = 0.25,
        K_train: int = 1,
        K: int = 10,
        layers: int = 2,
        bounded: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if factorisation not in FACTORISATIONS:
            raise ValueError(f"factorisation must be one of {sorted(FACTORISATIONS)}, got {factorisation!r}")
        if K < 1 or K_train < 1:
            raise ValueError(f"K and K_train must be >= 1, got K={K}, K_train={K_train}")
        self.name = factorisation
        self.f = f = FACTORISATIONS[factorisation]
        self.input_shape = tuple(input_shape)
        self.num_classes = C = num_classes
        self.dim_z = dz = dim_z
        self.K, self.K_train = K, K_train
        self.D = math.prod(self.input_shape)

        # q(z | x, y): features of x, concatenated with one-hot y, one hidden layer -> (mu, logvar)
        x_net = {"arch": arch, "layers": layers, "dropout": dropout}  # every x-network and the decoder (paper 002)
        self.q_x = XEncoder(self.input_shape, hidden, **x_net)
        self.q_head = mlp(hidden + C, hidden, 2 * dz, 1)
        if f.z_prior == "y":
            self.pz_y = mlp(C, hidden, 2 * dz, 1)
        elif f.z_prior == "x":
            self.pz_x = nn.Sequential(XEncoder(self.input_shape, hidden, **x_net), nn.Linear(hidden, 2 * dz))
        if f.y_term == "z":
            self.py_z = mlp(dz, hidden, C, 1)
        elif f.y_term == "zx":
            self.py_x = XEncoder(self.input_shape, hidden, **x_net)
            self.py_head = mlp(dz + hidden, hidden, C, 1)
        if f.generates_x:
            self.dec = Decoder(dz + (C if f.x_term == "zy" else 0), self.input_shape, hidden, **x_net)
            self.lik = make_likelihood(likelihood, self.D, sigma, bounded)
        self.register_buffer("log_prior_y", torch.full((C,), -math.log(C)))

    # ---- pieces shared by the ELBO and the batched logits. Shapes: S samples, G class groups, N inputs. ----
    def _context(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything that depends on x only, computed once per call (not once per class or sample)."""
        ctx = {"x_flat": x.reshape(len(x), -1)}
        if self.f.z_prior == "x":
            ctx["pz_mu"], ctx["pz_lv"] = _split(self.pz_x(x))  # (N, dz)
        if self.f.y_term == "zx":
            ctx["hy"] = self.py_x(x)  # (N, H)
        return ctx

    def _q(self, hx: torch.Tensor, yv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x,y) parameters: hx (N, H), yv (G, N or 1, C) -> (G, N, dz) each."""
        G, N = yv.shape[0], hx.shape[0]
        inp = torch.cat([hx.expand(G, N, hx.shape[-1]), yv.expand(G, N, yv.shape[-1])], dim=-1)
        return _split(self.q_head(inp))

    def _prior(self, yv: torch.Tensor, ctx: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Parameters of p(z|.) broadcastable to (G, N, dz); None for the standard normal."""
        if self.f.z_prior == "std":
            return None
        if self.f.z_prior == "y":
            return _split(self.pz_y(yv))
        return ctx["pz_mu"], ctx["pz_lv"]

    def _log_py(self, z: torch.Tensor, yv: torch.Tensor, yi: torch.Tensor, ctx: dict) -> torch.Tensor:
        """log p(y|.) for the classes yi: z (S, G, N, dz) -> (S, G, N) (or broadcastable for p_D(y))."""
        if self.f.y_term == "data":
            return self.log_prior_y[yi]
        if self.f.y_term == "z":
            return _pick(self.py_z(z), yi)
        hy = ctx["hy"].expand(*z.shape[:-1], ctx["hy"].shape[-1])
        return _pick(self.py_head(torch.cat([z, hy], dim=-1)), yi)

    def _log_px(self, z: torch.Tensor, yv: torch.Tensor, ctx: dict) -> torch.Tensor:
        """log p(x|z[,y]) -> (S, G, N); zero for DFX/DBX whose p_D(x) cancels."""
        if not self.f.generates_x:
            return torch.zeros(z.shape[:-1], device=z.device)
        inp = z if self.f.x_term == "z" else torch.cat([z, yv.expand(*z.shape[:-1], yv.shape[-1])], dim=-1)
        return self.lik.log_prob(ctx["x_flat"], self.dec(inp))

    # ---- the model contract ----
    # rows (samples x classes x inputs) per batched pass: one pass over every class and sample, with the inputs
    # taken in chunks so the activations stay cache-sized (bench/bench_core.py: one 50k-row pass on CPU was ~2x
    # slower than a per-class loop; chunks of this size are faster than both)
    max_rows: int = 4096

    def logits(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 2: (N, C) log (1/K) sum_k p(x, z_ck, y_c)/q(z_ck|x, y_c), all classes and samples batched.

        ``eps`` (K, C, N, dim_z) fixes the standard-normal noise (tests); by default it is drawn fresh from the
        global RNG, or, inside :func:`~robustsweep.models.draws.shared_draws`, from one generator seeded afresh for
        this call and consumed chunk by chunk in order -- so the noise is a function of (seed, N) only and two calls
        on equally sized batches see identical noise row for row.
        """
        k = self.K if eps is None else eps.shape[0]
        chunk = max(1, self.max_rows // (k * self.num_classes))
        gen = draws.generator(self, x.device) if eps is None else None
        if x.shape[0] <= chunk:
            return self._logits_block(x, eps, gen)
        return torch.cat([self._logits_block(x[i : i + chunk], None if eps is None else eps[:, :, i : i + chunk],
                                             gen)
                          for i in range(0, x.shape[0], chunk)])

    def _logits_block(self, x: torch.Tensor, eps: torch.Tensor | None = None,
                      gen: torch.Generator | None = None) -> torch.Tensor:
        N, C = x.shape[0], self.num_classes
        ctx = self._context(x)
        yv = torch.eye(C, device=x.device).unsqueeze(1)  # (C, 1, C)
        yi = torch.arange(C, device=x.device).unsqueeze(1)  # (C, 1)
        mu, lv = self._q(self.q_x(x), yv)  # (C, N, dz)
        if eps is None:
            eps = draws.randn(self, (self.K, C, N, self.dim_z), x.device, gen)
        z = mu + torch.exp(0.5 * lv) * eps  # (K, C, N, dz)
        prior = self._prior(yv, ctx)
        log_pz = log_std_normal(z) if prior is None else log_normal(z, *prior)
        logw = log_pz + self._log_py(z, yv, yi, ctx) + self._log_px(z, yv, ctx) - log_normal(z, mu, lv)
        return (torch.logsumexp(logw, dim=0) - math.log(eps.shape[0])).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) estimate = logsumexp_c log p(x, y_c) (~0 for DFX/DBX, whose logits are log p(y|x))."""
        return torch.logsumexp(self.logits(x), dim=1)

    def elbo(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO of eq. 1, (N,): E_q[log p(x|.) + log p(y|.)] - KL(q(z|x,y) || p(z|.)) [+ log p_D(y)]."""
        ctx = self._context(x)
        yv = F.one_hot(y, self.num_classes).to(x.dtype).unsqueeze(0)  # (1, N, C)
        yi = y.unsqueeze(0)  # (1, N)
        mu, lv = self._q(self.q_x(x), yv)  # (1, N, dz)
        z = mu + torch.exp(0.5 * lv) * draws.randn(self, (self.K_train, *mu.shape), x.device)
        expected = (self._log_py(z, yv, yi, ctx) + self._log_px(z, yv, ctx)).expand(self.K_train, 1, len(x))
        prior = self._prior(yv, ctx)
        if prior is None:
            kl = kl_normal(mu, lv, torch.zeros_like(mu), torch.zeros_like(lv))
        else:
            kl = kl_normal(mu, lv, *prior)
        return (expected.mean(0) - kl).squeeze(0)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.elbo(x, y).mean()

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_marginal(x)

    # ---- brute force reference for tests: one class, one sample, one input at a time ----
    @torch.no_grad()
    def logits_loop(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Eq. 2 by explicit loops over inputs, classes and samples (slow; checks the batched :meth:`logits`)."""
        from torch.distributions import Normal

        N, C, K = x.shape[0], self.num_classes, eps.shape[0]
        out = torch.empty(N, C)
        for n in range(N):
            xn = x[n : n + 1]
            for c in range(C):
                y1 = F.one_hot(torch.tensor([c]), C).to(x.dtype)
                mu, lv = _split(self.q_head(torch.cat([self.q_x(xn), y1], dim=1)))
                q = Normal(mu, torch.exp(0.5 * lv))
                if self.f.z_prior == "std":
                    pz = Normal(torch.zeros_like(mu), torch.ones_like(mu))
                elif self.f.z_prior == "y":
                    m, v = _split(self.pz_y(y1))
                    pz = Normal(m, torch.exp(0.5 * v))
                else:
                    m, v = _split(self.pz_x(xn))
                    pz = Normal(m, torch.exp(0.5 * v))
                ws = []
                for k in range(K):
                    z = mu + torch.exp(0.5 * lv) * eps[k, c, n].unsqueeze(0)
                    w = pz.log_prob(z).sum() - q.log_prob(z).sum()
                    if self.f.y_term == "data":
                        w = w + self.log_prior_y[c]
                    elif self.f.y_term == "z":
                        w = w + torch.log_softmax(self.py_z(z), dim=1)[0, c]
                    else:
                        w = w + torch.log_softmax(self.py_head(torch.cat([z, self.py_x(xn)], 1)), dim=1)[0, c]
                    if self.f.x_term == "zy":
                        w = w + self.lik.log_prob(xn.flatten(1), self.dec(torch.cat([z, y1], 1)))[0]
                    elif self.f.x_term == "z":
                        w = w + self.lik.log_prob(xn.flatten(1), self.dec(z))[0]
                    ws.append(w)
                out[n, c] = torch.logsumexp(torch.stack(ws), 0) - math.log(K)
        return out


def _register(name: str, doc: str) -> None:
    @options_from(DeepBayes, drop=("factorisation", "bounded"))
    def build(input_shape: tuple[int, ...], num_classes: int, **options: Any) -> DeepBayes:
        return DeepBayes(name, input_shape, num_classes, **options)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        doc + "\n\nOptions: dim_z (bottleneck size), hidden (layer width), arch mlp|conv, likelihood "
        "l2|gaussian|gaussian_fixed|bernoulli, sigma (fixed or initial sigma of the Gaussian likelihoods), "
        "K_train (ELBO samples), K (importance samples at test, eq. 2), layers (hidden layers of the x-networks), "
        "dropout (after the hidden activations of the x-networks and the decoder while training; paper 002)."
    )
    kind = "generative" if name.startswith("g") else "discriminative"
    MODELS.register(name, kind=kind, stochastic=True, input="any",
                   ci={"dim_z": 16, "hidden": 128, "likelihood": "gaussian_fixed", "sigma": 0.25}, ci_epochs=6)(build)


_register("gfz", "Deep Bayes GFZ: p(z) p(y|z) p(x|z,y), generative, fully connected (paper 001).")
_register("gfy", "Deep Bayes GFY: p_D(y) p(z|y) p(x|z,y), generative, fully connected (paper 001).")
_register("gbz", "Deep Bayes GBZ: p(z) p(y|z) p(x|z), generative, bottleneck (paper 001).")
_register("gby", "Deep Bayes GBY: p_D(y) p(z|y) p(x|z), generative, bottleneck (paper 001).")
_register("dfx", "Deep Bayes DFX: p_D(x) p(z|x) p(y|z,x), discriminative, fully connected (paper 001).")
_register("dfz", "Deep Bayes DFZ: p(z) p(x|z) p(y|z,x), discriminative, fully connected (paper 001).")
_register("dbx", "Deep Bayes DBX: p_D(x) p(z|x) p(y|z), discriminative, bottleneck (paper 001).")
