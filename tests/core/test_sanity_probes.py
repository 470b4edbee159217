"""The gradient-masking probes (core/steps/sanity.py): an honest model falls to chance at ε = 1 and has live
gradients; a model whose input is quantised (zero gradient almost everywhere) keeps its accuracy and is caught."""
from __future__ import annotations

import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.core.trial import Runtime, run_trial
from robustsweep.registry import MODELS
from tests.conftest import register_quantised_mlp

BASE = {"name": "t", "dataset": {"name": "digits"}, "train": {"epochs": 8, "lr": 3e-3}, "eval": {"n_eval": 60},
        "attacks": [{"name": "fgsm", "eps": [0.1, 0.2]}]}


@pytest.fixture
def masked_model():
    register_quantised_mlp("test-quantised")
    yield "test-quantised"
    MODELS.unregister("test-quantised")


def _run(tmp_path, model, **eval_over):
    (cfg,) = spec_from_dict({**BASE, "model": model, "eval": {**BASE["eval"], **eval_over}}).expand()
    return run_trial(cfg, Runtime(results=str(tmp_path), sweep="s"))


def test_an_honest_model_falls_to_chance_and_has_live_gradients(tmp_path):
    rows = _run(tmp_path, {"name": "mlp", "hidden": 64})
    r = rows[0]
    assert r["clean_accuracy"] > 0.8
    assert r["m.sanity_acc_large_eps"] <= r["m.sanity_chance"]
    assert r["m.sanity_grad_finite"] == 1.0 and r["m.sanity_grad_nonzero"] == 1.0
    assert r["m.sanity_steps_eps"] == 0.2 and r["m.sanity_acc_2steps"] <= r["m.sanity_acc_steps"] + 0.05
    assert all(x["m.sanity_acc_large_eps"] == r["m.sanity_acc_large_eps"] for x in rows)  # on every row


def test_a_quantised_model_is_caught_by_the_probes(tmp_path, masked_model):
    r = _run(tmp_path, {"name": masked_model, "hidden": 64})[0]
    assert r["clean_accuracy"] > 0.8
    assert r["m.sanity_grad_nonzero"] < 0.05  # round() has zero derivative
    assert r["m.sanity_acc_large_eps"] > 0.5  # PGD without a gradient does not move: accuracy stays


def test_the_probes_change_no_other_number_and_can_be_switched_off(tmp_path):
    gfz = {"name": "gfz", "dim_z": 8, "hidden": 32, "K": 4, "likelihood": "gaussian_fixed"}
    on = _run(tmp_path / "on", gfz, eot=2)
    off = _run(tmp_path / "off", gfz, eot=2, sanity=False)
    assert [r["adv_accuracy"] for r in on] == [r["adv_accuracy"] for r in off]
    assert "m.sanity_acc_large_eps" in on[0] and "m.sanity_acc_large_eps" not in off[0]
