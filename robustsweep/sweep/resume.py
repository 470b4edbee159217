"""``robustsweep resume SWEEP``: run only the trials that failed or never ran, here or through a scheduler.

Exactly-once rests on three things: the Parquet files keyed by trial config hash decide what is left
(:meth:`Sweep.pending`); resume refuses to start while a job of the sweep is still queued or running (two
copies of one trial would otherwise race); and every runner re-checks the store before running a trial.
"""
from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Any

from robustsweep.errors import ClusterError
from robustsweep.store.markers import marker_job, marker_liveness, marker_path, read_markers
from robustsweep.store.parquet import trial_status
from robustsweep.sweep.folder import Sweep
from robustsweep.sweep.jobs import schedulers, submitted_jobs


class ResumeBlocked(ClusterError):
    """Something of this sweep still runs; the message says what and how to stop it."""


@dataclass
class ResumePlan:
    failed: list[dict[str, Any]]  # have a failed/unreadable result file
    missing: list[dict[str, Any]]  # no result file at all (never ran, or killed before writing)

    @property
    def trials(self) -> list[dict[str, Any]]:
        return self.failed + self.missing


def plan_resume(sweep: Sweep) -> ResumePlan:
    """Split the trials without an ``ok`` result into failed and missing (order: the sweep's order)."""
    store = trial_status(sweep.results, sweep.name)
    failed, missing = [], []
    for t in sweep.trials:
        s = store.get(t["trial_id"])
        if s is None:
            missing.append(t)
        elif s["status"] != "ok":
            failed.append(t)
    return ResumePlan(failed, missing)


def ensure_nothing_running(sweep: Sweep) -> None:
    """Raise ResumeBlocked if a scheduler's job of this sweep is active or a local run of it is alive."""
    submitted = submitted_jobs(sweep.dir)
    for sub in submitted.values():
        if active := sub.active():
            listing = ", ".join(f"{t} ({sub.states[t][0]})" for t in active)
            ids = sorted({sub.scheduler.job_of(t) for t in active})
            raise ResumeBlocked(f"sweep {sweep.name} still has {sub.scheduler.title} job(s) queued or running: "
                                f"{listing}. Wait for them (robustsweep status {sweep.name}) or cancel them "
                                f"({sub.scheduler.cancel_hint(ids)}), then resume")
    # a local run (no scheduler job): on this host its trial and driver processes must be alive (a killed driver is
    # recognised at once); on another host its heartbeat must be fresh (a live run there still blocks)
    # A marker of a job this sweep recorded is judged by that job's state (above). One whose job the sweep never
    # recorded (`robustsweep run` inside a user's own sbatch / srun) has no state here: it is judged like a local
    # run, so a live one blocks instead of being ignored and then deleted by clear_stale_markers.
    recorded = {name: sub.recorded() for name, sub in submitted.items()}
    names = [s.name for s in schedulers()]
    alive: dict[str, list[str]] = {}
    for tid, m in read_markers(sweep.results, sweep.name).items():
        found = marker_job(m, names)
        if found and found[0] in recorded:
            name, job = found
            if job in recorded[name] or submitted[name].scheduler.job_of(job) in recorded[name]:
                continue
        if marker_liveness(m)[0]:
            alive.setdefault(str(m.get("host")), []).append(tid)
    for host, tids in alive.items():
        where = "on this machine" if host == socket.gethostname() else f"on {host}"
        raise ResumeBlocked(f"sweep {sweep.name} is still running {where} ({len(tids)} trial(s) in progress, e.g. "
                            f"{tids[0]}); wait for that run to finish or stop it, then resume")


def clear_stale_markers(sweep: Sweep) -> int:
    """Remove running-markers of interrupted trials (they are about to be rerun)."""
    n = 0
    for tid in read_markers(sweep.results, sweep.name):
        with contextlib.suppress(FileNotFoundError):
            marker_path(sweep.results, sweep.name, tid).unlink()
            n += 1
    return n
