"""Issue 16, parts 1-2: sweep names cannot leave the results folder; every numeric value has a domain.

Each bad experiment file of the issue (``name: ../../etc``, ``eps: -0.1``, ``train.lr: .nan``, ``model.dim_z: 0``,
``train.epochs: 0``) is an exit-2 error naming the key and the domain, and nothing is written anywhere.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated

import pytest
import yaml
from annotated_types import Ge, Lt

from robustsweep.cli import main
from robustsweep.config.domains import DOMAINS, Domain, annotated_domain, domain_for, name_violation
from robustsweep.config.spec import SpecError, spec_from_dict
from robustsweep.errors import UsageError
from robustsweep.registry import MODELS
from robustsweep.store.paths import OutsideRoot, ensure_inside
from robustsweep.sweep.folder import load_sweep, prepare_sweep

BASE = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8}, "train": {"epochs": 1},
        "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}]}


def doc(**over):
    d = json.loads(json.dumps(BASE))
    d.update(over)
    return d


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# ------------------------------------------------------------------------------------------------- names, paths
@pytest.mark.parametrize("name", ["../../etc", "..", "a/../../b", "/tmp/abs", ".hidden", "-x", "a b", "a/b", "x..y",
                                  ""])
def test_bad_names_are_refused(name):
    assert name_violation("name", name) is not None


@pytest.mark.parametrize("name", ["quickstart", "p001_whitebox-ci-smoke", "A.1", "0"])
def test_good_names_pass(name):
    assert name_violation("name", name) is None


@pytest.mark.parametrize("args, key", [
    ([], "name = '../../etc'"),  # the spec's own name
    (["--name", "../up"], "--name = '../up'"),
    (["--set", "name=../../x"], "name = '../../x'"),
])
def test_escaping_name_exits_2_and_writes_nothing(tmp_path, capsys, args, key):
    spec_file = tmp_path / "deep" / "er" / "bad.yaml"
    spec_file.parent.mkdir(parents=True)
    spec_file.write_text(yaml.safe_dump(doc(name="../../etc" if not args else "fine")))
    before = all_files(tmp_path)
    results = tmp_path / "deep" / "er" / "results"
    assert main(["run", str(spec_file), "--results", str(results), *args]) == 2
    err = capsys.readouterr().err
    assert key in err and "not a valid sweep name" in err
    assert all_files(tmp_path) == before  # not even the results folder


def test_ensure_inside(tmp_path):
    assert ensure_inside(tmp_path / "a" / "b", tmp_path) == (tmp_path / "a" / "b").resolve()
    with pytest.raises(OutsideRoot, match="resolves outside"):
        ensure_inside(tmp_path / "a" / ".." / ".." / "b", tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "res").mkdir()
    os.symlink(tmp_path / "out", tmp_path / "res" / "link")  # a symlinked sweep folder leads elsewhere
    with pytest.raises(OutsideRoot):
        ensure_inside(tmp_path / "res" / "link" / "sweep.json", tmp_path / "res")


def test_symlinked_sweep_folder_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "res").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "res" / "t")
    with pytest.raises(OutsideRoot):
        prepare_sweep(spec_from_dict(doc()), tmp_path / "res")
    assert not list((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize("field, value", [("name", "../../etc"), ("trial_id", "../../../x")])
def test_names_read_back_from_sweep_json_are_checked(tmp_path, field, value):
    sw = prepare_sweep(spec_from_dict(doc()), tmp_path)
    path = sw.dir / "sweep.json"
    d = json.loads(path.read_text())
    if field == "name":
        d["name"] = value
    else:
        d["trials"][0]["trial_id"] = value
    path.write_text(json.dumps(d))
    with pytest.raises(UsageError, match="not a valid sweep name"):
        load_sweep(tmp_path, "t")
    with pytest.raises(UsageError, match="sweep name = '../x'"):
        load_sweep(tmp_path, "../x")


@pytest.mark.parametrize("command", [["compact"], ["results"], ["query", None, "SELECT 1"], ["report"]])
def test_read_and_compact_commands_refuse_a_sweep_name_outside_results(tmp_path, capsys, command):
    """``compact ../outside/sw --results res`` once merged and deleted the trial files of a sweep beside the results
    folder, and ``results`` wrote a read cache there: the name is refused (exit 2) and nothing there changes."""
    from bench.store_data import make_sweep

    make_sweep(tmp_path / "outside", "sw", 5)
    (tmp_path / "res").mkdir()
    before = {p: p.stat().st_mtime_ns for p in all_files(tmp_path / "outside")}
    argv = [command[0], "../outside/sw", *command[2:]]
    argv += ["--out", str(tmp_path / "out")] if command[0] == "report" else []
    assert main([*argv, "--results", str(tmp_path / "res")]) == 2
    assert "not a valid sweep name" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in all_files(tmp_path / "outside")} == before
    assert not list((tmp_path / "res").iterdir())


# ------------------------------------------------------------------------------------------------------ domains
@pytest.mark.parametrize("d, needle", [
    (doc(attacks=[{"name": "fgsm", "eps": -0.1}]), "attacks.0.eps = -0.1 is outside its domain eps ≥ 0"),
    (doc(attacks=[{"name": "fgsm", "eps": [0.1, -0.1]}]), "attacks.0.eps = -0.1 is outside its domain eps ≥ 0"),
    (doc(train={"lr": math.nan}), "train.lr = nan is not a finite number (its domain: lr > 0)"),
    (doc(train={"lr": math.inf}), "train.lr = inf is not a finite number"),
    (doc(train={"lr": 0.0}), "train.lr = 0.0 is outside its domain lr > 0"),
    (doc(train={"epochs": 0}), "train.epochs = 0 is outside its domain epochs ≥ 1"),
    (doc(model={"name": "gfz", "dim_z": 0}), "model.dim_z = 0 is outside its domain dim_z ≥ 1"),
    (doc(model={"name": "gfz", "K": 0}), "model.K = 0 is outside its domain K ≥ 1"),
    (doc(attacks=[{"name": "pgd", "eps": 0.1, "steps": 0}]), "attacks.0.steps = 0 is outside its domain steps ≥ 1"),
    (doc(detectors=[{"name": "logit", "target_fpr": 1.0}]), "detectors.0.target_fpr = 1.0 is outside its domain "
                                                             "0 < target_fpr < 1"),
    (doc(attacks=[{"name": "apgd", "alpha": 1.5}]), "attacks.0.alpha = 1.5 is outside its domain 0 ≤ alpha ≤ 1"),
    (doc(eval={"n_eval": 0}), "eval.n_eval = 0 is outside its domain n_eval ≥ 1"),
    (doc(eval={"counterfactual": {"threshold": 2}}), "eval.counterfactual.threshold = 2.0 is outside"),
    (doc(dataset={"name": "digits", "test_size": 1.0}), "dataset.test_size = 1.0 is outside its domain"),
    (doc(seed=-1), "seed"),
    # every value a search can give: grid and choice entries, both bounds of a random range
    (doc(search={"model.hidden": {"grid": [8, 0]}}), "search.model.hidden (grid): model.hidden = 0 is outside"),
    (doc(search={"train.lr": {"choice": [0.1, -1]}}), "search.train.lr (choice): train.lr = -1 is outside"),
    (doc(search={"attacks.0.eps": {"uniform": [-0.1, 0.3]}}), "search.attacks.0.eps (uniform): attacks.0.eps = -0.1"),
    (doc(search={"detectors.0.target_fpr": {"uniform": [0.01, 1.5]}},
         detectors=[{"name": "logit"}]), "detectors.0.target_fpr = 1.5 is outside"),
    (doc(search={"model.hidden": {"randint": [0, 4]}}), "search.model.hidden (randint): model.hidden = 0"),
])
def test_value_outside_its_domain_names_key_and_domain(d, needle):
    with pytest.raises(SpecError) as e:
        spec_from_dict(d)
    assert needle in str(e.value)


def test_values_on_the_boundary_are_accepted():
    ok = doc(attacks=[{"name": "fgsm", "eps": [0.0]}, {"name": "apgd", "eps": 0.1, "alpha": 1.0}],
             detectors=[{"name": "logit", "target_fpr": 0.01}],
             search={"model.hidden": {"randint": [1, 4]},  # upper bound exclusive: 1..3
                     "train.lr": {"loguniform": [1e-4, 1e-2]}})
    assert len(spec_from_dict(ok).expand()) == 1


def test_cli_refuses_bad_value_with_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(doc()))
    assert main(["run", str(f), "--results", str(tmp_path / "r"), "--set", "train.lr=.nan"]) == 2
    assert "train.lr = nan is not a finite number" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_domain_describe_and_membership():
    assert Domain(0, 1, True, True).describe("p") == "0 < p < 1"
    assert Domain(lo=0).describe("eps") == "eps ≥ 0"
    assert Domain(lo=0, lo_open=True).describe("lr") == "lr > 0"
    assert Domain(hi=1).describe("x") == "x ≤ 1"
    d = Domain(0, 1, lo_open=True)
    assert 1 in d and 0.5 in d and 0 not in d and 1.0001 not in d


def test_annotated_constraint_overrides_the_name_domain():
    """A factory may declare its own domain beside the parameter; the validator reads it before the table."""
    assert annotated_domain(Annotated[int, Ge(0)]) == Domain(lo=0)
    assert annotated_domain(Annotated[float, Ge(0), Lt(1)] | None) == Domain(0, 1, hi_open=True)
    assert annotated_domain(int) is None

    @MODELS.register("test-annotated", kind="discriminative")
    def test_annotated(input_shape, num_classes, dim_z: Annotated[int, Ge(0)] = 0,
                       width: Annotated[int, Domain(lo=4)] = 8, hidden: int = 8):
        raise AssertionError("never built by validation")

    try:
        assert DOMAINS["dim_z"] == Domain(lo=1)
        assert domain_for("model", "test-annotated", "dim_z") == Domain(lo=0)  # Annotated wins over the table
        spec_from_dict(doc(model={"name": "test-annotated", "dim_z": 0, "width": 4}))  # dim_z 0 fine here
        with pytest.raises(SpecError, match=r"model.width = 3 is outside its domain width ≥ 4"):
            spec_from_dict(doc(model={"name": "test-annotated", "width": 3}))
        with pytest.raises(SpecError, match=r"model.hidden = 0 is outside its domain hidden ≥ 1"):  # table still
            spec_from_dict(doc(model={"name": "test-annotated", "hidden": 0}))
    finally:
        MODELS.unregister("test-annotated")


def test_every_registered_numeric_default_lies_in_its_domain():
    """The table agrees with the factories' own defaults (a wrong domain would refuse the default)."""
    from robustsweep.config.domains import KINDS, violation

    bad = []
    for kind, reg in KINDS.items():
        for e in reg.entries():
            for k, v in e.defaults().items():
                if k not in reg.hidden_params and (msg := violation(f"{e.name}.{k}", k, v,
                                                                    domain_for(kind, e.name, k))):
                    bad.append(msg)
    assert not bad


# ------------------------------------------------------------------------------------------- damaged sweep.json
@pytest.mark.parametrize("content, needle", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"name": "t"}), "lacks spec, trials"),
    (json.dumps([1, 2]), "lacks spec, trials"),
])
def test_a_damaged_sweep_json_is_one_error_line_for_run_status_and_resume(tmp_path, capsys, content, needle):
    spec_file = tmp_path / "t.yaml"
    spec_file.write_text(yaml.safe_dump(doc()))
    prepare_sweep(spec_from_dict(doc()), tmp_path / "res")
    (tmp_path / "res" / "t" / "sweep.json").write_text(content)
    for argv in (["run", str(spec_file), "--no-preflight"], ["status", "t"], ["resume", "t"]):
        assert main([*argv, "--results", str(tmp_path / "res")]) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)


def test_a_sweep_json_whose_spec_no_longer_validates_is_one_error_line(tmp_path, capsys):
    sw = prepare_sweep(spec_from_dict(doc()), tmp_path)
    d = json.loads((sw.dir / "sweep.json").read_text())
    d["spec"]["train"]["epochs"] = "many"
    (sw.dir / "sweep.json").write_text(json.dumps(d))
    assert main(["status", "t", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "spec no longer validates" in err and "train.epochs" in err and "Traceback" not in err


def test_the_latest_spec_of_the_same_trials_is_the_sweeps(tmp_path):
    """Settings outside a trial's identity (resources, max_retries) change with the command that names them: a
    ray-mode job and a resume read sweep.json back, and used to keep the first command's settings."""
    first = prepare_sweep(spec_from_dict(doc()), tmp_path)
    created = json.loads((first.dir / "sweep.json").read_text())["created_at"]
    prepare_sweep(spec_from_dict(doc(resources={"max_retries": 0, "cpus_per_trial": 2})), tmp_path)
    again = load_sweep(tmp_path, "t")
    assert again.spec.resources.max_retries == 0 and again.spec.resources.cpus_per_trial == 2
    assert [t["trial_id"] for t in again.trials] == [t["trial_id"] for t in first.trials]
    saved = json.loads((first.dir / "sweep.json").read_text())
    assert saved["created_at"] == created and "updated_at" in saved
    from robustsweep.sweep.folder import _read_trial_list

    assert _read_trial_list(first.dir) is not None  # the status sidecar follows the rewritten sweep.json


def test_compact_on_an_unwritable_sweep_folder_is_one_error_line(tmp_path, capsys, monkeypatch):
    """(As root a chmod cannot make the folder read-only, so the OSError is raised where compaction writes.)"""
    import errno

    from robustsweep.store import compact as compact_mod

    prepare_sweep(spec_from_dict(doc()), tmp_path)

    def denied(results, sweep, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "t" / ".compact.lock"))

    monkeypatch.setattr(compact_mod, "compact", denied)
    assert main(["compact", "t", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "left the sweep as it was" in err and "Traceback" not in err
