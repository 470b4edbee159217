"""What robustsweep submitted to SLURM for a sweep, and what SLURM says about those jobs now.

The record is the generic one (:mod:`robustsweep.sweep.jobs`, in ``<sweep>/slurm/jobs.jsonl``); what is SLURM's
own lives here: array tasks are ``<job>_<index>``, submitit writes a task's logs to ``<folder>/<task>/``.

Why not only ``sacct``: clusters without accounting (and the local test cluster) have no working sacct, so the
state comes from ``squeue --states=all`` first (it knows running jobs and, for ``MinJobAge``, finished ones),
then ``sacct``, then what submitit left in the job folder (a result pickle means the task ended).
Light on purpose: ``status`` on a login node imports this (no submitit, no pydantic).
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from robustsweep.errors import ClusterError
from robustsweep.sweep import jobs
from robustsweep.sweep.jobs import UNKNOWN, JobRecord

NAME = "slurm"  # the backend's registry name: the records live in <sweep>/slurm/
ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                 "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}


@dataclass
class SlurmJob(JobRecord):
    """A SLURM submission: ``job_id`` is the main job id, ``mode`` "ray" | "array" (array: task i runs the trials
    ``trial_ids[i*k:(i+1)*k]``, k = ``trials_per_task``)."""

    trials_per_task: int = 1  # array mode: trials one task runs, one after the other

    def chunks(self) -> list[tuple[str, ...]]:
        """The trials of each task, in task order (one chunk: a ray job, or an array of one task)."""
        if self.mode != "array":
            return [tuple(self.trial_ids)]
        k = max(1, self.trials_per_task)
        return [tuple(self.trial_ids[i:i + k]) for i in range(0, len(self.trial_ids), k)] or [()]

    def task_ids(self) -> list[str]:
        """SLURM ids of the job's tasks: ``<id>_<i>`` for arrays of several tasks, ``<id>`` otherwise (submitit
        submits a one-task array as a plain job)."""
        n = len(self.chunks())
        if n > 1:
            return [f"{self.job_id}_{i}" for i in range(n)]
        return [self.job_id]

    def log_paths(self, task_id: str) -> tuple[Path, Path]:
        """(stdout, stderr) of the job's first SLURM task (rank 0 = the Ray head in ray mode)."""
        if self.log:
            return Path(self.log), Path(self.log)
        folder = Path(self.folder.replace("%j", task_id))  # submitit puts array task 12_3 in .../12_3/
        stem = f"{task_id}_0_log"
        return folder / f"{stem}.out", folder / f"{stem}.err"


def append_record(sweep_dir: Path, rec: JobRecord) -> None:
    jobs.append_record(sweep_dir, NAME, rec)


def read_records(sweep_dir: Path) -> list[SlurmJob]:
    return jobs.read_records(sweep_dir, NAME, SlurmJob)


def scancel(job_ids: list[str], timeout: float = 30.0) -> None:
    """``scancel`` these jobs (an array's main id cancels all its tasks); RuntimeError with scancel's message when
    it refuses."""
    if not job_ids:
        return
    if not shutil.which("scancel"):
        raise ClusterError("scancel is not on PATH: run `robustsweep cancel` where the SLURM commands are")
    res = subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise ClusterError(f"scancel {' '.join(job_ids)} failed: {res.stderr.strip() or res.stdout.strip()}")


# ------------------------------------------------------------------------------------------ job states
def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """``squeue -o '%i|%T|%N'`` lines -> {job id: (state, nodes)}; pending array ranges ``12_[3-5%2]`` expand."""
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        jid, state = parts[0], parts[1].split()[0] if parts[1] else UNKNOWN
        nodes = parts[2] if len(parts) > 2 else ""
        if "_[" in jid:
            main, rng = jid.split("_[", 1)
            rng = rng.rstrip("]").split("%")[0]
            for chunk in rng.split(","):
                lo, _, hi = chunk.partition("-")
                for i in range(int(lo), int(hi or lo) + 1):
                    out[f"{main}_{i}"] = (state, nodes)
        else:
            out[jid] = (state, nodes)
    return out


def query_states(job_ids: list[str], timeout: float = 20.0) -> dict[str, tuple[str, str]]:
    """{task id: (state, nodes)} for the given main job ids, from squeue, then sacct for what squeue forgot."""
    if not job_ids:
        return {}
    states: dict[str, tuple[str, str]] = {}
    if shutil.which("squeue"):
        for jid in job_ids:  # one call per job: squeue fails as a whole on an id it has forgotten
            try:
                res = subprocess.run(["squeue", "--noheader", "--states=all", "-o", "%i|%T|%N", "-j", jid],
                                     capture_output=True, text=True, timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if res.returncode == 0:
                states.update(parse_squeue(res.stdout))
    forgotten = [j for j in job_ids if not any(k == j or k.startswith(j + "_") for k in states)]
    if forgotten and shutil.which("sacct"):
        try:
            res = subprocess.run(["sacct", "--noheader", "--parsable2", "-X", "-o", "JobID,State,NodeList",
                                  *[a for j in forgotten for a in ("-j", j)]],
                                 capture_output=True, text=True, timeout=timeout)
            if res.returncode == 0:
                for k, v in parse_squeue(res.stdout).items():
                    states.setdefault(k, v)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return states


def submitit_outcome(rec: SlurmJob, task_id: str) -> str | None:
    """'COMPLETED' / 'FAILED' from submitit's result pickle when SLURM has forgotten the job, else None."""
    import pickle

    out, _ = rec.log_paths(task_id)
    result = out.parent / f"{task_id}_0_result.pkl"
    if not result.exists():
        return None
    try:
        with open(result, "rb") as f:
            outcome, _value = pickle.load(f)
    except Exception:
        return None
    return "COMPLETED" if outcome == "success" else "FAILED"


def job_states(records: Sequence[SlurmJob]) -> dict[str, tuple[str, str]]:
    """State of every task of every record: SLURM's view, else submitit's, else UNKNOWN."""
    states = query_states([r.job_id for r in records])
    out: dict[str, tuple[str, str]] = {}
    for rec in records:
        for tid in rec.task_ids():
            if tid in states:
                out[tid] = states[tid]
            elif rec.job_id in states and tid != rec.job_id:
                out[tid] = states[rec.job_id]
            else:
                out[tid] = (submitit_outcome(rec, tid) or UNKNOWN, "")
    return out


def active_jobs(records: Sequence[SlurmJob], states: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """Task ids still queued or running."""
    states = job_states(records) if states is None else states
    return [tid for tid, (state, _) in states.items() if state in ACTIVE_STATES]
