"""Issue 36, ``robustsweep cancel SWEEP``: stops a sweep's queued / running jobs (through its backend: a scheduler
declared in a test file, and the real local SLURM) or its run on this machine; finished results stay, the trials
cut off show as pending (not failed), and ``resume`` runs exactly them."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest

from robustsweep import cli
from robustsweep.registry import BACKENDS
from robustsweep.runners.base import register_backend
from tests.runners.fake_scheduler import FakeScheduler, read_queue
from tests.runners.test_backend_plugin import spec_file  # noqa: F401
from tests.runners.test_slurm_e2e import (  # noqa: F401
    JOB_TIMEOUT_S,
    REPO,
    assert_exactly_once,
    records,
    rs,
    slurm_env,
    status_json,
    tiny_spec,
    wait_job_done,
    wait_until,
)


@pytest.fixture
def fake():
    register_backend(FakeScheduler)
    yield
    BACKENDS.unregister("fake")


def test_cancel_a_queued_job_of_a_plugin_scheduler(fake, spec_file, tmp_path, capsys):  # noqa: F811
    results = tmp_path / "results"
    assert cli.main(["submit", str(spec_file), "--backend", "fake", "--results", str(results), "--scale", "paper"]) == 0
    capsys.readouterr()
    assert cli.main(["resume", "plug", "--results", str(results)]) == 2
    assert "robustsweep cancel plug" in capsys.readouterr().err  # the hint names the command, not the scheduler's
    assert cli.main(["cancel", "plug", "--results", str(results), "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "cancelled FAKE job(s): 1" in out and "next: robustsweep resume plug" in out
    assert read_queue(results / "plug")["1"]["state"] == "CANCELLED"
    assert cli.main(["status", "plug", "--results", str(results), "--json"]) == 0
    assert '"pending": 3' in capsys.readouterr().out
    assert cli.main(["cancel", "plug", "--results", str(results)]) == 0
    assert "nothing is running" in capsys.readouterr().out
    assert cli.main(["resume", "plug", "--results", str(results)]) == 0  # nothing blocks it any more
    assert "resuming 3 of 3 trials" in capsys.readouterr().out


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
                PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")


def _start(argv: list[str], results, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robustsweep", *argv, "--results", str(results), "--cpus", "2",
                             "--max-concurrent", "1"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=_env(), cwd=REPO)


def _marker_since(running, t0: float, trials=None) -> bool:
    """A running marker written by this run, of a trial without a result file: the slow trial's (the fast one's
    marker lingers for a moment after its result is written, and cancelling then cuts nothing off)."""
    finished = {f.stem for f in trials.glob("*.parquet")} if trials is not None else set()
    for m in running.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):  # its trial may end meanwhile
            if m.stat().st_mtime >= t0 - 1 and m.stem not in finished:
                return True
    return False


def _cancel(results, sweep: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustsweep", "cancel", sweep, "--results", str(results)],
                          capture_output=True, text=True, env=_env(), cwd=REPO, timeout=180)


def test_cancel_a_local_run_and_its_resume_leaves_the_cut_off_trial_pending(tmp_path):
    """Cancelled twice: a fresh run, then the ``resume`` that restores its Tune state (which must not go on to a
    fresh Tune run for what the interrupted restore left)."""
    results, sweep = tmp_path / "results", "lcancel"
    # 5,000 epochs: on an idle machine 400 took ~12 s and finished before `cancel` (a fresh interpreter) reached it
    spec = tiny_spec(tmp_path, sweep, [1, 5000])
    trials, running = results / sweep / "trials", results / sweep / "running"
    done: dict[str, int] = {}
    for i, argv in enumerate((["run", str(spec)], ["resume", sweep])):
        log = tmp_path / f"run{i}.txt"
        t0 = time.time()
        p = _start(argv, results, log)
        try:
            wait_until(lambda t0=t0: list(trials.glob("*.parquet")) and _marker_since(running, t0, trials), 240,
                       "the fast trial's result and the slow one's marker (of this run)")
            done = done or {f.name: f.stat().st_mtime_ns for f in trials.glob("*.parquet")}
            res = _cancel(results, sweep)
            assert res.returncode == 0, res.stdout + res.stderr
            assert "stopped the run on this machine" in res.stdout, res.stdout
            assert "1 trial(s) cut off, now pending" in res.stdout, res.stdout
            p.wait(timeout=60)
            driver = log.read_text()
            assert "cancelled (robustsweep cancel)" in driver and "crashed or was killed" not in driver, driver
            assert not (results / sweep / "cancel-requested").exists()
        finally:
            if p.poll() is None:
                os.killpg(p.pid, 9)
        st = status_json(None, results, sweep)
        assert st["counts"] == {"done": 1, "running": 0, "failed": 0, "pending": 1}, st
    assert "nothing is running" in _cancel(results, sweep).stdout
    assert {f.name: f.stat().st_mtime_ns for f in trials.glob("*.parquet")} == done  # the finished one stays


@pytest.mark.slurm
def test_cancel_a_slurm_array_then_resume_exactly_once(slurm_env, tmp_path):  # noqa: F811
    results, sweep = tmp_path / "results", "scancelled"
    spec = tiny_spec(tmp_path, sweep, [1, 400])
    rs(slurm_env, "submit", str(spec), "--results", str(results), "--mode", "array", "--array-parallelism", "1",
       "--time", "15")
    (rec,) = records(results / sweep)
    trials, running = results / sweep / "trials", results / sweep / "running"
    wait_until(lambda: list(trials.glob("*.parquet")) and list(running.glob("*.json")), JOB_TIMEOUT_S,
               "the fast trial's result and the slow one's marker")
    done = {f.name: f.stat().st_mtime_ns for f in trials.glob("*.parquet")}
    t0 = time.monotonic()
    res = rs(slurm_env, "cancel", sweep, "--results", str(results))
    assert f"cancelled SLURM job(s): {rec['job_id']}" in res.stdout and "1 trial(s) cut off" in res.stdout
    assert time.monotonic() - t0 < 90
    st = status_json(slurm_env, results, sweep)
    assert st["counts"] == {"done": 1, "running": 0, "failed": 0, "pending": 1}, st
    assert "nothing is running" in rs(slurm_env, "cancel", sweep, "--results", str(results)).stdout
    res = rs(slurm_env, "resume", sweep, "--results", str(results), "--time", "15")
    assert "resuming 1 of 2 trials" in res.stdout
    assert wait_job_done(records(results / sweep)[-1]["job_id"]) == "COMPLETED"
    assert_exactly_once(results, sweep)
    assert {f.name: f.stat().st_mtime_ns for f in trials.glob("*.parquet") if f.name in done} == done
