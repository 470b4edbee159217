"""``eval.correct_for`` (core/correct_subset.py): paper 001's CIFAR-binary rule -- attack only the test points that
every compared model classifies correctly -- on real trials of two deterministic models."""
from __future__ import annotations

import pytest

from robustsweep.config.spec import SpecError, spec_from_dict
from robustsweep.core.trial import Runtime, run_trial


def _doc(**eval_over):
    return {"name": "cc", "dataset": {"name": "digits"}, "model": {"name": "mlp"}, "train": {"epochs": 2, "lr": 3e-3},
            "eval": {"n_eval": 40, "examples": {"n": 5}, **eval_over},
            "attacks": [{"name": "fgsm", "eps": 0.1}], "search": {"model.name": {"grid": ["mlp", "cnn"]}}}


def test_every_trial_attacks_the_same_points_all_models_get_right(tmp_path):
    trials = spec_from_dict(_doc(correct_for=["mlp", "cnn"])).expand()
    rt = Runtime(results=str(tmp_path), sweep="cc")
    logs: list[str] = []
    rows = {t["model"]["name"]: run_trial(t, rt, logs.append)[0] for t in trials}
    for r in rows.values():  # deterministic models: every attacked point is one both classify correctly
        assert r["clean_accuracy"] == 1.0 and r["n_eval"] == 40
        assert 40 <= r["m.n_common_correct"] < 360  # a strict subset of digits' 360 test points
    assert rows["mlp"]["m.n_common_correct"] == rows["cnn"]["m.n_common_correct"]
    assert rows["mlp"]["ex.clean"] == rows["cnn"]["ex.clean"]  # the same points, whichever model's trial
    assert any("loaded cached model" in m for m in logs)  # the second trial reuses the first one's model
    plain = {t["model"]["name"]: run_trial(t, Runtime(results=str(tmp_path / "p"), sweep="cc"))[0]
             for t in spec_from_dict(_doc()).expand()}
    assert plain["mlp"]["ex.clean"] != rows["mlp"]["ex.clean"]  # without the option: any test points
    assert "m.n_common_correct" not in plain["mlp"]


@pytest.mark.parametrize("bad, msg", [(["mlp", "nope"], "nope"), ([], "correct_for")])
def test_bad_correct_for_is_refused_before_anything_runs(bad, msg):
    with pytest.raises(SpecError, match=msg):
        spec_from_dict(_doc(correct_for=bad)).expand()
