"""EOT where the model is random (issue 38, part 5): a validation warning for one-draw white-box attacks on a
stochastic model, ``eval.eot`` for every attack of a file, and ``m.flip_rate`` on every row of a stochastic model."""
from __future__ import annotations

import json

import pytest

from robustsweep.config import reach
from robustsweep.config.spec import spec_from_dict
from robustsweep.core.trial import Runtime, run_trial

FILE = {"name": "t", "dataset": {"name": "digits"},
        "model": {"name": "gfz", "dim_z": 8, "hidden": 32, "K": 4, "likelihood": "gaussian_fixed"},
        "train": {"epochs": 1, "lr": 3e-3}, "eval": {"n_eval": 24},
        "attacks": [{"name": "fgsm", "eps": 0.1}, {"name": "pgd", "eps": 0.1, "steps": 2, "step_size": 0.05}]}


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(reach, "_WARNED", set())


def _doc(**over):
    return {**FILE, **over}


def test_one_draw_white_box_attacks_on_a_stochastic_model_are_warned(capsys):
    spec_from_dict(_doc()).expand()
    err = capsys.readouterr().err
    assert "attacks.0 (fgsm) attacks the stochastic model 'gfz' with eot = 1" in err
    assert "attacks.1 (pgd)" in err and "eval.eot" in err


@pytest.mark.parametrize("over", [{"eval": {"n_eval": 24, "eot": 4}},
                                  {"attacks": [{"name": "fgsm", "eps": 0.1, "eot": 3}]},
                                  {"model": {"name": "mlp", "hidden": 16}}])
def test_no_warning_with_eot_or_a_deterministic_model(capsys, over):
    spec_from_dict(_doc(**over)).expand()
    assert "eot = 1" not in capsys.readouterr().err


def test_eval_eot_reaches_every_attack_and_flip_rate_is_recorded_without_changing_the_draws(tmp_path):
    (cfg,) = spec_from_dict(_doc(eval={"n_eval": 24, "eot": 3})).expand()
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="a"))
    attack_rows = [r for r in rows if r["kind"] == "attack"]
    assert [json.loads(r["attack_params"])["eot"] for r in attack_rows] == [3, 3]
    assert all(r["m.stochastic"] is True and r["m.draws"] == 10 for r in rows)
    assert 0.0 <= rows[0]["m.flip_rate"] <= 1.0
    # the 10 extra draws run under a forked RNG: every measured number is what it is without them
    (cfg0,) = spec_from_dict(_doc(eval={"n_eval": 24, "eot": 3, "draws": 0})).expand()
    rows0 = run_trial(cfg0, Runtime(results=str(tmp_path), sweep="b"))
    for r, r0 in zip(rows, rows0):
        assert (r["clean_accuracy"], r["adv_accuracy"]) == (r0["clean_accuracy"], r0["adv_accuracy"])
        assert "m.flip_rate" not in r0


def test_a_barely_trained_gfz_changes_its_mind_and_a_deterministic_model_does_not(tmp_path):
    (cfg,) = spec_from_dict(_doc(eval={"n_eval": 60, "eot": 2, "draws": 20},
                                 model={**FILE["model"], "K": 1})).expand()
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="c"))
    assert rows[0]["m.flip_rate"] > 0  # one importance sample per class after one epoch: draws disagree
    (det,) = spec_from_dict(_doc(model={"name": "mlp", "hidden": 16})).expand()
    rows = run_trial(det, Runtime(results=str(tmp_path), sweep="d"))
    assert rows[0]["m.stochastic"] is False and "m.flip_rate" not in rows[0]
