"""Warm trial actors through the real runner (``run_pending``: ``reuse_actors=True``, so one worker process runs
trial after trial and imports torch once): every trial still runs exactly once and writes its own file once, and a
trial whose process is SIGKILLed mid-trial -- in a process that already ran a neighbour -- is recorded as failed
while its neighbours keep their results; ``resume`` then reruns only that trial. No timing is asserted."""
from __future__ import annotations

import dataclasses
import os
import re
import signal

import pytest

from robustsweep.store.parquet import trial_path, trial_status
from tests.exactly_once import assert_exactly_once

SPEC = {"name": "reuse", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
        "train": {"epochs": 1}, "eval": {"n_eval": 20}, "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}],
        "search": {"seed": {"grid": [0, 1, 2, 3, 4]}}}
ROWS = 2  # one per eps value


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


def _killing_trial(config):
    """The runner's trainable, except that the trial named by ``runtime.extra["kill"]`` SIGKILLs its own worker
    process inside ``run_trial`` (after its log line and running marker, before its file), as the OOM killer
    would. The patch dies with the process, so no other trial sees it."""
    import robustsweep.core.trial as core_trial
    from robustsweep.runners.tune import robustsweep_trial

    if config["trial"]["trial_id"] == config["runtime"]["extra"].get("kill"):
        def dying(cfg, rt, log=None):
            if log:
                log("test: SIGKILL of this worker process")
            os.kill(os.getpid(), signal.SIGKILL)

        core_trial.run_trial = dying
    robustsweep_trial(config)


def _attempt_pids(sw, tid: str) -> list[int]:
    """The worker pid of each attempt of a trial, from its log's header lines (one per ``run_logged``)."""
    log = sw.log_path(tid)
    text = log.read_text() if log.exists() else ""
    return [int(m) for m in re.findall(rf"^\S+ trial {tid} on .* pid (\d+)", text, flags=re.M)]


def _file_identity(sw, tid: str) -> tuple[int, int]:
    st = trial_path(sw.results, sw.name, tid).stat()
    return st.st_ino, st.st_mtime_ns


def test_reused_actors_run_each_trial_once_and_a_killed_trial_spares_its_neighbours(tmp_path, monkeypatch, capsys):
    from robustsweep.config.spec import spec_from_dict
    from robustsweep.core.runtime import runtime_for
    from robustsweep.runners import tune as runner
    from robustsweep.sweep.folder import prepare_sweep

    sw = prepare_sweep(spec_from_dict(SPEC), tmp_path / "r")
    rt = runtime_for(sw)
    ids = [t["trial_id"] for t in sw.trials]
    victim = ids[2]  # 5 trials on 2 slots: the third starts in a warm process that already ran the first or second

    monkeypatch.setattr(runner, "robustsweep_trial", _killing_trial)
    first = runner.run_pending(sw, dataclasses.replace(rt, extra={"kill": victim}), cpus=2, max_retries=0)
    monkeypatch.undo()
    out = capsys.readouterr().out
    assert (first.total, first.ok, first.failed) == (5, 4, 1) and set(first.errors) == {victim}
    st = trial_status(sw.results, sw.name)
    assert st[victim]["status"] == "failed" and "died" in st[victim]["error"]
    assert all(st[i]["status"] == "ok" for i in ids if i != victim)
    pids = {i: _attempt_pids(sw, i) for i in ids}
    assert all(len(p) == 1 for p in pids.values()), pids  # each trial ran once
    assert len({p[0] for p in pids.values()}) < len(ids), pids  # actors were reused...
    assert pids[victim][0] in {pids[ids[0]][0], pids[ids[1]][0]}, pids  # ...the killed one among them
    assert out.count("FAIL ") == 1 and "[  5/5] done 4 · running 0 · failed 1" in out  # a progress line per trial
    before = {i: _file_identity(sw, i) for i in ids if i != victim}

    # resume: only the killed trial runs again; no neighbour is rerun or rewritten
    second = runner.run_pending(sw, rt, cpus=2, max_retries=0)
    out = capsys.readouterr().out
    assert (second.total, second.ok, second.failed) == (1, 1, 0)
    assert "[  1/1] done 1" in out
    assert {i: _file_identity(sw, i) for i in before} == before
    assert len(_attempt_pids(sw, victim)) == 2 and all(len(_attempt_pids(sw, i)) == 1 for i in before)
    assert_exactly_once(sw.dir, ids, ROWS)
