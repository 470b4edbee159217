"""Energy detector of Beadini & Masi (paper 004 eq. 9): E(x) = -logsumexp_k θ(x)[k], no training.

Their finding is that untargeted adversarial points have LOWER energy than natural data, so eq. 9 flags
x when E(x) <= t (``direction="low"``; ``"high"`` flags high energy, the usual OOD convention, for comparison).
The threshold t is fitted on a validation split (the registry entry declares ``calibration="validation"``; the trial
falls back to training data only where the data set holds no validation split, and records which in
``det.<d>.fit_split``): clean inputs are the negatives, and the positives are adversarial versions of the same
inputs. t maximises the G-mean sqrt(TPR·(1 - FPR)) (their paper's text, ``rule="gmean"``, the default) or Youden's
J = TPR - FPR (their code, ``rule="youden"``). ``rule="fpr"`` instead takes the clean-data quantile for
``target_fpr`` and needs no attack.

Which adversarials: with ``per_attack`` (default) the evaluator refits t for every attack point on validation
adversarials of *that* attack with *its* settings (:meth:`EnergyDetector.refitted`), as paper 004 fits its
threshold for the attack it detects; the trial-level fit uses ``fit_attack`` (their code: PGD, ε = 8/255, step
1/255, 10 steps) and is what a detector-aware attack sees. ``per_attack: false`` keeps that one threshold for every
attack -- a defender who fits once, before the attacker comes (the cross-paper files use it); a list of attack
names or labels refits those only (paper 004: PGD's threshold per PGD budget, APGD and HE-PGD met as "unseen"
attacks with the PGD-fitted one).

The direction is not universal: on a small undefended MLP, weak PGD makes inputs *less* confident (higher
energy) and only strong PGD lowers it, while paper 004 reports low energy for its (robust) models. So
``direction="auto"`` picks, on the validation split, whichever direction gives the better criterion
(``rule="fpr"`` has no positives and then keeps "low").
"""
from __future__ import annotations

import copy
import inspect

import torch

from robustsweep.attacks.adaptive import energy_score, hinge_or_raw
from robustsweep.detect._common import logits_of
from robustsweep.detect.base import Detector
from robustsweep.registry import ATTACKS, DETECTORS

_RULES = ("youden", "gmean", "fpr")


def best_threshold(neg: torch.Tensor, pos: torch.Tensor, rule: str = "youden") -> float:
    """Threshold t on scores (reject iff score > t) maximising Youden's J or the G-mean over all ROC points."""
    neg, pos = neg.detach().float().cpu(), pos.detach().float().cpu()
    cand = torch.unique(torch.cat([neg, pos]))
    # "reject nothing" first (so it wins ties, e.g. when no threshold separates better than chance), then
    # thresholds just below every observed score
    ts = torch.cat([cand[-1:] + 1.0, cand - 1e-7 * cand.abs().clamp_min(1.0)])
    tpr = (pos[None, :] > ts[:, None]).float().mean(1)
    fpr = (neg[None, :] > ts[:, None]).float().mean(1)
    crit = tpr - fpr if rule == "youden" else (tpr * (1 - fpr)).clamp_min(0).sqrt()
    return float(ts[crit.argmax()])


def _criterion(neg: torch.Tensor, pos: torch.Tensor, t: float, rule: str) -> float:
    tpr, fpr = (pos > t).float().mean().item(), (neg > t).float().mean().item()
    return tpr - fpr if rule == "youden" else max(tpr * (1 - fpr), 0.0) ** 0.5


class EnergyDetector(Detector):
    def __init__(self, rule: str = "gmean", direction: str = "low", target_fpr: float = 0.05,
                 fit_attack: str = "pgd", fit_eps: float = 8 / 255, fit_steps: int = 10,
                 fit_step_size: float = 1 / 255, hist_bins: int = 0, per_attack: bool | list[str] = True):
        if rule not in _RULES:
            raise ValueError(f"rule must be one of {_RULES}, got {rule!r}")
        if direction not in ("low", "high", "auto"):
            raise ValueError(f"direction must be 'low', 'high' or 'auto', got {direction!r}")
        if not isinstance(hist_bins, int) or isinstance(hist_bins, bool) or hist_bins < 0:
            raise ValueError(f"hist_bins must be an integer >= 0 (0: no histogram), got {hist_bins!r}")
        self.rule, self.direction, self.target_fpr = rule, direction, target_fpr
        self.hist_bins = hist_bins  # > 0: ops.metrics.detection_metrics stores score histograms (Fig. 2(a)/3(a))
        self.auto = direction == "auto"
        self.fit_attack = fit_attack
        self.fit_params = {"eps": fit_eps, "steps": fit_steps, "step_size": fit_step_size}
        if not isinstance(per_attack, (bool, list)) or (isinstance(per_attack, list) and not all(
                isinstance(a, str) for a in per_attack)):
            raise ValueError(f"per_attack must be true, false or a list of attack names / labels, got {per_attack!r}")
        # "fpr" has no positives: nothing to refit
        self.per_attack: bool | list[str] = per_attack if rule != "fpr" else False
        self.threshold: float | None = None
        self.calibration_scores: torch.Tensor | None = None  # `score` of the clean fit data (set by fit)

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """-E(x) for direction "low" (low energy is suspicious), E(x) for "high"."""
        return energy_score(logits_of(model, x).float(), self.direction)

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "hinge",
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable evasion term (:mod:`robustsweep.attacks.adaptive`): raw = the score (HE-PGD's energy
        term, eq. 10), hinge = relu(score - fitted threshold); from the attack's own ``logits`` when given."""
        if self.threshold is None and form == "hinge":
            raise RuntimeError("energy detector used before fit()")
        score = energy_score((model(x) if logits is None else logits).float(), self.direction)
        return hinge_or_raw(score, self.threshold if form == "hinge" else 0.0, form)

    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> EnergyDetector:
        """Fit on clean ``x`` and ``fit_attack``'s adversarials of it (module docstring)."""
        if self.rule == "fpr":
            if self.auto:
                self.direction = "low"
            neg = self.score(model, x)
            self.calibration_scores = neg.detach().cpu()
            self.threshold = float(torch.quantile(neg, 1 - self.target_fpr))
            return self
        if self.auto:
            self.direction = "low"
        # the clean scores first, then the attack: a stochastic model draws in the order of earlier versions, so a
        # trial's rows are unchanged by the refactoring into _fit_to
        neg = self.score(model, x)
        fn = ATTACKS.get(self.fit_attack).fn
        accepted = inspect.signature(fn).parameters
        params = {k: v for k, v in self.fit_params.items() if k in accepted}
        return self._fit_to(model, x, y, fn(model, x, y, **params), neg)

    @property
    def fitted_on_attack(self) -> str | None:
        """``fit_attack``, whose adversarials the threshold is fitted on -- except the "fpr" rule, fitted on clean data."""
        return self.fit_attack if self.rule != "fpr" else None

    def refits(self, *names: str) -> bool:
        """Whether an attack point of the attack called ``names`` (its label, its registry name) gets its own
        threshold: every attack with ``per_attack: true``, the listed ones with a list, none with ``false``."""
        if isinstance(self.per_attack, list):
            return any(n in self.per_attack for n in names)
        return bool(self.per_attack)

    def refitted(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 x_adv: torch.Tensor) -> EnergyDetector:
        """A copy fitted on clean ``x`` and the given adversarials ``x_adv`` of it (the evaluated attack's, on the
        validation split); ``self`` -- the threshold detector-aware attacks see -- is left as it was."""
        return copy.copy(self)._fit_to(model, x, y, x_adv)

    def _fit_to(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
                neg: torch.Tensor | None = None) -> EnergyDetector:
        """Threshold by ``rule`` between clean ``x`` (negatives; their scores ``neg`` when already computed) and the
        successful adversarials in ``x_adv`` (positives; all of them when none succeeded); ``direction="auto"``
        keeps the better-separating side."""
        if self.auto:
            self.direction = "low"  # scores are computed as "low" first; flipped below if "high" separates better
        if neg is None:
            neg = self.score(model, x)
        self.calibration_scores = neg.detach().cpu()  # clean fit scores: 1/5/10 % FPR thresholds of the evaluator
        with torch.no_grad():
            pred_clean = logits_of(model, x).argmax(1)
            pred_adv = logits_of(model, x_adv).argmax(1)
        success = (pred_clean == y) & (pred_adv != y)
        pos = self.score(model, x_adv[success] if success.any() else x_adv)
        self.threshold = best_threshold(neg, pos, self.rule)
        if self.auto:
            t_high = best_threshold(-neg, -pos, self.rule)
            if _criterion(-neg, -pos, t_high, self.rule) > _criterion(neg, pos, self.threshold, self.rule):
                self.direction, self.threshold = "high", t_high
                self.calibration_scores = -self.calibration_scores
        return self

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.threshold is None:
            raise RuntimeError("energy detector used before fit()")
        return self.score(model, x) > self.threshold


@DETECTORS.register("energy", calibration="validation")
def energy(rule: str = "gmean", direction: str = "low", target_fpr: float = 0.05, fit_attack: str = "pgd",
           fit_eps: float = 8 / 255, fit_steps: int = 10, fit_step_size: float = 1 / 255,
           hist_bins: int = 0, per_attack: bool | list[str] = True) -> EnergyDetector:
    """Energy detector (paper 004 eq. 9): flag low energy, threshold by G-mean (or Youden's J) on the validation
    split, refitted per attack point on that attack's validation adversarials (``per_attack``: all attacks, none,
    or a list of attack names / labels); ``hist_bins`` > 0
    also stores binned score histograms of clean vs successful adversarial inputs per row."""
    return EnergyDetector(rule, direction, target_fpr, fit_attack, fit_eps, fit_steps, fit_step_size, hist_bins,
                          per_attack)
