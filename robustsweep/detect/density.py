"""Marginal, logit, KL and TV detection of Li, Bradshaw & Sharma (paper 001 §3), δ = mean + α·std.

Each detector turns an input into a statistic d(x) (larger = more suspicious), standardises it with the mean and
standard deviation measured on CLEAN fit data -- globally for marginal detection, per class for the others --
and rejects when the standardised value z(x) = (d(x) - d̄)/σ exceeds α, i.e. when d(x) > δ = d̄ + α·σ:

- marginal: d = -log p(x) (model.log_marginal if present, else -- or where the model declares
  ``marginal_is_logsumexp`` -- logsumexp of the logits = log Σ_c p(x, y_c));
- logit:    d = -log p(x, F(x)), statistics of class c from log p(x, y_c) on fit inputs of class c;
- kl:       d = KL[p̄_c || p(·|x)] with c = F(x) and p̄_c the mean predicted probability vector of class c;
- tv:       d = ½ ||p̄_c - p(·|x)||₁ (total variation), same class statistics.

α is either given (a sweepable hyperparameter) or, when ``alpha`` is None, found by bisection in [0, 3] so that
the fraction of fit data rejected equals ``target_fpr`` (5% in the papers; statistics are computed once at fit
time, so the bisection is exact even for stochastic models). ``score`` returns z, so ROC curves from different
classes' thresholds are comparable and the operating point is ``z > alpha``. Where many fit inputs share the
same statistic (ties) the exact target FPR may be unattainable; the achieved value is kept in ``fit_fpr``.

Two options follow the deep-Bayes public code (``test_attacks/detect_attacks_logp.py``):

- ``reverse`` (marginal, logit): reject HIGH log p(x) / log p(x, F(x)) instead of low, i.e. d = +log p. The
  public code does this for its discriminative baselines (``mlp``, ``cnn``: ``plus = True``), whose "log p(x)" is
  only logsumexp of cross-entropy logits. ``None`` (default) follows that rule: reversed iff the model is a
  discriminative baseline by :func:`~robustsweep.detect._common.model_kind` (a ``kind`` attribute if the model has
  one, else the classes the registry's ``kind="discriminative"`` entries build: mlp, cnn, vgg16/19, resnet18);
  generative classifiers and the seven deep-Bayes models keep the paper's direction. ``True``/``False`` force it.
  KL and TV are never reversed (the public code always rejects a large KL).
- ``per_class_alpha`` (logit, kl, tv; default False = one α for all classes): one α_c per class, each by
  bisection in [0, 3] for ``target_fpr`` on the fit inputs the detector assigns to class c (its predicted class,
  as at test time; the public code groups the training data by true label -- the same groups when the
  classifier fits its training data), and the detection rates are reported averaged over classes as the public
  code does (the evaluator reads ``class_averaged``; see :meth:`DensityDetector.score_and_class`). A class with
  fewer than ⌈1/target_fpr⌉ fit inputs cannot resolve the target and keeps the pooled α. With per-class α the
  score is z - α_c and the operating point is ``score > 0``, so ROC curves sweep one common offset to every
  class's threshold. A given ``alpha`` is used for every class as is.

And one from paper 002 (§III.3: "We compute the thresholds (δ_yc) using the well-classified samples of the
training set"): ``well_classified`` (default False, paper 001's rule: all fit inputs) fits the statistics, α and
the calibration scores on the fit inputs the model classifies correctly (one prediction per input).
"""
from __future__ import annotations

import math

import torch

from robustsweep.attacks.adaptive import hinge_or_raw
from robustsweep.detect._common import alpha_for_fpr, group_stats, logits_of, model_kind, standardise
from robustsweep.detect.base import Detector
from robustsweep.ops.batching import batched, model_device
from robustsweep.registry import DETECTORS

_KINDS = ("marginal", "logit", "kl", "tv")
_REVERSIBLE = ("marginal", "logit")


class DensityDetector(Detector):
    """One of marginal / logit / KL / TV detection; see the module docstring."""

    def __init__(self, kind: str, alpha: float | None = None, target_fpr: float = 0.05, reverse: bool | None = None,
                 per_class_alpha: bool = False, well_classified: bool = False):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if reverse and kind not in _REVERSIBLE:
            raise ValueError(f"reverse applies to {' and '.join(_REVERSIBLE)} detection only, not {kind!r}")
        if per_class_alpha and kind == "marginal":
            raise ValueError("per_class_alpha needs per-class statistics; marginal detection has one threshold")
        self.kind = kind
        self.alpha = alpha
        self.target_fpr = target_fpr
        self.reverse = reverse  # as asked (None = by model kind); the resolved direction is `reversed` after fit
        self.reversed: bool | None = None
        self.per_class_alpha = per_class_alpha
        self.well_classified = well_classified
        self.n_fit: int | None = None  # fit inputs the statistics came from (after the well_classified filter)
        self.alpha_per_class: torch.Tensor | None = None
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self.p_bar: torch.Tensor | None = None
        self.fit_fpr: float | None = None
        self.fit_fpr_per_class: torch.Tensor | None = None  # fit-data FPR within each class (None for marginal)
        self.calibration_scores: torch.Tensor | None = None  # `score` of the clean fit data (set by fit)

    @property
    def class_averaged(self) -> bool:
        """Whether detection rates are reported averaged over the (predicted) classes, as the public code does."""
        return self.per_class_alpha

    @property
    def threshold(self) -> float:
        """Operating point on the ``score`` scale: reject iff score > threshold (α; 0 with per-class α)."""
        if self.alpha is None:
            raise RuntimeError(f"{self.kind} detector used before fit()")
        return 0.0 if self.alpha_per_class is not None else float(self.alpha)

    def needs_fit_logits(self, model: torch.nn.Module) -> bool:
        """Whether :meth:`fit` uses the model's logits of the fit data (so a caller fitting several detectors can
        compute them once): all kinds but marginal detection of a model with its own ``log_marginal``."""
        return not self._own_marginal(model) or self.well_classified

    def _own_marginal(self, model: torch.nn.Module) -> bool:
        """Marginal detection by the model's own ``log_marginal`` -- unless the model declares
        ``marginal_is_logsumexp`` (its log p(x) IS logsumexp of its logits, as the deep-Bayes models'), where the
        logits already in hand give the same estimate without another K × C-decoder pass."""
        return (self.kind == "marginal" and hasattr(model, "log_marginal")
                and not getattr(model, "marginal_is_logsumexp", False))

    def _direction(self, model: torch.nn.Module) -> bool:
        if self.kind not in _REVERSIBLE:
            return False
        if self.reverse is not None:
            return bool(self.reverse)
        return model_kind(model) == "discriminative"

    def _stat(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
              logits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(statistic, class used for its threshold): the true class at fit time, the predicted one after.
        ``logits`` (of ``x``) spare the model call; marginal detection of a model with its own ``log_marginal``
        (:meth:`_own_marginal`) ignores them and calls that."""
        if self._own_marginal(model):
            with torch.no_grad():
                lm = batched(model.log_marginal, x, device=model_device(model))
            return self._sign * lm.float().to(x.device), torch.zeros(len(x), dtype=torch.long, device=x.device)
        logits = (logits_of(model, x) if logits is None else logits).float()
        if y is not None and self.kind in ("kl", "tv"):  # fit time: class-mean probability vectors
            p, c = logits.log_softmax(1).exp(), y.to(logits.device)  # as _stat_of_logits' p
            self.p_bar = torch.stack([
                p[c == k].mean(0) if (c == k).any() else torch.full((p.shape[1],), 1.0 / p.shape[1], device=p.device)
                for k in range(p.shape[1])
            ]).to(p.device)
        return self._stat_of_logits(logits, y)

    @property
    def _sign(self) -> float:
        return 1.0 if self.reversed else -1.0  # d = -log p (reject low density) or +log p (reversed)

    def _stat_of_logits(self, logits: torch.Tensor, y: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(statistic, class) from logits, differentiable in them (marginal: logsumexp; the class index is not)."""
        if self.kind == "marginal":
            lm = torch.logsumexp(logits, dim=1)
            return self._sign * lm, torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        c = logits.detach().argmax(1) if y is None else y.to(logits.device)
        if self.kind == "logit":
            return self._sign * logits.gather(1, c[:, None]).squeeze(1), c
        logp = logits.log_softmax(1)  # exact log-probabilities: log(p.clamp(eps)) would tie all confident inputs
        p = logp.exp()
        q = self.p_bar.to(p.device)[c]
        if self.kind == "kl":
            d = (torch.xlogy(q, q) - q * logp).sum(1)
        else:
            d = 0.5 * (q - p).abs().sum(1)
        return d, c

    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
            logits: torch.Tensor | None = None) -> DensityDetector:
        """Statistics, α and calibration scores from clean ``x``, ``y``.

        ``logits``: the model's logits of ``x``, if the caller has them. :func:`~robustsweep.detect.fit_detectors`
        computes them once and hands them to every density detector of a trial, as the deep-Bayes public code
        computes ``y_logit_train`` once for all its detection modes. For a stochastic model, one Monte-Carlo draw per
        fit input then gives the statistics and the fit-data z-scores. The logits of 3,500 MNIST images under a
        K × C = 100-decoder model are most of a mini trial's detector cost (issue 20).
        """
        if logits is not None and len(logits) != len(x):
            raise ValueError(f"{self.kind} detection: {len(logits)} fit logits for {len(x)} fit inputs")
        if logits is None and not self._own_marginal(model):
            logits = logits_of(model, x)
        if self.well_classified:  # paper 002: thresholds from the correctly classified fit inputs only
            pred = (logits if logits is not None else logits_of(model, x)).argmax(1)
            keep = (pred == y.to(pred.device)).to(x.device)
            if not keep.any():
                raise ValueError(f"{self.kind} detection with well_classified: the model classifies none of the "
                                 f"{len(x)} fit inputs correctly")
            x, y = x[keep], y[keep.to(y.device)]
            logits = None if logits is None else logits[keep.to(logits.device)]
        self.n_fit = len(x)
        self.reversed = self._direction(model)
        stat, group = self._stat(model, x, y, logits)
        n_groups = 1 if self.kind == "marginal" else int(getattr(model, "num_classes", int(group.max()) + 1))
        self.mean, self.std = group_stats(stat, group, n_groups)
        # FPR is measured the way the detector is used: threshold of the *predicted* class (same draw as the stats)
        if self.kind == "marginal":
            z_fit, c_fit = standardise(stat, group, self.mean, self.std), group
        else:
            stat_p, c_fit = self._stat_of_logits(logits.float())
            z_fit = standardise(stat_p, c_fit, self.mean.to(stat_p.device), self.std.to(stat_p.device))
        self.alpha_per_class = None
        if self.alpha is None:
            self.alpha = alpha_for_fpr(z_fit, self.target_fpr)  # pooled α (and the fallback of sparse classes)
            if self.per_class_alpha:
                alphas = torch.full((n_groups,), float(self.alpha), device=z_fit.device)
                min_n = math.ceil(1.0 / self.target_fpr)
                for k in range(n_groups):
                    sel = c_fit == k
                    if int(sel.sum()) >= min_n:
                        alphas[k] = alpha_for_fpr(z_fit[sel], self.target_fpr)
                self.alpha_per_class = alphas
        rejected = z_fit > (self.alpha_per_class[c_fit] if self.alpha_per_class is not None else self.alpha)
        self.fit_fpr = rejected.float().mean().item()
        # the clean fit data's scores on the `score` scale: the evaluator recomputes 1/5/10 % FPR thresholds on them
        self.calibration_scores = (z_fit - self.alpha_per_class[c_fit] if self.alpha_per_class is not None
                                   else z_fit).detach().cpu()
        if self.kind != "marginal":
            self.fit_fpr_per_class = torch.stack([
                rejected[c_fit == k].float().mean() if (c_fit == k).any() else torch.tensor(float("nan"), device=rejected.device)
                for k in range(n_groups)
            ]).cpu()
        return self

    def _z(self, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardised statistic z, class whose statistics standardised it), from one model call."""
        if self.mean is None:
            raise RuntimeError(f"{self.kind} detector used before fit()")
        stat, group = self._stat(model, x)
        return standardise(stat, group, self.mean.to(stat.device), self.std.to(stat.device)), group

    def score_and_class(self, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, class of the threshold it was compared with) from ONE model call (one draw of a stochastic
        model): what per-class rates are averaged over."""
        z, c = self._z(model, x)
        if self.alpha_per_class is not None:
            z = z - self.alpha_per_class.to(z.device)[c]
        return z, c

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Standardised statistic z(x) (z - α_c with per-class α); higher = more suspicious."""
        return self.score_and_class(model, x)[0]

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.score(model, x) > self.threshold

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "hinge",
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable evasion term of a detector-aware attack (:mod:`robustsweep.attacks.adaptive`): the same
        score as :meth:`score`, computed with gradients -- hinge relu(score - threshold), zero once accepted
        (paper 001 appendix A.1: on log p(x) for marginal, log p(x, ŷ) for logit, KL for kl), or the raw score.
        Computed from the attack's own ``logits`` when given (one draw of a stochastic model for both terms);
        marginal detection of a model with its own ``log_marginal`` calls it (with gradients)."""
        if self.mean is None:
            raise RuntimeError(f"{self.kind} detector used before fit()")
        if self._own_marginal(model):
            stat = self._sign * model.log_marginal(x).float()
            group = torch.zeros(len(x), dtype=torch.long, device=x.device)
        else:
            stat, group = self._stat_of_logits((model(x) if logits is None else logits).float())
        z = standardise(stat, group, self.mean.to(stat.device), self.std.to(stat.device))
        if self.alpha_per_class is not None:
            z = z - self.alpha_per_class.to(z.device)[group]
        return hinge_or_raw(z, self.threshold, form)


@DETECTORS.register("marginal", calibration="train")
def marginal(alpha: float | None = None, target_fpr: float = 0.05, reverse: bool | None = None) -> DensityDetector:
    """Marginal detection (paper 001): reject if -log p(x) > mean + alpha*std on clean data (reverse: +log p(x);
    None = reversed for the discriminative baselines, as the public code)."""
    return DensityDetector("marginal", alpha, target_fpr, reverse)


@DETECTORS.register("logit", calibration="train")
def logit(alpha: float | None = None, target_fpr: float = 0.05, reverse: bool | None = None,
          per_class_alpha: bool = False, well_classified: bool = False) -> DensityDetector:
    """Logit detection (paper 001/002): reject if -log p(x, F(x)) > mean_c + alpha*std_c of the predicted class
    (reverse: +log p(x, F(x)); None = reversed for the discriminative baselines; per_class_alpha: one α per class;
    well_classified: statistics from correctly classified fit inputs only, paper 002's rule)."""
    return DensityDetector("logit", alpha, target_fpr, reverse, per_class_alpha, well_classified)


@DETECTORS.register("kl", calibration="train")
def kl(alpha: float | None = None, target_fpr: float = 0.05, per_class_alpha: bool = False) -> DensityDetector:
    """KL detection (paper 001): reject if KL[mean prob. vector of F(x) || p(.|x)] > mean_c + alpha*std_c."""
    return DensityDetector("kl", alpha, target_fpr, per_class_alpha=per_class_alpha)


@DETECTORS.register("tv", calibration="train")
def tv(alpha: float | None = None, target_fpr: float = 0.05, per_class_alpha: bool = False) -> DensityDetector:
    """TV detection (paper 001): total variation to the class-mean probability vector, mean_c + alpha*std_c."""
    return DensityDetector("tv", alpha, target_fpr, per_class_alpha=per_class_alpha)
