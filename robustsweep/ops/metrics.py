"""Pure functions from (clean inputs, adversarial inputs, labels, predictions) to the numbers the papers report.

Everything here takes tensors already computed by the evaluator, so each metric is testable on hand-built cases.
"""
from __future__ import annotations

import math

import numpy as np
import sklearn.metrics
import torch


def _mean(t: torch.Tensor) -> float:
    return t.float().mean().item() if t.numel() else math.nan


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example ℓ∞ and ℓ2 norms of the perturbation."""
    d = (x_adv - x).flatten(1)
    return d.abs().amax(dim=1), d.norm(dim=1)


def attack_metrics(
    x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, pred_clean: torch.Tensor, pred_adv: torch.Tensor
) -> dict[str, float]:
    """Accuracy under attack, success rate on initially-correct inputs, perturbation sizes of successes, ρ.

    ρ = mean over successful attacks of ‖η‖₂ / ‖x‖₂ (``rho``), and ``m.rho_all`` = the same mean over every attacked
    input (DeepFool's convention, which paper 002's Table 4 writes as 1/n_samples Σ): an unsuccessful attack then
    contributes the perturbation it ended with.
    """
    correct = pred_clean == y
    success = correct & (pred_adv != y)
    linf, l2 = perturbation_norms(x, x_adv)
    xnorm = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    return {
        "adv_accuracy": _mean(pred_adv == y),
        "success_rate": _mean(success[correct]) if correct.any() else math.nan,
        "mean_linf": _mean(linf[success]),
        "mean_l2": _mean(l2[success]),
        "rho": _mean((l2 / xnorm)[success]),
        "m.rho_all": _mean(l2 / xnorm),
        "n_success": float(success.sum().item()),
    }


# ---------------------------------------------------------------------------------------------------------------
# Added for issue 4: minimum perturbation over an ε grid, ROC/AUC, detection rates, counterfactual speed.
# ---------------------------------------------------------------------------------------------------------------


def minimum_perturbation(
    eps_grid: list[float] | tuple[float, ...],
    success: torch.Tensor,
    dist: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-example minimum perturbation over an ε grid (paper 001, footnote 4).

    ``success`` is (G, N) bool, row g = which inputs the attack at ``eps_grid[g]`` fooled. The minimum
    perturbation of an input is the smallest ε (or, when ``dist`` (G, N) is given, the measured distortion of
    that attack, e.g. its ℓ∞ or ℓ2 norm) at which it was fooled, and max(ε grid) + 0.1 if no attack succeeded.
    """
    eps = torch.as_tensor([float(e) for e in eps_grid], dtype=torch.float64)
    success = torch.as_tensor(success).bool().cpu()
    if success.dim() != 2 or success.shape[0] != len(eps):
        raise ValueError(f"success must be (len(eps_grid)={len(eps)}, N), got {tuple(success.shape)}")
    order = torch.argsort(eps)
    eps, success = eps[order], success[order]
    vals = eps[:, None].expand_as(success) if dist is None else torch.as_tensor(dist).double().cpu()[order]
    none = ~success.any(0)
    first = success.int().argmax(0)  # first True in ascending ε (0 when none; masked below)
    out = vals.gather(0, first[None]).squeeze(0)
    return torch.where(none, torch.full_like(out, eps.max().item() + 0.1), out)


def mean_minimum_perturbation(
    eps_grid: list[float] | tuple[float, ...],
    success: torch.Tensor,
    dist: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> float:
    """Mean of :func:`minimum_perturbation` over the inputs in ``mask`` (pass the initially-correct ones; all
    inputs when None). Paper 001 Tables 1-2 report this with the max + 0.1 rule for inputs never fooled."""
    mp = minimum_perturbation(eps_grid, success, dist)
    if mask is not None:
        mp = mp[torch.as_tensor(mask).bool().cpu()]
    return _mean(mp)


def _order_ranks(scores: np.ndarray) -> np.ndarray:
    """Finite stand-ins for ``scores`` that sort and tie exactly as they do (a ROC depends on nothing else).

    scikit-learn refuses non-finite scores, but a detector can give ±inf (a log-density that underflows), which is
    an extreme score, not an error: ±inf keep their place in the order. NaN ranks above every score, each NaN its
    own threshold in the order given (positives first), as the stable descending sort this replaced placed them.
    """
    nan = np.isnan(scores)
    ranks = np.empty(len(scores))
    ranks[~nan] = np.unique(scores[~nan], return_inverse=True)[1]
    top = ranks[~nan].max(initial=-1.0) + 1.0
    ranks[nan] = top + np.arange(int(nan.sum()))[::-1]
    return ranks


def roc_curve(
    neg: torch.Tensor, pos: torch.Tensor, max_points: int = 201
) -> tuple[list[float], list[float], float]:
    """ROC of a score where larger = positive: (fpr list, tpr list, AUC), store-friendly plain floats.

    scikit-learn's ``roc_curve`` with every distinct score a threshold (ties move FPR and TPR together, a diagonal
    segment), from (0, 0) to (1, 1); AUC is the trapezoidal area of the full curve (= P(score_pos > score_neg) +
    ½ P(tie)). The returned points are thinned evenly to at most ``max_points`` (end points kept) so a Parquet row
    stays small; the AUC is always computed before thinning.
    """
    neg = torch.as_tensor(neg).detach().double().flatten().cpu().numpy()
    pos = torch.as_tensor(pos).detach().double().flatten().cpu().numpy()
    if len(neg) == 0 or len(pos) == 0:
        return [], [], math.nan
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    fpr, tpr, _ = sklearn.metrics.roc_curve(labels, _order_ranks(np.concatenate([pos, neg])), drop_intermediate=False)
    auc = float(sklearn.metrics.auc(fpr, tpr))
    if len(fpr) > max_points:
        idx = torch.linspace(0, len(fpr) - 1, max_points).round().long().unique().numpy()
        fpr, tpr = fpr[idx], tpr[idx]
    return fpr.tolist(), tpr.tolist(), auc


#: false-positive rates at which the attacker's joint success is also reported (column suffix = percent)
JOINT_FPRS = (0.01, 0.05, 0.10)


def threshold_at_fpr(calibration: torch.Tensor, fpr: float) -> float:
    """The smallest calibration score t with mean(calibration > t) <= fpr (reject iff score > t).

    Exact on the sample: with the scores sorted in descending order s_0 >= s_1 >= …, t = s_k for k = ⌊fpr·n⌋ (at
    most k scores lie strictly above it; any lower observed score has more than fpr·n above). Ties can make the
    achieved rate lower than ``fpr``, never higher. Non-finite scores are dropped first.
    """
    s = torch.as_tensor(calibration).detach().double().flatten().cpu()
    s = s[torch.isfinite(s)]
    if len(s) == 0:
        return math.nan
    s = torch.sort(s, descending=True).values
    k = min(int(math.floor(fpr * len(s) + 1e-9)), len(s) - 1)
    return float(s[k])


def joint_metrics(s_clean: torch.Tensor, s_pos: torch.Tensor, rej_clean: torch.Tensor, rej_pos: torch.Tensor,
                  correct: torch.Tensor, calibration: torch.Tensor | None = None) -> dict[str, float]:
    """What an attacker needs: to fool the classifier AND pass the detector.

    ``s_pos``/``rej_pos``: scores / rejection of the successful adversarials (originally correct AND misclassified
    after the attack), ``s_clean``/``rej_clean`` of the clean test inputs, ``correct``: clean prediction == label.

    - ``attacker_success``: fraction of the originally-correct test points whose adversarial is misclassified and
      not rejected, at the detector's own fitted threshold;
    - ``attacker_success_fpr1|5|10``: the same with the threshold recomputed (:func:`threshold_at_fpr`) for 1 %, 5 %
      and 10 % false positives on ``calibration`` -- the clean scores the detector was fitted on, when it keeps
      them (``calibration_scores``) -- else on the clean test scores ``s_clean``;
    - ``fpr_correct`` / ``fpr_wrong``: false-positive rate at the fitted threshold on the clean test inputs the
      model classifies correctly / wrongly (paper 003, Table 1).
    """
    correct = torch.as_tensor(correct).bool().cpu()
    rej_clean, rej_pos = rej_clean.bool().cpu(), rej_pos.bool().cpu()
    n_correct = int(correct.sum())
    s_pos = s_pos.detach().double().cpu()
    cal = s_clean if calibration is None else torch.as_tensor(calibration)

    def rate(passed: int) -> float:
        return passed / n_correct if n_correct else math.nan

    out = {"attacker_success": rate(int((~rej_pos).sum()))}
    for f in JOINT_FPRS:
        t = threshold_at_fpr(cal, f)
        out[f"attacker_success_fpr{round(f * 100)}"] = rate(int((s_pos <= t).sum())) if not math.isnan(t) else math.nan
    out["fpr_correct"] = _mean(rej_clean[correct])
    out["fpr_wrong"] = _mean(rej_clean[~correct])
    return out


def score_histogram(s_clean: torch.Tensor, s_pos: torch.Tensor, bins: int = 30) -> dict[str, float | list[float]]:
    """Binned histograms of a detector score on clean inputs and on successful adversarials, on SHARED bin edges
    (paper 004 Fig. 2(a)/3(a) plot the two energy distributions over each other), store-friendly plain lists.

    ``bins`` equal-width bins spanning the finite scores of both sets; bin i holds edges[i] <= s < edges[i+1], the
    last bin is closed on the right (numpy's convention), non-finite scores are not counted. Returns
    ``hist_edges`` (bins + 1), ``hist_clean`` / ``hist_adv`` (counts) and ``hist_overlap``: the overlapping
    coefficient Σ_i min(p_clean[i], p_adv[i]) of the two normalised histograms -- 1 when the distributions fill the
    bins alike (the detector is worthless), 0 when no bin holds both; NaN when either set is empty.
    """
    if bins < 1:
        raise ValueError(f"hist_bins must be >= 1, got {bins}")
    a = torch.as_tensor(s_clean).detach().double().flatten().cpu()
    b = torch.as_tensor(s_pos).detach().double().flatten().cpu()
    a, b = a[torch.isfinite(a)], b[torch.isfinite(b)]
    both = torch.cat([a, b])
    if len(both) == 0:
        return {"hist_edges": [], "hist_clean": [], "hist_adv": [], "hist_overlap": math.nan}
    lo, hi = both.min().item(), both.max().item()
    if hi <= lo:  # one distinct value: a unit-wide range around it
        lo, hi = lo - 0.5, hi + 0.5
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)

    def counts(s: torch.Tensor) -> torch.Tensor:
        idx = torch.bucketize(s, edges[1:-1], right=True)  # inner edges only: the maximum lands in the last bin
        return torch.bincount(idx, minlength=bins).double()

    ca, cb = counts(a), counts(b)
    overlap = (torch.minimum(ca / len(a), cb / len(b)).sum().item() if len(a) and len(b) else math.nan)
    return {"hist_edges": edges.tolist(), "hist_clean": ca.tolist(), "hist_adv": cb.tolist(), "hist_overlap": overlap}


def detection_metrics(
    detector, model: torch.nn.Module, x_clean: torch.Tensor, x_adv: torch.Tensor, success_mask: torch.Tensor,
    correct: torch.Tensor | None = None, calibration: torch.Tensor | None = None,
    adv_correct: torch.Tensor | None = None, threshold: float | None = None, hist_bins: int = 0,
    per_example: dict[str, torch.Tensor] | None = None,
) -> dict[str, float | list[float]]:
    """Detection of successful adversarials by a fitted detector (paper 001: TP rate on successful attacks,
    threshold at 5% FPR on clean training data).

    Returns tpr (flagged fraction of ``x_adv[success_mask]``), fpr (flagged fraction of ``x_clean``), auc and the
    ROC points roc_fpr / roc_tpr of the detector score (clean = negatives, successful adversarials = positives),
    n_pos, and the mean scores score_clean_mean / score_adv_mean. One score pass per input set: rejection is read
    off the score with the detector's ``threshold`` where it has one (so a stochastic model's rejection and ROC
    come from the same draw), else via ``reject``. The caller passes the detector's declared ``threshold`` and
    ``hist_bins`` (``robustsweep.detect.base.Detector``): this module sits below the detectors and probes nothing.
    With ``correct`` (clean prediction == label, per clean input) the joint columns of :func:`joint_metrics` are
    added from the same scores; ``calibration``: the clean scores the 1/5/10 % FPR thresholds come from (None:
    the clean test scores). ``reject_adv`` is the flagged fraction of *all* of ``x_adv`` (unsuccessful ones too: the
    detection rate of paper 004's public code, the "Reject" of paper 003's Table 1 / Fig. 3); with ``adv_correct``
    (adversarial prediction == label, per input) ``accept_correct_adv`` is the fraction accepted and classified
    correctly (003's accuracy with thresholds under attack; error = 1 - both). The unsuccessful adversarials are
    scored after the successful ones, in a pass of their own, so the successful ones' draw is unchanged.
    A positive ``hist_bins`` (the detector's, opt-in per detector spec, e.g.
    ``{name: energy, hist_bins: 30}``; off by default so existing rows keep their columns) also gets the binned
    score histograms of :func:`score_histogram` from the same scores (about 3 x hist_bins numbers per row).
    ``per_example`` (a dict, filled in place): each adversarial's score and rejection, ``score_adv`` /
    ``reject_adv`` (in ``x_adv``'s order), from these very scores -- the per-example outcomes keep them, and a
    stochastic model scored a second time would give another draw.
    """
    success_mask = torch.as_tensor(success_mask).bool().to(x_adv.device)
    s_clean = detector.score(model, x_clean).detach().float()
    x_pos = x_adv[success_mask]
    s_pos = detector.score(model, x_pos).detach().float() if len(x_pos) else torch.empty(0)
    thr = threshold
    if isinstance(thr, (int, float)):
        rej_clean, rej_pos = s_clean > thr, s_pos > thr
    else:
        rej_clean = detector.reject(model, x_clean)
        rej_pos = detector.reject(model, x_pos) if len(x_pos) else torch.empty(0, dtype=torch.bool)
    x_neg = x_adv[~success_mask]
    if len(x_neg):
        s_neg = detector.score(model, x_neg).detach().float()
        rej_neg = s_neg > thr if isinstance(thr, (int, float)) else detector.reject(model, x_neg)
    else:
        rej_neg = torch.empty(0, dtype=torch.bool)
    rej_adv = torch.empty(len(x_adv), dtype=torch.bool)
    rej_adv[success_mask.cpu()], rej_adv[~success_mask.cpu()] = rej_pos.cpu().bool(), rej_neg.cpu().bool()
    if per_example is not None:
        s_adv = torch.full((len(x_adv),), math.nan)
        if len(x_pos):
            s_adv[success_mask.cpu()] = s_pos.cpu()
        if len(x_neg):
            s_adv[~success_mask.cpu()] = s_neg.cpu()
        per_example.update(score_adv=s_adv, reject_adv=rej_adv.clone())
    roc_fpr, roc_tpr, auc = roc_curve(s_clean, s_pos)
    out: dict[str, float | list[float]] = {
        "tpr": _mean(rej_pos.cpu()),
        "fpr": _mean(rej_clean.cpu()),
        "auc": auc,
        "roc_fpr": roc_fpr,
        "roc_tpr": roc_tpr,
        "n_pos": float(len(x_pos)),
        # mean score of clean and of successful adversarial inputs (paper 004 Fig. 2(b)/3(b) plot the mean energy)
        "score_clean_mean": _mean(s_clean.cpu()),
        "score_adv_mean": _mean(s_pos.cpu()),
        "reject_adv": _mean(rej_adv),
    }
    if adv_correct is not None:
        ok = torch.as_tensor(adv_correct).bool().cpu()
        out["accept_correct_adv"] = _mean(ok & ~rej_adv)
    if isinstance(hist_bins, int) and not isinstance(hist_bins, bool) and hist_bins > 0:
        out.update(score_histogram(s_clean, s_pos, hist_bins))
    if correct is not None:
        out.update(joint_metrics(s_clean, s_pos, rej_clean, rej_pos, correct, calibration))
    return out


def counterfactual_speed(acc_per_iter: list[float], threshold: float = 0.4, max_iter: int = 30) -> dict[str, float]:
    """Counterfactual speed of paper 000: fewest attack iterations (0 = clean, up to ``max_iter``) after which
    accuracy is below ``threshold``; ``acc_per_iter[k]`` is the accuracy after k iterations (see
    ``robustsweep.attacks.speed.accuracy_per_iteration``). When it is never reached the speed is ``max_iter``
    (how the paper plots it) and ``cf_reached`` is 0."""
    for k, a in enumerate(acc_per_iter[: max_iter + 1]):
        if a < threshold:
            return {"cf_speed": float(k), "cf_reached": 1.0}
    return {"cf_speed": float(max_iter), "cf_reached": 0.0}


def input_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example gradient of the cross-entropy of ``model(x)`` w.r.t. the input, shaped like ``x`` (paper 004
    Fig. 4: the input gradients of a PGD-trained model look like the digit, a regular model's like noise).

    The losses are summed, so row i is exactly d CE(model(x_i), y_i) / d x_i (examples do not interact in eval
    mode). For display scale each map on its own (its sign and shape are the message, not its size)."""
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.detach()
