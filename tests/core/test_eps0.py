"""ε = 0 is never an attack success, even on a stochastic model: the evaluator reuses the clean prediction for a
budget of 0 instead of asking a Monte-Carlo classifier again (core/evaluate.py)."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.core.evaluate import evaluate
from robustsweep.ops.batching import predict
from robustsweep.ops.metrics import attack_metrics


@pytest.fixture(scope="module")
def noisy_gfz():
    """A real deep-Bayes GFZ on digits with K = 1 importance sample: its logits are a one-sample estimate, so two
    predictions of the same input disagree now and then -- the situation that made ε = 0 'succeed'."""
    from robustsweep.data import load_dataset
    from robustsweep.ops.train import TrainConfig, fit, seed_everything
    from robustsweep.registry import MODELS

    data = load_dataset("digits", seed=0)
    seed_everything(0)
    model = MODELS.get("gfz").fn(input_shape=data.input_shape, num_classes=10, dim_z=8, hidden=64, K=1,
                                 likelihood="gaussian_fixed", sigma=0.25)
    fit(model, data, TrainConfig(epochs=10, batch_size=64, lr=2e-3), torch.device("cpu"))
    assert getattr(model, "stochastic", False)  # fresh draws on every call
    return model.eval(), data.x_test[:200], data.y_test[:200]


def test_scenario_is_noisy(noisy_gfz):
    """Before the fix: a fresh prediction at ε = 0 (x_adv = x) flips some initially-correct inputs, which the old
    evaluator counted as successful attacks."""
    model, x, y = noisy_gfz
    torch.manual_seed(0)
    pred_clean, pred_again = predict(model, x), predict(model, x)
    old = attack_metrics(x, x.clone(), y, pred_clean, pred_again)
    assert (pred_clean == y).float().mean() > 0.6  # a working classifier, only noisy
    assert old["success_rate"] > 0 and old["n_success"] > 0


def test_eps0_rows_are_clean_rows(noisy_gfz):
    model, x, y = noisy_gfz
    torch.manual_seed(0)
    attacks = [{"name": "fgsm", "eps": [0.0, 0.1, 0.3]},
               {"name": "pgd", "eps": [0.0, 0.1], "steps": 5, "step_size": 0.05},
               {"name": "mim", "eps": 0.0, "steps": 3}]  # a single ε = 0 point, not a grid
    rows = list(evaluate(model, x, y, attacks, batch_size=100))
    zero = [r for r in rows if r["eps"] == 0.0]
    assert len(zero) == 3
    for r in zero:
        assert r["success_rate"] == 0.0 and r["n_success"] == 0.0, r["attack"]
        assert r["adv_accuracy"] == r["clean_accuracy"], r["attack"]
        assert r["attack_time_s"] == 0.0
        assert math.isnan(r["mean_linf"])  # no successful perturbation to measure
    # the footnote-4 minimum perturbation never credits an input with ε = 0: every value is >= the next grid point
    for name in ("fgsm", "pgd"):
        mmp = {r["m.min_perturbation"] for r in rows if r["attack"] == name}
        assert len(mmp) == 1 and mmp.pop() >= 0.1 - 1e-9
    # ε > 0 still attacks (the model is not made artificially robust)
    assert any(r["n_success"] > 0 for r in rows if r["eps"] and r["eps"] > 0)


def test_eps0_with_detectors_keeps_columns(noisy_gfz):
    from robustsweep.detect import fit_detectors

    model, x, y = noisy_gfz
    dets = fit_detectors([{"name": "logit", "per_class_alpha": True}], model, x, y)
    (row,) = evaluate(model, x, y, [{"name": "fgsm", "eps": 0.0}], dets, batch_size=100)
    assert row["det.logit.tpr"] is None and row["det.logit.n_pos"] == 0.0  # nothing to detect at ε = 0
    assert row["det.logit.fpr"] is not None
