"""``robustsweep cancel SWEEP``: stop whatever of a sweep still runs, keep what finished, leave the rest to ``resume``.

Two kinds of run can be stopped:

- the jobs a scheduler backend recorded for the sweep (``<sweep>/<backend>/jobs.jsonl``) that it still calls queued
  or running: the backend cancels them (:meth:`robustsweep.runners.base.Backend.cancel`; SLURM: ``scancel``);
- a run on this machine (``robustsweep run`` / ``resume --backend local``), found through the running markers of its
  trials (:mod:`robustsweep.store.markers`: trial pid, driver pid, start times): its driver gets what Ctrl-C sends
  (SIGINT, to its process group when it leads one), then SIGTERM and SIGKILL if it does not stop in time.

Once they are gone, the running markers of the trials they cut off are removed: those trials have no result file,
so ``status`` shows them pending (never failed) and ``resume`` runs exactly them. Finished results are not touched.
A run on another host (a live heartbeat, no job the sweep recorded) cannot be stopped from here: it is named.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from robustsweep.store.markers import marker_job, marker_liveness, marker_path, process_start, read_markers
from robustsweep.store.parquet import trial_status
from robustsweep.sweep.jobs import schedulers, submitted_jobs

#: ``<sweep>/cancel-requested``: written before a local run's driver is signalled, so that it starts nothing more
#: (a resumed run would otherwise start a fresh Tune run for what the interrupted restore left) and calls the trials
#: it cut off cancelled, not failed; removed once the run is gone
REQUEST_FILE = "cancel-requested"


def cancel_requested(sweep_dir: str | Path, since: float) -> bool:
    """Has ``robustsweep cancel`` asked this sweep's local run (started at ``since``, a time.time()) to stop?"""
    try:
        return (Path(sweep_dir) / REQUEST_FILE).stat().st_mtime >= since - 1.0
    except OSError:
        return False


@dataclass
class Cancelled:
    """What :func:`cancel_sweep` did."""

    jobs: dict[str, list[str]] = field(default_factory=dict)  # scheduler title -> job ids it cancelled
    pids: list[int] = field(default_factory=list)  # local processes signalled
    trials: list[str] = field(default_factory=list)  # trials cut off (now pending)
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # host -> trials running there, not stopped
    still_active: list[str] = field(default_factory=list)  # jobs / pids still there after the timeout

    @property
    def nothing(self) -> bool:
        return not (self.jobs or self.pids or self.elsewhere)


def _alive(pid: int, start: str | None) -> bool:
    """The same process (pid and start time) is still there, and not a zombie waiting for its parent."""
    now = process_start(pid)
    if now is None or (start not in (None, "?") and now not in ("?", start)):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _local_runs(sweep_dir: Path, results: str | Path, name: str, recorded: dict[str, set[str]],
                job_of: dict[str, object]) -> tuple[dict[int, str | None], dict[str, list[str]], list[str]]:
    """({pid to stop: its start time}, {other host: its live trials}, the trials of the local runs)."""
    names = [s.name for s in schedulers()]
    here = socket.gethostname()
    stop: dict[int, str | None] = {}
    elsewhere: dict[str, list[str]] = {}
    trials: list[str] = []
    for tid, m in read_markers(results, name).items():
        found = marker_job(m, names)
        if found and found[0] in recorded and (found[1] in recorded[found[0]]
                                               or job_of[found[0]](found[1]) in recorded[found[0]]):
            continue  # a job the sweep recorded: its scheduler cancels it
        if not marker_liveness(m)[0]:
            continue
        if m.get("host") != here:
            elsewhere.setdefault(str(m.get("host")), []).append(tid)
            continue
        trials.append(tid)
        if m.get("driver_pid"):
            stop[int(m["driver_pid"])] = m.get("driver_start")
        else:
            stop[int(m["pid"])] = m.get("pid_start")
    return stop, elsewhere, trials


def _signal(pid: int, sig: int) -> None:
    """``sig`` to ``pid``'s process group when it leads one (what Ctrl-C in its shell does), else to ``pid``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid and os.getpgid(pid) != os.getpgid(0):
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _wait(cond, timeout: float, poll: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def cancel_sweep(results: str | Path, name: str, sweep_dir: Path, timeout: float = 60.0,
                 grace: float = 20.0) -> Cancelled:
    """Stop the sweep's active jobs and local runs, wait (``timeout``) until they are gone, then clear the running
    markers of the trials they cut off. ``grace``: seconds a local driver gets after SIGINT before SIGTERM."""
    out = Cancelled()
    submitted = submitted_jobs(sweep_dir)
    markers_before = read_markers(results, name)
    stopped_jobs: dict[str, set[str]] = {}  # scheduler name -> the jobs it cancelled
    for n, sub in submitted.items():
        if active := sub.active():
            ids = sorted({sub.scheduler.job_of(t) for t in active})
            sub.scheduler.cancel(ids, sub.records)  # type: ignore[attr-defined]  # every registered backend is a Backend
            out.jobs[sub.scheduler.title] = ids
            stopped_jobs[n] = set(ids)
    recorded = {n: sub.recorded() for n, sub in submitted.items()}
    job_of = {n: sub.scheduler.job_of for n, sub in submitted.items()}
    stop, out.elsewhere, local_trials = _local_runs(sweep_dir, results, name, recorded, job_of)
    out.pids = sorted(stop)
    request = Path(sweep_dir) / REQUEST_FILE
    if stop:
        request.write_text(json.dumps({"at": dt.datetime.now(dt.timezone.utc).isoformat(), "pids": out.pids}))
    for pid in stop:
        _signal(pid, signal.SIGINT)
    if out.nothing:
        return out

    def procs_left() -> list[int]:
        return [p for p, start in stop.items() if _alive(p, start)]

    def jobs_left() -> list[str]:
        return [t for sub in submitted_jobs(sweep_dir).values() for t in sub.active()]

    if not _wait(lambda: not procs_left(), grace):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in procs_left():
                _signal(pid, sig)
            if _wait(lambda: not procs_left(), 10.0):
                break
    _wait(lambda: not jobs_left(), timeout)
    out.still_active = [*jobs_left(), *map(str, procs_left())]
    if out.still_active:
        return out  # their trials may still write: leave their markers
    with contextlib.suppress(FileNotFoundError):
        request.unlink()
    # the trials cut off: announced by a stopped job or process, no ok result (their markers go: pending again)
    names = [s.name for s in schedulers()]
    done = {t for t, s in trial_status(results, name).items() if s["status"] == "ok"}
    for tid, m in {**markers_before, **read_markers(results, name)}.items():
        found = marker_job(m, names)
        ours = tid in local_trials or (found is not None and found[0] in stopped_jobs
                                       and job_of[found[0]](found[1]) in stopped_jobs[found[0]])
        if not ours:
            continue
        if tid not in done:
            out.trials.append(tid)
        with contextlib.suppress(FileNotFoundError):
            marker_path(results, name, tid).unlink()
    out.trials.sort()
    return out
