"""Resume and status logic on a real sweep folder with hand-written Parquet files (no SLURM, no Ray):
resume selects exactly the failed and missing trials, refuses while a job still runs, and status classifies
each trial from the store, the running markers and the SLURM job states."""
from __future__ import annotations

import json
import os
import socket

import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.runners.slurm import records as jobs_mod
from robustsweep.runners.slurm.records import SlurmJob as JobRecord
from robustsweep.runners.slurm.records import append_record
from robustsweep.runners.tune import restorable
from robustsweep.runners.tune_callbacks import summarize_tune_error
from robustsweep.store.markers import marker_path, running_marker
from robustsweep.store.parquet import finished_ok, trial_status, write_trial
from robustsweep.store.rows import record_lost_trial
from robustsweep.sweep.folder import prepare_sweep
from robustsweep.sweep.resume import ResumeBlocked, ensure_nothing_running, plan_resume


@pytest.fixture
def sweep(tmp_path):
    doc = {"name": "rs", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
           "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
           "search": {"seed": {"grid": [0, 1, 2, 3, 4]}}}
    return prepare_sweep(spec_from_dict(doc), tmp_path / "results")


def _write(sw, trial, status, error=None, rows=2):
    base = {"sweep": sw.name, "trial_id": trial["trial_id"], "config_hash": trial["config_hash"],
            "seed": trial["seed"], "status": status, "error": error}
    write_trial([dict(base) for _ in range(rows if status == "ok" else 1)], sw.results, sw.name, trial["trial_id"])


def test_plan_selects_exactly_failed_and_missing(sweep):
    t = sweep.trials
    _write(sweep, t[0], "ok")
    _write(sweep, t[1], "failed", "RuntimeError: boom")
    _write(sweep, t[3], "ok")
    # an unreadable (truncated) file counts as not done
    bad = sweep.dir / "trials" / f"{t[4]['trial_id']}.parquet"
    bad.write_bytes(b"PAR1 truncated")
    plan = plan_resume(sweep)
    assert [x["trial_id"] for x in plan.failed] == [t[1]["trial_id"], t[4]["trial_id"]]
    assert [x["trial_id"] for x in plan.missing] == [t[2]["trial_id"]]
    assert {x["trial_id"] for x in plan.trials} == {x["trial_id"] for x in sweep.pending()}
    assert finished_ok(sweep.results, sweep.name, t[0]["trial_id"]) == 2
    assert finished_ok(sweep.results, sweep.name, t[1]["trial_id"]) is None
    assert finished_ok(sweep.results, sweep.name, t[2]["trial_id"]) is None


def test_nothing_to_resume_when_all_ok(sweep):
    for t in sweep.trials:
        _write(sweep, t, "ok")
    assert plan_resume(sweep).trials == []


def test_resume_refuses_while_a_job_is_active(sweep, monkeypatch):
    append_record(sweep.dir, JobRecord("41", "ray", sweep.name, str(sweep.dir / "slurm/logs/%j")))
    append_record(sweep.dir, JobRecord("42", "array", sweep.name, str(sweep.dir / "slurm/logs/%j"), ["a", "b"]))
    monkeypatch.setattr(jobs_mod, "query_states",
                        lambda ids, timeout=20.0: {"41": ("CANCELLED", "vm"), "42_0": ("COMPLETED", "vm"),
                                                   "42_1": ("RUNNING", "vm")})
    with pytest.raises(ResumeBlocked) as e:
        ensure_nothing_running(sweep)
    assert "42_1 (RUNNING)" in str(e.value) and "robustsweep cancel" in str(e.value) and "41" not in str(e.value)
    monkeypatch.setattr(jobs_mod, "query_states", lambda ids, timeout=20.0: {"41": ("CANCELLED", ""),
                                                                              "42_0": ("COMPLETED", ""),
                                                                              "42_1": ("FAILED", "")})
    ensure_nothing_running(sweep)  # all over: no error


def test_status_classifies_trials(sweep, monkeypatch):
    from robustsweep.sweep import status as status_mod

    t = sweep.trials
    _write(sweep, t[0], "ok")
    _write(sweep, t[1], "failed", "ValueError: NaN loss")

    def marker(trial, **info):
        p = marker_path(sweep.results, sweep.name, trial["trial_id"])
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"trial_id": trial["trial_id"], **info}))

    marker(t[2], host="n1", pid=1, slurm_job="50")  # its job still runs -> running
    marker(t[3], host="n1", pid=1, slurm_job="49")  # its job was cancelled -> failed (interrupted)
    append_record(sweep.dir, JobRecord("49", "ray", sweep.name, str(sweep.dir / "slurm/logs/%j"),
                                       [x["trial_id"] for x in t]))
    append_record(sweep.dir, JobRecord("50", "ray", sweep.name, str(sweep.dir / "slurm/logs/%j"),
                                       [x["trial_id"] for x in t[2:]], command="resume"))
    monkeypatch.setattr(jobs_mod, "query_states",
                        lambda ids, timeout=20.0: {"49": ("CANCELLED", "vm"), "50": ("RUNNING", "vm")})
    st = status_mod.sweep_status(sweep.results, sweep.name)
    by_id = {x.trial_id: x for x in st.trials}
    assert by_id[t[0]["trial_id"]].state == "done"
    assert by_id[t[1]["trial_id"]].state == "failed" and by_id[t[1]["trial_id"]].error == "ValueError: NaN loss"
    assert by_id[t[2]["trial_id"]].state == "running"
    assert by_id[t[3]["trial_id"]].state == "failed" and "CANCELLED" in by_id[t[3]["trial_id"]].error
    assert by_id[t[4]["trial_id"]].state == "pending"
    assert by_id[t[4]["trial_id"]].job == "50"  # the latest submission that carries it
    assert by_id[t[1]["trial_id"]].job_log.endswith("slurm/logs/49/49_0_log.out")
    assert [(j.task_id, j.state) for j in st.jobs] == [("49", "CANCELLED"), ("50", "RUNNING")]
    d = st.to_dict()
    assert d["counts"] == {"done": 1, "running": 1, "failed": 2, "pending": 1}


def test_local_marker_of_dead_process_is_interrupted(sweep):
    from robustsweep.sweep.status import marker_alive

    dead = {"host": socket.gethostname(), "pid": 2**22 + 12345, "slurm_job": None}
    alive = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job": None}
    assert marker_alive(dead, {})[0] is False and "gone" in marker_alive(dead, {})[1]
    assert marker_alive(alive, {}) == (True, "")


def test_running_marker_is_removed_even_on_error(sweep):
    tid = sweep.trials[0]["trial_id"]
    with pytest.raises(RuntimeError):
        with running_marker(sweep.results, sweep.name, tid) as p:
            info = json.loads(p.read_text())
            assert info["pid"] == os.getpid() and info["trial_id"] == tid
            raise RuntimeError("trial crashed")
    assert not marker_path(sweep.results, sweep.name, tid).exists()


def test_lost_trial_recorded_as_failed_but_never_overwrites(sweep):
    t0, t1 = sweep.trials[:2]
    _write(sweep, t0, "ok")
    assert record_lost_trial(t0, sweep.results, sweep.name, "died") is False
    assert record_lost_trial(t1, sweep.results, sweep.name, "trial process died: SIGKILL") is True
    st = trial_status(sweep.results, sweep.name)
    assert st[t0["trial_id"]]["status"] == "ok"
    assert st[t1["trial_id"]] == {"status": "failed", "error": "trial process died: SIGKILL"}
    assert t1["trial_id"] in {x["trial_id"] for x in plan_resume(sweep).failed}


def test_summarize_tune_error():
    text = ("Failure # 1 (occurred at 2026-01-01)\nThe actor died unexpectedly before finishing this task.\n"
            "\tpid: 15994\nThe actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR\n")
    s = summarize_tune_error(text)
    assert s.startswith("trial process died without writing a result: The actor died unexpectedly")
    assert "SYSTEM_ERROR" in s
    assert "killed" in summarize_tune_error(None)


def test_tune_state_restorable_only_if_ours_and_covering(sweep, tmp_path):
    exp = sweep.dir / "tune"
    ok, why = restorable(exp, {"a"})
    assert not ok and "no Tune state" in why
    exp.mkdir()
    (exp / "robustsweep.json").write_text(json.dumps({"trainable": "robustsweep_trial", "trial_ids": ["a"]}))
    ok, why = restorable(exp, {"a", "b"})
    assert not ok and "not part of the saved Tune experiment" in why
    ok, why = restorable(exp, {"a"})
    assert not ok and "missing or incomplete" in why  # no tuner.pkl
    (exp / "robustsweep.json").write_text(json.dumps({"trainable": "_trainable", "trial_ids": ["a"]}))
    assert not restorable(exp, {"a"})[0]
