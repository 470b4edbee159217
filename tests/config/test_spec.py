"""Experiment-file validation (clear errors naming the key, nothing started) and search-space expansion."""
from __future__ import annotations

import textwrap

import pytest
import yaml

from robustsweep.cli import main
from robustsweep.config.spec import SpecError, config_hash, load_spec, spec_from_dict

BASE = {
    "name": "t",
    "dataset": {"name": "digits"},
    "model": {"name": "mlp", "hidden": 32},
    "train": {"epochs": 1},
    "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}],
}


def spec(**over):
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    "doc, needle",
    [
        (spec(trian={"epochs": 2}), "trian: unknown key; allowed: attacks, dataset"),
        (spec(train={"epochs": "ten"}), "train.epochs"),
        (spec(train={"epohcs": 2}), "train.epohcs: unknown key; allowed: adversarial, batch_size, epochs, lr, weight_decay"),
        (spec(model={"name": "gfzz"}), "model.name: unknown model 'gfzz'; allowed: "),
        (spec(model={"name": "mlp", "dimz": 3}), "model.dimz: not a parameter of model 'mlp'; allowed: hidden, layers"),
        (spec(model={"name": "mlp", "hidden": "wide"}), "model.hidden"),
        (spec(dataset={"name": "imagenet-21k"}), "dataset.name: unknown dataset 'imagenet-21k'"),
        (spec(attacks=[{"name": "pgdd"}]), "attacks.0.name: unknown attack 'pgdd'; allowed: "),
        (spec(attacks=[{"name": "pgd", "eps": []}]), "attacks.0.eps: empty grid"),
        (spec(attacks=[{"name": "pgd", "eps": [0.1], "steps": [1, 2]}]), "only one parameter may be a list"),
        (spec(search={"seed": {"grid": []}}), "search.seed: Value error, grid is empty"),
        (spec(search={"seed": {"grid": [1], "choice": [2]}}), "exactly one of grid, choice"),
        (spec(search={"modle.hidden": {"grid": [1]}}), "search.modle.hidden: no key 'modle'"),
        (spec(search={"model.name": {"grid": ["mlp", "nope"]}}), "model.name: unknown model 'nope'"),
        (spec(search={"train.lr": {"loguniform": [0, 1]}}), "loguniform bounds must be > 0"),
    ],
)
def test_bad_spec_names_the_key(doc, needle):
    with pytest.raises(SpecError) as e:
        spec_from_dict(doc)
    assert needle in str(e.value)


def test_missing_required_key():
    doc = spec()
    del doc["model"]
    with pytest.raises(SpecError, match="model: required key is missing"):
        spec_from_dict(doc)


def test_cli_exits_2_and_starts_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec(model={"name": "mlp", "hiden": 3})))
    results = tmp_path / "results"
    assert main(["run", str(bad), "--results", str(results)]) == 2
    assert "model.hiden: not a parameter of model 'mlp'" in capsys.readouterr().err
    assert not results.exists()


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text(textwrap.dedent("""
        name: !!python/object/apply:os.system ["touch %s"]
        dataset: {name: digits}
        model: {name: mlp}
    """ % (tmp_path / "pwned")))
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(evil)
    assert not (tmp_path / "pwned").exists()


def test_grid_expansion_is_a_product_with_dict_values():
    s = spec_from_dict(spec(search={
        "model": {"grid": [{"name": "mlp", "hidden": 8}, {"name": "mlp", "hidden": 16}, {"name": "cnn"}]},
        "seed": {"grid": [0, 1]},
        "train.lr": {"grid": [1e-3, 1e-2]},
    }))
    trials = s.expand()
    assert len(trials) == 3 * 2 * 2
    assert {(t["model"].get("hidden"), t["model"]["name"]) for t in trials} == {(8, "mlp"), (16, "mlp"), (None, "cnn")}
    assert len({t["trial_id"] for t in trials}) == 12
    # the seed is not part of config_hash: each config has exactly two trials (its seeds)
    by_cfg = {}
    for t in trials:
        by_cfg.setdefault(t["config_hash"], set()).add(t["seed"])
    assert len(by_cfg) == 6 and all(v == {0, 1} for v in by_cfg.values())


def test_random_dims_are_reproducible_and_in_range():
    doc = spec(search={"train.lr": {"loguniform": [1e-4, 1e-2]}, "model.hidden": {"randint": [8, 64]}},
               num_samples=5, sample_seed=3)
    a, b = spec_from_dict(doc).expand(), spec_from_dict(doc).expand()
    assert [t["trial_id"] for t in a] == [t["trial_id"] for t in b]
    assert len(a) == 5
    assert all(1e-4 <= t["train"]["lr"] <= 1e-2 and 8 <= t["model"]["hidden"] < 64 for t in a)
    c = spec_from_dict({**doc, "sample_seed": 4}).expand()
    assert [t["train"]["lr"] for t in a] != [t["train"]["lr"] for t in c]


def test_search_can_reach_into_attack_lists():
    s = spec_from_dict(spec(search={"attacks.0.eps": {"grid": [[0.1], [0.2, 0.3]]}}))
    assert [t["attacks"][0]["eps"] for t in s.expand()] == [[0.1], [0.2, 0.3]]


def test_duplicate_points_run_once():
    s = spec_from_dict(spec(search={"seed": {"grid": [0, 0, 1]}}))
    assert len(s.expand()) == 2


def test_hash_is_stable_under_key_order():
    a = {"model": {"name": "mlp", "hidden": 3}, "seed": 1}
    b = {"seed": 1, "model": {"hidden": 3, "name": "mlp"}}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "seed": 2})


def test_override_applies_before_validation(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(spec()))
    s = load_spec(p, ["train.epochs=3", "model.hidden=12"])
    t = s.expand()[0]
    assert t["train"]["epochs"] == 3 and t["model"]["hidden"] == 12
    with pytest.raises(SpecError, match="model.oops: not a parameter"):
        load_spec(p, ["model.oops=1"])


def test_every_shipped_experiment_file_is_valid():
    from tests.conftest import REPO

    files = sorted((REPO / "experiments").glob("*.yaml"))
    assert files, "experiments/ should ship example specs"
    for f in files:
        assert load_spec(f).expand(), f


def test_slurm_section_is_validated_with_the_spec():
    with pytest.raises(SpecError, match="slurm.partiton: unknown key; allowed: account"):
        spec_from_dict(spec(slurm={"partiton": "gpu"}))
    assert spec_from_dict(spec(slurm={"partition": "gpu", "nodes": 2})).backend_options("slurm")["nodes"] == 2


def test_detector_label_is_reserved_other_keys_are_checked():
    s = spec_from_dict(spec(detectors=[{"name": "logit", "label": "logit-a1", "alpha": 1.0}]))
    assert s.expand()[0]["detectors"][0]["label"] == "logit-a1"
    with pytest.raises(SpecError, match="detectors.0.alpah: not a parameter of detector 'logit'"):
        spec_from_dict(spec(detectors=[{"name": "logit", "alpah": 1.0}]))
