"""Marginal, logit, KL and TV detection of Li, Bradshaw & Sharma (paper 001 §3), δ = mean + α·std.

Each detector turns an input into a statistic d(x) (larger = more suspicious), standardises it with the mean and
standard deviation measured on CLEAN fit data -- globally for marginal detection, per class for the others --
and rejects when the standardised value z(x) = (d(x) - d̄)/σ exceeds α, i.e. when d(x) > δ = d̄ + α·σ:

- marginal: d = -log p(x) (model.log_marginal if present, else logsumexp of the logits = log Σ_c p(x, y_c));
- logit:    d = -log p(x, F(x)), statistics of class c from log p(x, y_c) on fit inputs of class c;
- kl:       d = KL[p̄_c || p(·|x)] with c = F(x) and p̄_c the mean predicted probability vector of class c;
- tv:       d = ½ ||p̄_c - p(·|x)||₁ (total variation), same class statistics.

α is either given (a sweepable hyperparameter) or, when ``alpha`` is None, found by bisection in [0, 3] so that
the fraction of fit data rejected equals ``target_fpr`` (5% in the papers; statistics are computed once at fit
time, so the bisection is exact even for stochastic models). ``score`` returns z, so ROC curves from different
classes' thresholds are comparable and the operating point is ``z > alpha``. Where many fit inputs share the
same statistic (ties) the exact target FPR may be unattainable; the achieved value is kept in ``fit_fpr``.
"""
from __future__ import annotations

import torch

from robustsweep.detect._common import alpha_for_fpr, group_stats, logits_of, standardise
from robustsweep.ops.batching import batched, model_device
from robustsweep.registry import DETECTORS

_KINDS = ("marginal", "logit", "kl", "tv")


class DensityDetector:
    """One of marginal / logit / KL / TV detection; see the module docstring."""

    def __init__(self, kind: str, alpha: float | None = None, target_fpr: float = 0.05):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.kind = kind
        self.alpha = alpha
        self.target_fpr = target_fpr
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.p_bar: torch.Tensor | None = None
        self.fit_fpr: float | None = None

    @property
    def threshold(self) -> float:
        """Operating point on the ``score`` scale: reject iff score > threshold (= α)."""
        if self.alpha is None:
            raise RuntimeError(f"{self.kind} detector used before fit()")
        return float(self.alpha)

    def _stat(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(statistic, class used for its threshold): the true class at fit time, the predicted one after."""
        logits = logits_of(model, x).float()
        if self.kind == "marginal":
            if hasattr(model, "log_marginal"):
                with torch.no_grad():
                    lm = batched(model.log_marginal, x, device=model_device(model))
            else:
                lm = torch.logsumexp(logits, dim=1)
            return -lm.float().to(x.device), torch.zeros(len(x), dtype=torch.long, device=x.device)
        c = logits.argmax(1) if y is None else y.to(logits.device)
        if self.kind == "logit":
            return -logits.gather(1, c[:, None]).squeeze(1), c
        logp = logits.log_softmax(1)  # exact log-probabilities: log(p.clamp(eps)) would tie all confident inputs
        p = logp.exp()
        if y is not None:  # fit time: class-mean probability vectors
            self.p_bar = torch.stack([
                p[c == k].mean(0) if (c == k).any() else torch.full((p.shape[1],), 1.0 / p.shape[1])
                for k in range(p.shape[1])
            ]).to(p.device)
        q = self.p_bar[c]
        if self.kind == "kl":
            d = (torch.xlogy(q, q) - q * logp).sum(1)
        else:
            d = 0.5 * (q - p).abs().sum(1)
        return d, c

    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> DensityDetector:
        stat, group = self._stat(model, x, y)
        n_groups = 1 if self.kind == "marginal" else int(getattr(model, "num_classes", int(group.max()) + 1))
        self.mean, self.std = group_stats(stat, group, n_groups)
        # FPR is measured the way the detector is used: threshold of the *predicted* class
        z_fit = self._z(model, x) if self.kind != "marginal" else standardise(stat, group, self.mean, self.std)
        if self.alpha is None:
            self.alpha = alpha_for_fpr(z_fit, self.target_fpr)
        self.fit_fpr = (z_fit > self.alpha).float().mean().item()
        return self

    def _z(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            raise RuntimeError(f"{self.kind} detector used before fit()")
        stat, group = self._stat(model, x)
        return standardise(stat, group, self.mean.to(stat.device), self.std.to(stat.device))

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Standardised statistic z(x); higher = more suspicious."""
        return self._z(model, x)

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.score(model, x) > self.threshold


@DETECTORS.register("marginal", calibration="train")
def marginal(alpha: float | None = None, target_fpr: float = 0.05) -> DensityDetector:
    """Marginal detection (paper 001): reject if -log p(x) > mean + alpha*std on clean data."""
    return DensityDetector("marginal", alpha, target_fpr)


@DETECTORS.register("logit", calibration="train")
def logit(alpha: float | None = None, target_fpr: float = 0.05) -> DensityDetector:
    """Logit detection (paper 001/002): reject if -log p(x, F(x)) > mean_c + alpha*std_c of the predicted class."""
    return DensityDetector("logit", alpha, target_fpr)


@DETECTORS.register("kl", calibration="train")
def kl(alpha: float | None = None, target_fpr: float = 0.05) -> DensityDetector:
    """KL detection (paper 001): reject if KL[mean prob. vector of F(x) || p(.|x)] > mean_c + alpha*std_c."""
    return DensityDetector("kl", alpha, target_fpr)


@DETECTORS.register("tv", calibration="train")
def tv(alpha: float | None = None, target_fpr: float = 0.05) -> DensityDetector:
    """TV detection (paper 001): total variation to the class-mean probability vector, mean_c + alpha*std_c."""
    return DensityDetector("tv", alpha, target_fpr)
