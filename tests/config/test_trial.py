"""The typed trial (config/trial.py): one validation of the wire dict, defaults applied once, frozen."""
from __future__ import annotations

import dataclasses
import pickle

import pytest
import yaml

from robustsweep.cli import main
from robustsweep.config.eval_options import DEFAULT_N_FIT
from robustsweep.config.spec import SpecError, spec_from_dict
from robustsweep.config.trial import Trial
from robustsweep.errors import EXIT_USAGE

BASE = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 32},
        "attacks": [{"name": "fgsm", "eps": [0.1, 0.2], "label": "f"}], "detectors": [{"name": "logit"}]}


def one(**over) -> dict:
    (t,) = spec_from_dict({**BASE, **over}).expand()
    return t


def test_defaults_are_applied_once_where_they_are_declared():
    t = Trial.from_dict(one())
    assert t.eval.n_fit == DEFAULT_N_FIT and t.eval.n_eval == 500
    assert t.eval.examples is None and t.eval.counterfactual is None and t.eval.decision_grid is None
    assert t.eval.correct_for is None and t.train.epochs == 20 and t.train.adversarial is None
    ex = Trial.from_dict(one(eval={"examples": {"n": 2}, "counterfactual": {"eps": 0.2}})).eval
    assert ex.examples.n == 2 and ex.examples.labels is None and ex.counterfactual.max_iter == 30


def test_components_keep_what_the_file_wrote():
    t = Trial.from_dict(one())
    assert t.model.name == "mlp" and t.model.params == {"hidden": 32} and t.dataset.name == "digits"
    assert [(a.name, a.label, a.params["eps"]) for a in t.attacks] == [("fgsm", "f", [0.1, 0.2])]
    assert [d.label for d in t.detectors] == ["logit"] and t.seed == 0


def test_the_wire_dict_round_trips_unchanged_with_its_ids():
    cfg = one(search={"seed": {"grid": [3]}})
    t = Trial.from_dict(cfg)
    assert t.to_dict() == cfg and (t.trial_id, t.config_hash) == (cfg["trial_id"], cfg["config_hash"])
    assert t.model_identity() == {"model": cfg["model"], "dataset": cfg["dataset"], "seed": 3, "train": cfg["train"]}
    bare = {k: v for k, v in cfg.items() if k not in ("trial_id", "config_hash")}
    assert Trial.from_dict(bare).trial_id == cfg["trial_id"]  # ids computed by the same rule when absent
    assert pickle.loads(pickle.dumps(t)) == t and Trial.from_dict(t) is t


def test_frozen():
    t = Trial.from_dict(one())
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.seed = 1
    with pytest.raises(Exception, match="frozen"):
        t.eval.n_fit = 3
    t.to_dict()["model"]["hidden"] = 99
    assert t.model.params["hidden"] == 32 and t.to_dict()["model"]["hidden"] == 32


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["eval"].update(n_fit="many"), r"eval\.n_fit"),
    (lambda c: c["train"].update(epochs_=3), r"train\.epochs_: unknown key; allowed: .*epochs"),
    (lambda c: c.update(seed="1"), "seed: expected an integer"),
    (lambda c: c.pop("model"), "missing model"),
    (lambda c: c.update(attacks=[{"eps": 0.1}]), r"attacks\.0: expected a mapping with a 'name' key"),
])
def test_a_bad_wire_dict_is_refused_naming_the_key(edit, match):
    cfg = one()
    edit(cfg)
    with pytest.raises(SpecError, match=match):
        Trial.from_dict(cfg)


def test_an_attack_the_model_cannot_serve_is_refused_before_anything_trains(tmp_path, capsys):
    """gmmvae-whitebox reads a GMM-VAE's class means and thresholds (``needs="gmmvae"``); on gfz it used to pass
    validation and fail after the model had trained."""
    doc = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "gfz"},
           "attacks": [{"name": "fgsm", "eps": [0.1]}, {"name": "gmmvae-whitebox", "steps": 5}]}
    msg = (r"attacks\.1: attack 'gmmvae-whitebox' needs a model that provides 'gmmvae', but model 'gfz' provides "
           r"nothing; use a model that provides it \(gmmvae\), or remove 'gmmvae-whitebox' from this experiment")
    with pytest.raises(SpecError, match=msg):
        spec_from_dict(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["run", str(path), "--dry-run", "--results", str(tmp_path / "r")]) == EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert "attack 'gmmvae-whitebox' needs a model that provides 'gmmvae', but model 'gfz'" in err
    assert not (tmp_path / "r").exists()  # refused before a sweep folder was made


def test_a_detector_the_model_cannot_serve_is_refused_and_a_grid_of_models_too():
    with pytest.raises(SpecError, match=r"detectors\.0: detector 'gmmvae-tau' needs .* but model 'mlp'"):
        spec_from_dict({**BASE, "detectors": [{"name": "gmmvae-tau"}]})
    with pytest.raises(SpecError, match=r"but model 'gfz' provides nothing"):  # one trial of the grid is enough
        spec_from_dict({**BASE, "model": {"name": "gmmvae"}, "detectors": [{"name": "gmmvae-tau"}],
                        "search": {"model.name": {"grid": ["gmmvae", "gfz"]}}})
    spec_from_dict({**BASE, "model": {"name": "gmmvae"}, "detectors": [{"name": "gmmvae-tau"}]})  # served: fine


def test_rows_built_from_a_typed_trial_are_those_of_its_wire_dict():
    from robustsweep.store.rows import empty_rows, failed_row, identity

    cfg = one()
    t = Trial.from_dict(cfg)
    assert identity(t, "s") == identity(cfg, "s")
    assert {k: v for k, v in failed_row(t, "s", "e").items() if k != "finished_at"} == \
        {k: v for k, v in failed_row(cfg, "s", "e").items() if k != "finished_at"}
    assert empty_rows([t], "s").columns == empty_rows([cfg], "s").columns
    assert "det.logit.tpr" in empty_rows([t], "s").columns
