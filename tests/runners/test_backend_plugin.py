"""A backend is a complete plugin: a scheduler declared in one file (tests/runners/fake_scheduler.py) is offered by
``--backend``, submits, and is followed by ``status`` and ``resume`` -- job states, the job a trial ran in, the
cancel hint, going back to it on resume -- without any other module knowing it. Plus the contract every registered
backend keeps."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from robustsweep import cli
from robustsweep.config.spec import Spec, SpecError, backend_sections, spec_from_dict, spec_schema
from robustsweep.registry import BACKENDS
from robustsweep.runners.base import Backend, get_backend, register_backend
from robustsweep.store.markers import read_markers
from tests.runners.fake_scheduler import FakeScheduler, drain, read_queue

PKG = Path(__file__).resolve().parents[2] / "robustsweep"


@pytest.fixture
def fake():
    register_backend(FakeScheduler)
    yield
    BACKENDS.unregister("fake")


DOC = {"name": "plug", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
       "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
       "search": {"seed": {"grid": [0, 1, 2]}}}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "plug.yaml"
    path.write_text(yaml.safe_dump(DOC))
    return path


def status(results: Path, capsys) -> tuple[str, dict]:
    assert cli.main(["status", "plug", "--results", str(results)]) == 0
    text = capsys.readouterr().out
    assert cli.main(["status", "plug", "--results", str(results), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_submit_status_resume_through_a_scheduler_declared_in_one_file(fake, spec_file, tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["submit", str(spec_file), "--backend", "fake", "--results", str(results), "--scale", "paper",
                     "--fake-interrupt", "3"]) == 0
    out = capsys.readouterr().out
    assert "submitted FAKE job 1" in out and "status: robustsweep status plug" in out

    text, js = status(results, capsys)  # queued: nothing ran yet
    assert "FAKE jobs:" in text and re.search(r"\n  1 +fake +PENDING +fakenode +submit ", text)
    assert "SLURM jobs" not in text  # only the backends that submitted something list their jobs
    assert js["counts"] == {"done": 0, "running": 0, "failed": 0, "pending": 3}
    assert [(j["task_id"], j["state"], j["backend"]) for j in js["jobs"]] == [("1", "PENDING", "fake")]
    assert {t["job"] for t in js["trials"]} == {"1"}

    assert cli.main(["resume", "plug", "--results", str(results)]) == 2  # the job is still queued
    err = capsys.readouterr().err
    assert "still has FAKE job(s) queued or running: 1 (PENDING)" in err and "robustsweep cancel plug" in err

    sweep_dir = results / "plug"
    drain(sweep_dir)  # two trials run, the job dies in the third
    (marker,) = read_markers(results, "plug").values()
    assert marker["fake_job"] == "1" and marker["slurm_job"] is None  # the job it ran in, asked of each scheduler
    text, js = status(results, capsys)
    assert js["counts"] == {"done": 2, "running": 0, "failed": 1, "pending": 0}
    (failed,) = [t for t in js["trials"] if t["state"] == "failed"]
    assert failed["error"] == "interrupted: its FAKE job 1 is CANCELLED but the trial never wrote a result"
    assert failed["job"] == "1" and "next: robustsweep resume plug" in text

    assert cli.main(["resume", "plug", "--results", str(results)]) == 0  # back to the backend it was submitted to
    out = capsys.readouterr().out
    assert "resuming 1 of 3 trials (0 failed, 1 never finished) on fake" in out and "submitted FAKE job 2" in out
    assert read_markers(results, "plug") == {}  # the interrupted trial's marker is cleared before the rerun
    drain(sweep_dir)
    text, js = status(results, capsys)
    assert js["counts"] == {"done": 3, "running": 0, "failed": 0, "pending": 0}
    assert [(j["task_id"], j["state"], j["command"]) for j in js["jobs"]] == [("1", "CANCELLED", "submit"),
                                                                            ("2", "COMPLETED", "resume")]
    assert failed["trial_id"] in {t["trial_id"] for t in js["trials"] if t["job"] == "2"}
    assert cli.main(["resume", "plug", "--results", str(results)]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_backend_choices_come_from_the_registry(fake):
    for cmd in (["submit", "x.yaml"], ["resume", "x"], ["reproduce", "000"]):
        a = cli.build_parser().parse_args([*cmd, "--backend", "fake", "--fake-interrupt", "2"])
        assert a.backend == "fake" and a.fake_interrupt == 2
    BACKENDS.unregister("fake")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["submit", "x.yaml", "--backend", "fake"])
    register_backend(FakeScheduler)  # for the fixture's clean-up


def spec_error(doc: dict) -> str:
    with pytest.raises(SpecError) as e:
        spec_from_dict(doc)
    return str(e.value)


def test_the_experiment_file_takes_a_registered_backends_own_section(fake):
    """``fake:`` is a key of the experiment file because the backend is registered with ``options_key = "fake"``:
    validated by its own options model, errors worded like every other key's, stored in sweep.json."""
    s = spec_from_dict({**DOC, "fake": {"interrupt": 2, "node": "n7"}})
    assert s.backend_options("fake") == {"interrupt": 2, "node": "n7"} and s.backend_options("slurm") == {}
    dump = s.model_dump(mode="json")
    assert dump["fake"] == {"interrupt": 2, "node": "n7"} and dump["slurm"] == {}
    assert list(dump).index("fake") == list(dump).index("resources") + 1  # the sections sit after resources
    assert Spec.model_validate(dump) == s  # what sweep.json holds reads back the same
    assert spec_from_dict(DOC).model_dump()["fake"] == {}

    assert "  fake.interrupt: Input should be greater than or equal to 1 (got 0)" in spec_error({**DOC, "fake": {"interrupt": 0}})
    assert "  fake.nodes: unknown key; allowed: interrupt, node" in spec_error({**DOC, "fake": {"nodes": 2}})
    assert "  fake: Input should be a valid dictionary (got 5)" in spec_error({**DOC, "fake": 5})
    assert "trian: unknown key; allowed: attacks, dataset, description, detectors, eval, fake, has_scales, model, " \
           "name, num_samples, paper, resources, sample_seed, scale, search, seed, slurm, smoke, train" \
           in spec_error({**DOC, "trian": 1})

    BACKENDS.unregister("fake")  # without the backend, its section is an unknown key like any other
    msg = spec_error({**DOC, "fake": {"interrupt": 2}})
    assert "fake: unknown key; allowed: " in msg and "slurm" in msg and ", fake," not in msg
    register_backend(FakeScheduler)  # for the fixture's clean-up


def test_a_backends_section_reaches_it_and_its_flag_wins(fake, tmp_path, capsys):
    path = tmp_path / "plug.yaml"
    path.write_text(yaml.safe_dump({**DOC, "fake": {"interrupt": 2, "node": "n7"}}))
    results = tmp_path / "results"
    assert cli.main(["submit", str(path), "--backend", "fake", "--results", str(results), "--scale", "paper"]) == 0
    assert cli.main(["submit", str(path), "--backend", "fake", "--results", str(results), "--scale", "paper",
                     "--fake-interrupt", "3", "--name", "plug2"]) == 0
    jobs = [*read_queue(results / "plug").values(), *read_queue(results / "plug2").values()]
    assert [(j["interrupt"], j["node"]) for j in jobs] == [(2, "n7"), (3, "n7")]
    assert json.loads((results / "plug" / "sweep.json").read_text())["spec"]["fake"] == {"interrupt": 2, "node": "n7"}
    capsys.readouterr()
    _, js = status(results, capsys)
    assert {j["nodes"] for j in js["jobs"]} == {"n7"}

    path.write_text(yaml.safe_dump({**DOC, "name": "bad", "fake": {"interupt": 2}}))
    assert cli.main(["submit", str(path), "--backend", "fake", "--results", str(results), "--scale", "paper"]) == 2
    assert "fake.interupt: unknown key; allowed: interrupt, node" in capsys.readouterr().err
    assert not (results / "bad").exists()


def test_backend_sections_are_declared_by_the_backends_not_the_spec(fake):
    """config/spec.py names no backend: every section key comes from a registered backend, none is a key of the
    spec's own, no two backends share one."""
    keys = [get_backend(n).options_key for n in BACKENDS.names() if get_backend(n).options_key]
    assert sorted(keys) == sorted(backend_sections()) and {"slurm", "fake"} <= set(keys)
    assert len(set(keys)) == len(keys) and not set(keys) & set(Spec.model_fields)
    assert set(keys) <= set(spec_schema().model_fields)


@pytest.mark.parametrize("name", BACKENDS.names())
def test_registered_backend_contract(name):
    """Every backend: registered under its own name, a title for messages, a runner from make(); a scheduler answers
    every question status / resume ask of it with nothing submitted."""
    b = get_backend(name)
    assert isinstance(b, Backend) and b.name == name and b.title
    assert type(b).make is not Backend.make
    if b.submits:
        assert b.read_records(Path("/nonexistent")) == [] and b.states([]) == {}
        assert b.current_job() is None or isinstance(b.current_job(), str)
        assert b.cancel_hint(["7"]) and b.job_of("7") == "7"
    if b.options_key:
        assert b.options_model() is not None


def test_only_runners_name_a_scheduler():
    """The layers below the runners (and the command line) never name SLURM's commands or variables."""
    pattern = re.compile(r"squeue|sacct|scancel|sbatch --|SLURM_[A-Z]")
    offenders = [str(p.relative_to(PKG)) for d in ("sweep", "store", "cli") for p in (PKG / d).rglob("*.py")
                 if pattern.search(p.read_text())]
    assert offenders == []
