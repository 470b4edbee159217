"""The joint fool-and-evade metric (issue 19) against a brute-force loop over examples, on hand-built tiny cases."""
from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustsweep.core.steps.detection import detection_columns as _detection_columns
from robustsweep.detect.base import Detector
from robustsweep.ops.metrics import JOINT_FPRS, detection_metrics, threshold_at_fpr
from robustsweep.store.rows import DETECTOR_METRICS


class FirstPixel(Detector):
    """score = first pixel of the input, rejected above ``threshold``; ``calibration_scores`` optional."""

    def __init__(self, threshold: float, calibration: torch.Tensor | None = None):
        self.threshold = threshold
        if calibration is not None:
            self.calibration_scores = calibration

    def score(self, model, x):
        return x.flatten(1)[:, 0]

    def reject(self, model, x):
        return self.score(model, x) > self.threshold


def _brute_threshold(cal: list[float], fpr: float) -> float:
    """Smallest observed score t with (#scores > t) / n <= fpr, by trying every score."""
    return min(t for t in cal if sum(s > t for s in cal) / len(cal) <= fpr)


def _brute(det, x, x_adv, y, pred_clean, pred_adv, cal):
    n_correct = sum(int(pred_clean[i] == y[i]) for i in range(len(y)))
    own = 0
    at = {f: 0 for f in JOINT_FPRS}
    thr = {f: _brute_threshold(cal, f) for f in JOINT_FPRS}
    rej_c = rej_w = n_c = n_w = 0
    for i in range(len(y)):
        s_clean = float(x[i].flatten()[0])
        if pred_clean[i] == y[i]:
            n_c += 1
            rej_c += s_clean > det.threshold
        else:
            n_w += 1
            rej_w += s_clean > det.threshold
        if pred_clean[i] == y[i] and pred_adv[i] != y[i]:
            s = float(x_adv[i].flatten()[0])
            own += s <= det.threshold
            for f in JOINT_FPRS:
                at[f] += s <= thr[f]
    out = {"attacker_success": own / n_correct, "fpr_correct": rej_c / n_c, "fpr_wrong": rej_w / n_w}
    out |= {f"attacker_success_fpr{round(f * 100)}": at[f] / n_correct for f in JOINT_FPRS}
    return out


def _case(seed: int, n: int = 40):
    g = torch.Generator().manual_seed(seed)
    x, x_adv = torch.rand(n, 1, 2, 2, generator=g), torch.rand(n, 1, 2, 2, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    pred_clean = torch.where(torch.rand(n, generator=g) < 0.7, y, (y + 1) % 3)
    pred_adv = torch.where(torch.rand(n, generator=g) < 0.4, y, (y + 2) % 3)
    return x, x_adv, y, pred_clean, pred_adv


def test_joint_columns_equal_a_brute_force_loop_with_fit_calibration():
    x, x_adv, y, pred_clean, pred_adv = _case(0)
    cal = torch.rand(200, generator=torch.Generator().manual_seed(9))
    det = FirstPixel(0.6, cal)
    correct = pred_clean == y
    cols = _detection_columns("fp", det, None, x, x_adv, correct & (pred_adv != y), correct)
    want = _brute(det, x, x_adv, y, pred_clean, pred_adv, cal.tolist())
    for k, v in want.items():
        assert math.isclose(cols[f"det.fp.{k}"], v, abs_tol=1e-6), k
    assert 0 < want["attacker_success"] < 1 and 0 < want["fpr_correct"] < 1  # not a degenerate case
    assert set(f"det.fp.{m}" for m in DETECTOR_METRICS) <= set(cols)  # every store metric is produced


def test_without_calibration_scores_the_clean_test_scores_calibrate():
    x, x_adv, y, pred_clean, pred_adv = _case(1)
    det = FirstPixel(0.5)
    correct = pred_clean == y
    out = detection_metrics(det, None, x, x_adv, correct & (pred_adv != y), correct, threshold=det.threshold)
    want = _brute(det, x, x_adv, y, pred_clean, pred_adv, x.flatten(1)[:, 0].tolist())
    for k, v in want.items():
        assert math.isclose(out[k], v, abs_tol=1e-6), k


def test_no_correct_inputs_gives_nan_and_no_successes_gives_zero():
    x, x_adv, y, _, _ = _case(2, n=10)
    det = FirstPixel(0.5)
    none = torch.zeros(10, dtype=torch.bool)
    assert math.isnan(detection_metrics(det, None, x, x_adv, none, none, threshold=det.threshold)["attacker_success"])
    out = detection_metrics(det, None, x, x_adv, none, torch.ones(10, dtype=torch.bool), threshold=det.threshold)
    assert out["attacker_success"] == 0.0 and out["attacker_success_fpr5"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=60), st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.5]))
def test_threshold_at_fpr_is_the_smallest_observed_score_meeting_the_rate(vals, fpr):
    cal = [float(v) for v in vals]  # small integers: many ties
    assert threshold_at_fpr(torch.tensor(cal), fpr) == _brute_threshold(cal, fpr)
