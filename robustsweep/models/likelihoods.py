"""Observation models p(x | .) for the generative classifiers, plus Gaussian log-density/KL helpers.

Why several: the deep-Bayes public code used the *unnormalised* l2 log-likelihood -sum (x - mu)^2 (no sigma,
no constant), which changes how strongly the reconstruction term weighs against log p(y|z) and the KL; the
issue asks to sweep it against a Gaussian with learned or fixed sigma and a Bernoulli. All of them take the
decoder's flat output `out` (..., D) and a flat target `x` broadcastable to it, and sum over D.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LIKELIHOODS = ("l2", "gaussian", "gaussian_fixed", "bernoulli")
LOG_2PI = math.log(2 * math.pi)


class Likelihood(nn.Module):
    """Base: ``log_prob(x, out)`` sums over the last dim; ``mean(out)`` is the reconstruction in input space.

    ``bounded``: inputs live in [0, 1] (images), so the mean is sigmoid(out); unbounded inputs (standardised
    backbone features of the fusion models) use the identity.
    """

    def __init__(self, bounded: bool = True):
        super().__init__()
        self.bounded = bounded

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.bounded else out


class L2(Likelihood):
    """log p(x|.) = -sum (x - mu)^2: the deep-Bayes code's unnormalised l2 "likelihood"."""

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return -((x - self.mean(out)) ** 2).sum(-1)


class GaussianFixed(Likelihood):
    """Normalised N(x; mean(out), sigma^2 I) with a fixed sigma."""

    def __init__(self, sigma: float, bounded: bool = True):
        super().__init__(bounded)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.register_buffer("log_sigma", torch.tensor(math.log(sigma)))

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        mu = self.mean(out)
        ls = self.log_sigma
        return (-0.5 * ((x - mu) / ls.exp()) ** 2 - ls - 0.5 * LOG_2PI).sum(-1)


class GaussianLearned(Likelihood):
    """Normalised Gaussian with one learned sigma per input dimension, initialised at `sigma`.

    Floored at `sigma_min`: pixels that are constant in the training data (digit borders) would otherwise
    drive sigma -> 0 and the log-likelihood -> +inf.
    """

    def __init__(self, dim: int, sigma: float, sigma_min: float = 0.01, bounded: bool = True):
        super().__init__(bounded)
        self.log_sigma = nn.Parameter(torch.full((dim,), math.log(sigma)))
        self.log_sigma_min = math.log(sigma_min)

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        mu = self.mean(out)
        ls = self.log_sigma.clamp(min=self.log_sigma_min)
        return (-0.5 * ((x - mu) / ls.exp()) ** 2 - ls - 0.5 * LOG_2PI).sum(-1)


class Bernoulli(Likelihood):
    """log Bern(x; sigmoid(out)) = -BCE; for grey levels in [0, 1] this is the usual continuous relaxation."""

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        x, out = torch.broadcast_tensors(x, out)
        return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)


def make_likelihood(name: str, dim: int, sigma: float, bounded: bool = True) -> Likelihood:
    if name == "l2":
        return L2(bounded)
    if name == "gaussian":
        return GaussianLearned(dim, sigma, bounded=bounded)
    if name == "gaussian_fixed":
        return GaussianFixed(sigma, bounded)
    if name == "bernoulli":
        if not bounded:
            raise ValueError("likelihood 'bernoulli' needs inputs in [0, 1]; use l2 or a Gaussian on features")
        return Bernoulli()
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {name!r}")


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dim (broadcasting)."""
    return (-0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI)).sum(-1)


def log_std_normal(z: torch.Tensor) -> torch.Tensor:
    return (-0.5 * (z**2 + LOG_2PI)).sum(-1)


def kl_normal(mu_q: torch.Tensor, lv_q: torch.Tensor, mu_p: torch.Tensor, lv_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p)), summed over the last dim (broadcasting)."""
    return 0.5 * (lv_p - lv_q + (torch.exp(lv_q) + (mu_q - mu_p) ** 2) * torch.exp(-lv_p) - 1).sum(-1)
