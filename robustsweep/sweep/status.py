"""``robustsweep status SWEEP``: where a sweep stands, from the store, the running markers and the scheduler.

A trial is
  done     -- its result says ok (the store is the truth: its index entry or a compacted part, see store/parquet.py;
              no Parquet file is opened for a done trial, so status answers in a second for 10,000 trials);
  running  -- a process announced it (``<sweep>/running/<id>.json``) and that process (or its job) is still alive;
  failed   -- its Parquet file says failed, or it was announced but its job/process is gone (interrupted);
  pending  -- none of the above (never started).
A trial Tune retried after an infrastructure failure (node lost, worker killed, out of memory; see
``resources.max_retries``) also says so -- "retried 1×: node lost" -- from its retry record
(``<sweep>/retries/<id>.json``, written by the driver).
Job states come from the backends that submitted the sweep's jobs (:mod:`robustsweep.sweep.jobs`; SLURM's from its
queue, then its accounting: :mod:`robustsweep.runners.slurm.records`).
"""
from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, TextIO

from robustsweep.store.markers import marker_job, marker_liveness, read_markers, read_retries
from robustsweep.store.parquet import trial_status
from robustsweep.sweep.folder import TrialList, load_trial_list
from robustsweep.sweep.jobs import UNKNOWN, Scheduler, SubmittedJobs, schedulers, submitted_jobs


@dataclass
class TrialState:
    trial_id: str
    state: str  # done | running | failed | pending
    label: str
    error: str | None = None
    log: str | None = None  # the trial's own log
    job: str | None = None  # the scheduler's task that ran / runs it
    job_log: str | None = None  # that task's stdout
    retries: int = 0  # infrastructure failures Tune retried (node lost, worker killed, out of memory)
    retry_reason: str | None = None  # the last one's reason

    @property
    def retry_text(self) -> str:
        """``retried 2×: node lost`` ('' when never retried)."""
        return f"retried {self.retries}×: {self.retry_reason}" if self.retries else ""


@dataclass
class JobState:
    task_id: str
    mode: str
    state: str
    nodes: str
    log: str
    command: str
    backend: str = ""  # the backend that submitted it


@dataclass
class SweepStatus:
    sweep: str
    dir: str
    jobs: list[JobState] = field(default_factory=list)
    trials: list[TrialState] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)

    def to_dict(self) -> dict[str, Any]:
        """``asdict(self)`` plus the counts; the states are flat (scalar fields), so one level of copying gives the
        same dict (``asdict``'s recursive copy took ~1 s at 100,000 trials)."""
        d = {"sweep": self.sweep, "dir": self.dir, "jobs": [_flat(j) for j in self.jobs],
             "trials": [_flat(t) for t in self.trials]}
        d["counts"] = {s: self.count(s) for s in ("done", "running", "failed", "pending")}
        return d


def _flat(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def marker_alive(marker: dict[str, Any], submitted: Mapping[str, SubmittedJobs],
                 scheds: list[Scheduler] | None = None) -> tuple[bool, str]:
    """Is the process that announced a trial still there? (alive, why-not text). A marker of a scheduler's job is
    judged by that job's state (``submitted``: what :func:`submitted_jobs` found), any other by its own contents."""
    scheds = schedulers() if scheds is None else scheds
    found = marker_job(marker, [s.name for s in scheds])
    if found:
        name, job = found
        sched = next(s for s in scheds if s.name == name)
        state = submitted[name].state_of(job) if name in submitted else UNKNOWN
        if sched.is_active(state):
            return True, ""
        if state == UNKNOWN and marker.get("host") != socket.gethostname():
            return True, ""  # the scheduler cannot tell us; do not call a possibly running trial failed
        return False, f"interrupted: its {sched.title} job {job} is {state} but the trial never wrote a result"
    alive, why = marker_liveness(marker)  # pid + start time here, heartbeat elsewhere (store/markers.py)
    return alive is not False, why


def _job_of_trials(submitted: Mapping[str, SubmittedJobs]) -> dict[str, tuple[str, str]]:
    """trial id -> (task id, its stdout) of the latest submission that included it."""
    out: dict[str, tuple[str, str]] = {}
    pairs = [(sub.scheduler, rec) for sub in submitted.values() for rec in sub.records]  # each file is in order
    if len(submitted) > 1:  # several backends submitted for this sweep: interleave their submissions by time
        pairs.sort(key=lambda p: p[1].submitted_at)
    for sched, rec in pairs:
        for task in sched.tasks(rec):  # one log path per task, not per trial (a ray job carries every trial)
            for tid in task.trial_ids:
                out[tid] = (task.task_id, task.log)
    return out


def _names(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as it:
            return {e.name for e in it}
    except FileNotFoundError:
        return set()


def sweep_status(results: str | Path, name: str) -> SweepStatus:
    sw: TrialList = load_trial_list(results, name)  # ids and labels only: no configs, no spec (sweep/folder.py)
    store = trial_status(sw.results, sw.name)
    markers = read_markers(sw.results, sw.name)
    retries = read_retries(sw.results, sw.name)
    scheds = schedulers()
    names = [x.name for x in scheds]
    submitted = submitted_jobs(sw.dir)
    st = SweepStatus(sw.name, str(sw.dir))
    for name, sub in submitted.items():
        for rec in sub.records:
            for task in sub.scheduler.tasks(rec):
                state, nodes = sub.states.get(task.task_id, (UNKNOWN, ""))
                st.jobs.append(JobState(task.task_id, rec.mode, state, nodes, task.log, rec.command, name))
    job_of = _job_of_trials(submitted)
    log_dir = sw.dir / "logs"  # trial_log_path(); a string per trial, no Path (~0.3 s at 100,000 trials)
    logs, prefix = _names(log_dir), str(log_dir) + os.sep  # one listing instead of a stat per trial
    for tid, label in zip(sw.trial_ids, sw.labels):
        log = f"{tid}.log"
        ts = TrialState(tid, "pending", label, log=prefix + log if log in logs else None)
        if tid in job_of:
            ts.job, ts.job_log = job_of[tid]
        if tid in retries:
            ts.retries, ts.retry_reason = len(retries[tid]), str(retries[tid][-1].get("reason") or "?")
        s = store.get(tid)
        alive, why = marker_alive(markers[tid], submitted, scheds) if tid in markers else (False, "")
        if tid in markers and (found := marker_job(markers[tid], names)):
            ts.job = found[1]
        if s and s["status"] == "ok":
            ts.state = "done"
        elif alive:
            ts.state = "running"
        elif s:
            ts.state, ts.error = "failed", s.get("error") or f"result file is {s['status']}"
        elif tid in markers:
            ts.state, ts.error = "failed", why
        st.trials.append(ts)
    return st


def print_status(st: SweepStatus, out: TextIO | None = None, results: str | None = None) -> None:
    out = sys.stdout if out is None else out  # looked up when called (a default bound at import misses a redirected stdout)
    print(f"sweep {st.sweep} — {st.dir}", file=out)
    scheds = {s.name: s for s in schedulers()}
    if st.jobs:
        for name in dict.fromkeys(j.backend for j in st.jobs):  # one block per backend, in order of appearance
            print(f"{scheds[name].title if name in scheds else name} jobs:", file=out)
            for j in (j for j in st.jobs if j.backend == name):
                print(f"  {j.task_id:<12} {j.mode:<5} {j.state:<11} {j.nodes or '-':<10} {j.command:<7} {j.log}",
                      file=out)
    else:
        for s in scheds.values():
            print(f"{s.title} jobs: none submitted for this sweep", file=out)
    n = len(st.trials)
    print(f"trials: {n} total — {st.count('done')} done, {st.count('running')} running, "
          f"{st.count('failed')} failed, {st.count('pending')} pending", file=out)
    running = [t for t in st.trials if t.state == "running"]
    for t in running:
        print(f"  running {t.trial_id}  {t.label}" + (f"  (job {t.job})" if t.job else "")
              + (f"  {t.retry_text}" if t.retries else ""), file=out)
    retried = [t for t in st.trials if t.retries and t.state == "done"]
    if retried:
        print("retried trials (infrastructure failures Tune retried; see each trial log):", file=out)
        for t in retried:
            print(f"  {t.trial_id}  {t.label}  {t.retry_text}, then {t.state}", file=out)
    failed = [t for t in st.trials if t.state == "failed"]
    if failed:
        print("failed trials:", file=out)
        for t in failed:
            print(f"  {t.trial_id}  {t.label}", file=out)
            print(f"    error:     {t.error}", file=out)
            if t.retries:
                print(f"    {t.retry_text}", file=out)
            if t.log:
                print(f"    trial log: {t.log}", file=out)
            if t.job_log:
                print(f"    job log:   {t.job_log}" + (f" (job {t.job})" if t.job else ""), file=out)
    if failed or st.count("pending"):
        active = any(j.backend in scheds and scheds[j.backend].is_active(j.state) for j in st.jobs) or running
        res = f" --results {results}" if results else ""
        if not active:
            print(f"next: robustsweep resume {st.sweep}{res}   (runs only the failed and pending trials)", file=out)


def print_json(st: SweepStatus, out: TextIO | None = None) -> None:
    """``json.dump(st.to_dict(), out, indent=1)``, byte for byte, at C speed for the strings (the standard encoder
    runs in pure Python when indenting: 7 s of ``status --json`` at 100,000 trials)."""
    out = sys.stdout if out is None else out
    out.write(_indented(st.to_dict(), "") + "\n")


_STR = encode_basestring_ascii  # what json.dump uses for str (ensure_ascii=True), in C


def _indented(o: Any, pad: str) -> str:
    """``json.dumps(o, indent=1)`` for dicts with str keys, lists and scalars (the shapes ``to_dict`` holds)."""
    if o.__class__ is str:
        return _STR(o)
    if o is None:
        return "null"
    if o.__class__ is int:  # not bool
        return int.__repr__(o)
    if isinstance(o, dict):
        inner = pad + " "
        items = ",\n".join(f"{inner}{_STR(k)}: {_indented(v, inner)}" for k, v in o.items())
        return f"{{\n{items}\n{pad}}}" if o else "{}"
    if isinstance(o, (list, tuple)):
        inner = pad + " "
        items = ",\n".join(inner + _indented(v, inner) for v in o)
        return f"[\n{items}\n{pad}]" if o else "[]"
    return json.dumps(o)  # bool, float (NaN / Infinity as json writes them), anything else json accepts
