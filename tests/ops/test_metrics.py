"""Metrics added for issue 4: minimum perturbation over an ε grid (paper 001 footnote 4), ROC/AUC, detection
rates of a detector, counterfactual speed (paper 000)."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.attacks.ifgsm import ifgsm
from robustsweep.attacks.speed import accuracy_per_iteration
from robustsweep.ops.metrics import (
    counterfactual_speed,
    detection_metrics,
    mean_minimum_perturbation,
    minimum_perturbation,
    roc_curve,
)


def test_minimum_perturbation_footnote_rule():
    eps = [0.1, 0.2, 0.3, 0.4, 0.5]
    # rows = ε, columns = 4 inputs: fooled first at 0.1, first at 0.3 (and later), never, only at 0.5
    success = torch.tensor([
        [1, 0, 0, 0],
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [1, 0, 0, 0],   # a weaker success pattern at larger ε must not matter
        [1, 1, 0, 1],
    ], dtype=torch.bool)
    mp = minimum_perturbation(eps, success)
    assert mp.tolist() == pytest.approx([0.1, 0.3, 0.6, 0.5])   # never fooled -> max + 0.1 = 0.6
    assert mean_minimum_perturbation(eps, success) == pytest.approx((0.1 + 0.3 + 0.6 + 0.5) / 4)
    # only initially-correct inputs count when a mask is given
    assert mean_minimum_perturbation(eps, success, mask=torch.tensor([0, 1, 1, 0])) == pytest.approx(0.45)
    # grid order does not matter; measured distortions replace ε when given
    perm = [4, 2, 0, 3, 1]
    assert minimum_perturbation([eps[i] for i in perm], success[perm]).tolist() == pytest.approx(mp.tolist())
    dist = torch.tensor(eps)[:, None].expand(5, 4) * 0.9
    assert minimum_perturbation(eps, success, dist).tolist() == pytest.approx([0.09, 0.27, 0.6, 0.45])


def test_roc_curve_matches_sklearn_and_is_store_friendly():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    neg = torch.randn(500, generator=g)
    pos = torch.randn(300, generator=g) + 1.0
    pos[:20] = neg[:20]  # ties between classes
    fpr, tpr, auc = roc_curve(neg, pos, max_points=50)
    ref = roc_auc_score([0] * 500 + [1] * 300, torch.cat([neg, pos]).numpy())
    assert auc == pytest.approx(ref, abs=1e-9)
    assert isinstance(fpr, list) and all(isinstance(v, float) for v in fpr + tpr)
    assert len(fpr) <= 50 and (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert all(a <= b for a, b in zip(fpr, fpr[1:])) and all(a <= b for a, b in zip(tpr, tpr[1:]))
    assert roc_curve(torch.tensor([0.0]), torch.tensor([1.0]))[2] == 1.0
    assert math.isnan(roc_curve(neg, torch.empty(0))[2])


class ThresholdOnFirstPixel:
    """Stand-in detector: score = x[:, 0], reject iff > 0.5."""

    threshold = 0.5

    def score(self, model, x):
        return x[:, 0]

    def reject(self, model, x):
        return x[:, 0] > 0.5


def test_detection_metrics_counts_only_successful_adversarials():
    x_clean = torch.tensor([[0.1], [0.2], [0.6], [0.3]])     # 1 of 4 clean inputs flagged -> FPR 0.25
    x_adv = torch.tensor([[0.9], [0.4], [0.8], [0.95]])
    success = torch.tensor([True, True, False, False])         # only the first two count: one flagged -> TPR 0.5
    out = detection_metrics(ThresholdOnFirstPixel(), None, x_clean, x_adv, success, threshold=0.5)
    assert out["tpr"] == pytest.approx(0.5) and out["fpr"] == pytest.approx(0.25)
    # AUC over clean {0.1,0.2,0.6,0.3} vs successful {0.9,0.4}: 0.9 beats all 4, 0.4 beats 3 -> 7/8
    assert out["auc"] == pytest.approx(7 / 8)
    assert set(out) == {"tpr", "fpr", "auc", "roc_fpr", "roc_tpr", "n_pos", "score_clean_mean", "score_adv_mean",
                        "reject_adv"}
    # reject_adv: ALL adversarials, unsuccessful ones too (0.9, 0.8 and 0.95 flagged, 0.4 not)
    assert out["reject_adv"] == pytest.approx(0.75)
    # accepted and classified correctly: only the second (accepted, correct); the third is correct but flagged
    adv_correct = torch.tensor([False, True, True, False])
    both = detection_metrics(ThresholdOnFirstPixel(), None, x_clean, x_adv, success, adv_correct=adv_correct,
                             threshold=0.5)
    assert both["accept_correct_adv"] == pytest.approx(0.25) and both["tpr"] == out["tpr"]
    assert out["n_pos"] == 2
    assert out["score_clean_mean"] == pytest.approx(0.3) and out["score_adv_mean"] == pytest.approx(0.65)
    # the threshold-less path (reject()) gives the same numbers
    class NoThreshold(ThresholdOnFirstPixel):
        threshold = None

    no_thr = detection_metrics(NoThreshold(), None, x_clean, x_adv, success)
    assert no_thr["tpr"] == out["tpr"] and no_thr["reject_adv"] == out["reject_adv"]
    none = detection_metrics(ThresholdOnFirstPixel(), None, x_clean, x_adv, torch.zeros(4, dtype=torch.bool),
                             threshold=0.5)
    assert math.isnan(none["tpr"]) and math.isnan(none["auc"]) and none["roc_fpr"] == []


def test_counterfactual_speed_rule():
    assert counterfactual_speed([0.95, 0.8, 0.5, 0.39, 0.1]) == {"cf_speed": 3.0, "cf_reached": 1.0}
    assert counterfactual_speed([0.95] + [0.45] * 30) == {"cf_speed": 30.0, "cf_reached": 0.0}
    assert counterfactual_speed([0.3, 0.2])["cf_speed"] == 0.0
    # "below" 0.4 is strict; beyond max_iter does not count
    assert counterfactual_speed([0.9, 0.4, 0.1], max_iter=1) == {"cf_speed": 1.0, "cf_reached": 0.0}


def test_accuracy_per_iteration_equals_separate_ifgsm_runs():
    """One 30-step run gives the accuracy of every shorter I-FGSM run with the same step size."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5))
    x = torch.rand(300, 16)
    with torch.no_grad():
        y = model(x).argmax(1)
    curve = accuracy_per_iteration(model, x, y, "ifgsm", eps=0.2, step_size=0.01, max_iter=30)
    assert len(curve) == 31 and curve[0] == 1.0
    for k in (1, 5, 17, 30):
        xa = ifgsm(model, x, y, eps=0.2, steps=k, step_size=0.01)
        with torch.no_grad():
            assert curve[k] == pytest.approx((model(xa).argmax(1) == y).float().mean().item())
    assert curve[30] < 0.5
    speed = counterfactual_speed(curve)
    assert speed["cf_reached"] == 1.0 and curve[int(speed["cf_speed"])] < 0.4 <= curve[int(speed["cf_speed"]) - 1]


def test_rho_over_successes_and_over_every_sample():
    """ρ of paper 002: ``rho`` averages ‖η‖₂/‖x‖₂ over successful attacks, ``m.rho_all`` over every attacked input."""
    from robustsweep.ops.metrics import attack_metrics

    x = torch.tensor([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]])            # norms 5, 2, 1
    x_adv = x + torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.5]])   # perturbation norms 1, 1, 0.5
    y = torch.tensor([0, 0, 0])
    out = attack_metrics(x, x_adv, y, pred_clean=torch.tensor([0, 0, 0]), pred_adv=torch.tensor([1, 0, 1]))
    assert out["rho"] == pytest.approx((1 / 5 + 0.5 / 1) / 2)           # inputs 0 and 2 were fooled
    assert out["m.rho_all"] == pytest.approx((1 / 5 + 1 / 2 + 0.5 / 1) / 3)
