"""Issue 16, part 5: running markers tell a dead run from a live one at once (pid + start time + driver on this host,
heartbeat on another), so ``resume`` right after a killed driver goes on, and a live run elsewhere still blocks."""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.store import markers
from robustsweep.store.markers import (
    DRIVER_ENV,
    driver_identity,
    marker_liveness,
    marker_path,
    process_start,
    read_markers,
    running_marker,
)
from robustsweep.sweep.folder import prepare_sweep
from robustsweep.sweep.resume import ResumeBlocked, ensure_nothing_running

HOST = socket.gethostname()
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def me() -> dict:
    return {"host": HOST, "pid": os.getpid(), "pid_start": process_start(os.getpid())}


def test_this_host_pid_driver_and_pid_reuse():
    assert marker_liveness(me()) == (True, "")
    pid = dead_pid()
    alive, why = marker_liveness({"host": HOST, "pid": pid})
    assert alive is False and f"process {pid}" in why
    # the trial process lives on (a Ray worker outliving its driver) but the driver that launched it is gone
    alive, why = marker_liveness(me() | {"driver_pid": pid, "driver_start": "123"})
    assert alive is False and f"driver {pid}" in why
    # same pid, another start time: the pid was recycled by an unrelated process
    assert marker_liveness(me() | {"pid_start": "1"})[0] is False
    pid_, _, start = driver_identity().partition(":")
    assert marker_liveness(me() | {"driver_pid": int(pid_), "driver_start": start})[0] is True


def test_other_host_is_judged_by_its_heartbeat():
    base = {"host": "node-that-is-not-here", "pid": 1, "heartbeat_s": 15}
    fresh = base | {"heartbeat_at": (NOW - dt.timedelta(seconds=20)).isoformat()}
    stale = base | {"heartbeat_at": (NOW - dt.timedelta(seconds=15 * markers.STALE_AFTER + 1)).isoformat()}
    assert marker_liveness(fresh, now=NOW) == (True, "")
    alive, why = marker_liveness(stale, now=NOW)
    assert alive is False and "no heartbeat from node-that-is-not-here" in why
    assert marker_liveness(base, now=NOW) == (None, "")  # an old marker: cannot tell


def test_marker_contents_heartbeat_and_removal(tmp_path, monkeypatch):
    monkeypatch.setenv(DRIVER_ENV, "4242:99")
    beats = []
    real_write = markers._write
    monkeypatch.setattr(markers, "_write", lambda p, info: (beats.append(info["heartbeat_at"]), real_write(p, info)))
    with running_marker(tmp_path, "s", "abc", heartbeat_s=0.01) as path:
        for _ in range(20000):  # the thread refreshes the file (no timing asserted: we wait for it to happen)
            if len(beats) >= 3:
                break
            time.sleep(0.001)
        assert len(beats) >= 3
        m = json.loads(path.read_text())
        assert m["pid"] == os.getpid() and m["host"] == HOST and m["pid_start"] == process_start(os.getpid())
        assert m["driver_pid"] == 4242 and m["driver_start"] == "99" and m["heartbeat_s"] == 0.01
        assert read_markers(tmp_path, "s").keys() == {"abc"}
    assert not path.exists() and read_markers(tmp_path, "s") == {}
    assert beats == sorted(beats)
    with pytest.raises(ValueError, match="not a valid sweep name"):
        marker_path(tmp_path, "s", "../../x")


@pytest.fixture
def sweep(tmp_path):
    spec = spec_from_dict({"name": "m", "dataset": {"name": "digits"}, "model": {"name": "mlp"},
                           "attacks": [{"name": "fgsm", "eps": [0.1]}], "search": {"seed": {"grid": [0, 1]}}})
    return prepare_sweep(spec, tmp_path)


def put_marker(sw, tid: str, info: dict) -> None:
    p = marker_path(sw.results, sw.name, tid)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"trial_id": tid, "slurm_job": None} | info))


def test_resume_goes_on_after_a_killed_driver_and_waits_for_a_live_run(sweep):
    t0, t1 = (t["trial_id"] for t in sweep.trials)
    put_marker(sweep, t0, me() | {"driver_pid": dead_pid(), "driver_start": "1"})
    ensure_nothing_running(sweep)  # the killed driver's marker does not block
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    put_marker(sweep, t1, {"host": "other-node", "pid": 7, "heartbeat_at": now, "heartbeat_s": 15})
    with pytest.raises(ResumeBlocked, match="still running on other-node"):
        ensure_nothing_running(sweep)
    put_marker(sweep, t1, me())
    with pytest.raises(ResumeBlocked, match="still running on this machine"):
        ensure_nothing_running(sweep)


def test_a_live_marker_of_a_slurm_job_the_sweep_never_recorded_blocks(sweep):
    """`robustsweep run` inside a user's own sbatch: its markers carry SLURM_JOB_ID, but the sweep has no record of
    that job, so no job state can speak for it. A fresh heartbeat from another node blocks (it was ignored, and then
    deleted by clear_stale_markers); a stale one does not."""
    t0 = sweep.trials[0]["trial_id"]
    fresh = dt.datetime.now(dt.timezone.utc).isoformat()
    put_marker(sweep, t0, {"host": "other-node", "pid": 7, "heartbeat_at": fresh, "heartbeat_s": 15,
                           "slurm_job": "424242"})
    with pytest.raises(ResumeBlocked, match="still running on other-node"):
        ensure_nothing_running(sweep)
    stale = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()
    put_marker(sweep, t0, {"host": "other-node", "pid": 7, "heartbeat_at": stale, "heartbeat_s": 15,
                           "slurm_job": "424242"})
    age_file(sweep, t0, 3600)
    ensure_nothing_running(sweep)


def age_file(sw, tid: str, seconds: float) -> None:
    """Date the marker file's mtime back: what a heartbeat that stopped ``seconds`` ago leaves."""
    p = marker_path(sw.results, sw.name, tid)
    t = time.time() - seconds
    os.utime(p, (t, t))


def test_other_nodes_are_judged_by_the_marker_files_mtime_not_their_clock(sweep):
    """The heartbeat's own timestamp is the writing node's clock; the marker file's mtime is stamped where the file
    lives. A live run on a node whose clock is 90 s behind is alive (it was judged dead: resume started duplicates),
    and a dead run on a node 10 minutes ahead is dead at once (it blocked for those 10 minutes)."""
    t0 = sweep.trials[0]["trial_id"]
    behind = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=90)).isoformat()
    put_marker(sweep, t0, {"host": "other-node", "pid": 7, "heartbeat_at": behind, "heartbeat_s": 15})
    alive, why = marker_liveness(read_markers(sweep.results, sweep.name)[t0])
    assert alive is True, why
    ahead = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)).isoformat()
    put_marker(sweep, t0, {"host": "other-node", "pid": 7, "heartbeat_at": ahead, "heartbeat_s": 15})
    age_file(sweep, t0, 120)
    alive, why = marker_liveness(read_markers(sweep.results, sweep.name)[t0])
    assert alive is False and "no heartbeat from other-node for 120s" in why


def test_run_refuses_a_sweep_that_is_still_running(sweep, capsys):
    """A second `robustsweep run` of a live sweep would start its pending trials twice (and move the live run's Tune
    state aside): refused before anything starts, as submit and resume refuse it."""
    from robustsweep.cli import main

    spec_file = sweep.dir.parent / "spec.yaml"
    spec_file.write_text(json.dumps(sweep.spec.model_dump(mode="json", exclude_none=True)))
    put_marker(sweep, sweep.trials[0]["trial_id"], me())
    code = main(["run", str(spec_file), "--results", str(sweep.results), "--no-preflight"])
    assert code != 0
    assert "still running on this machine" in capsys.readouterr().err
    assert not (sweep.dir / "tune").exists()
