"""Detection columns ``det.<d>.*`` of every row: each fitted detector's rates, ROC, AUC and the joint fool-and-evade
columns (:func:`robustsweep.ops.metrics.detection_metrics`), at the trial's threshold or, for a detector that
``refits`` per attack (paper 004's energy threshold), at one fitted on this point's adversarials of held-out data.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import torch

from robustsweep.core.craft import GridPoint
from robustsweep.core.examples import forked_rng
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.detect.base import Detector
from robustsweep.ops.batching import batched, model_device
from robustsweep.ops.metrics import detection_metrics
from robustsweep.registry import STEPS
from robustsweep.store import columns as col

ROW_DETECTORS = "detectors"  # GridPoint.notes key: {label: (detector that scored the point, attack it was fitted on)}
PER_EXAMPLE = "detector_outcomes"  # GridPoint.notes key: {label: {"score_adv": (N,), "reject_adv": (N,)}}


@STEPS.register("detection", order=20)
class Detection(Step):
    """Each detector's ``det.<d>.*`` columns: its clean FPR on a clean-only row, its detection of every attack point."""

    def active(self, ev: Evaluation) -> bool:
        return bool(ev.detectors)

    def clean_columns(self, ev: Evaluation, pts: AttackPoints) -> dict[str, Any]:
        """Each detector's rejection of the clean inputs (its FPR)."""
        with forked_rng(model_device(ev.model)):
            return {col.det(d, "fpr"): float(det.reject(ev.model, pts.x).float().mean()) for d, det in ev.detectors.items()}

    def columns(self, ev: Evaluation, pts: AttackPoints, point: GridPoint) -> dict[str, Any]:
        row_dets = point_detectors(ev, point)
        point.notes[ROW_DETECTORS] = row_dets
        out: dict[str, Any] = {}
        point.notes[PER_EXAMPLE] = per_example = {}
        for dname, (det, fit_adv) in row_dets.items():
            out[col.det(dname, "fit_split")] = det.fit_split
            out[col.det(dname, "fit_adv")] = fit_adv
            out[col.det(dname, "refit")] = det is not ev.detectors[dname]  # this point's own threshold
            out[col.det(dname, "threshold")] = _num_or_none(det.threshold)
            # a fooling image has no clean counterpart: the joint fool-and-evade columns would be meaningless
            per_example[dname] = {}
            out.update(detection_columns(dname, det, ev.model, pts.x, point.x_adv, point.success,
                                         None if point.goal == "fooling" else pts.correct,
                                         None if point.goal else point.pred_adv.to(pts.y.device) == pts.y,
                                         per_example=per_example[dname]))
        return out


def point_detectors(ev: Evaluation, point: GridPoint) -> dict[str, tuple[Detector, str | None]]:
    """The detector that scores one attack point, and the attack its threshold was fitted on: a detector whose
    ``refits(label, name)`` is true for this attack (``per_attack``) is refitted -- a copy: the trial's fitted
    detector, which detector-aware attacks see, is unchanged -- on this point's adversarials of the held-out
    calibration inputs (none at ε = 0, or without calibration data: no refit); the others are the trial's as fitted.
    The held-out adversarials are crafted once per point, whatever the number of such detectors, under a forked RNG."""
    out: dict[str, tuple[Detector, str | None]] = {}
    calibration = None if point.zero else ev.calibration
    x_cal_adv = None
    for name, det in ev.detectors.items():
        if calibration is not None and det.refits(point.label, point.name):
            xc, yc = calibration
            with forked_rng(model_device(ev.model)):  # the trial's later rows draw what they draw without refits
                if x_cal_adv is None:
                    x_cal_adv = batched(functools.partial(point.entry.fn, ev.model, **point.call), xc, yc,
                                        batch_size=ev.batch_size)
                out[name] = (det.refitted(ev.model, xc, yc, x_cal_adv), point.label)
        else:
            out[name] = (det, det.fitted_on_attack)
    return out


def _num_or_none(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def detection_columns(name: str, det: Detector, model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                      success: torch.Tensor, correct: torch.Tensor | None = None,
                      adv_correct: torch.Tensor | None = None,
                      per_example: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """``det.<name>.*`` columns of one attack point. A ``class_averaged`` detector (per-class α, paper 001's public
    code) reports ``tpr``/``fpr`` averaged over the classes whose thresholds were used (each successful adversarial /
    clean input goes to its predicted class; classes without inputs are skipped, as in the public code), and the
    pooled rates as ``tpr_pooled``/``fpr_pooled``; ROC and AUC are unchanged.

    With ``correct`` (clean prediction == label) the joint fool-and-evade columns are added
    (:func:`robustsweep.ops.metrics.detection_metrics`): ``attacker_success`` at the detector's fitted threshold,
    ``attacker_success_fpr1|5|10`` at thresholds recomputed for 1/5/10 % false positives on the detector's
    ``calibration_scores`` (its clean FIT data's scores, which every registered detector keeps) or, for a detector
    without them, on the clean test inputs' scores; and ``fpr_correct``/``fpr_wrong``. These are pooled over
    classes even for a class-averaged detector."""
    kw = {"threshold": det.threshold, "hist_bins": det.hist_bins, "per_example": per_example}
    if det.class_averaged:
        rec = _ClassRecorder(det)
        out = detection_metrics(rec, model, x, x_adv, success, correct, det.calibration_scores, adv_correct, **kw)
        out.update(_class_averaged_rates(rec, det, success))
    else:
        out = detection_metrics(det, model, x, x_adv, success, correct, det.calibration_scores, adv_correct, **kw)
    cols = {}
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, float) and math.isnan(v):
            v = None
        cols[col.det(name, k)] = v
    return cols


class _ClassRecorder:
    """Hands a per-class detector to ``detection_metrics`` and keeps, for every ``score`` call, the class each score
    was thresholded with -- so class-averaged rates come from the very draw (stochastic models) the pooled rates,
    ROC and AUC come from, without scoring twice. ``detection_metrics`` scores the clean inputs first, then the
    successful adversarials (where there are any), then the others: the calls are read by that position."""

    def __init__(self, det: Detector):
        self.det = det
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []  # (score, class), in call order

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        s, c = self.det.score_and_class(model, x)
        self.calls.append((s, c))
        return s

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.score(model, x) > self.det.threshold


def _class_mean(rejected: torch.Tensor, cls: torch.Tensor) -> float:
    rates = [rejected[cls == k].float().mean().item() for k in torch.unique(cls).tolist()]
    return sum(rates) / len(rates) if rates else math.nan


def _class_averaged_rates(rec: _ClassRecorder, det: Detector, success: torch.Tensor) -> dict[str, float]:
    n_pos = int(torch.as_tensor(success).sum())
    clean = rec.calls[0]
    pos = rec.calls[1] if n_pos else None
    thr = det.threshold
    out = {"fpr_pooled": _nan_mean(clean[0] > thr), "fpr": _class_mean((clean[0] > thr).cpu(), clean[1].cpu())}
    if pos is not None:
        out |= {"tpr_pooled": _nan_mean(pos[0] > thr), "tpr": _class_mean((pos[0] > thr).cpu(), pos[1].cpu())}
    else:
        out |= {"tpr_pooled": math.nan, "tpr": math.nan}
    return out


def _nan_mean(t: torch.Tensor) -> float:
    return t.float().mean().item() if t.numel() else math.nan
