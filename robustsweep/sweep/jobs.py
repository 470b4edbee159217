"""What robustsweep submitted to SLURM for a sweep, and what SLURM says about those jobs now.

Why our own record: ``status`` and ``resume`` run later, often from another shell, and must know which jobs
belong to a sweep, which trials each array task carries, and where the logs are. The record is one JSON line
per submission in ``<sweep>/slurm/jobs.jsonl`` (appended, never rewritten).

Why not only ``sacct``: clusters without accounting (and the local test cluster) have no working sacct, so the
state comes from ``squeue --states=all`` first (it knows running jobs and, for ``MinJobAge``, finished ones),
then ``sacct``, then what submitit left in the job folder (a result pickle means the task ended).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

JOBS_FILE = "jobs.jsonl"
ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                 "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}


@dataclass
class JobRecord:
    job_id: str  # the main SLURM job id (array tasks are <job_id>_<index>)
    mode: str  # "ray" | "array"
    sweep: str
    folder: str  # submitit's folder: logs and pickles
    trial_ids: list[str] = field(default_factory=list)  # array mode: trial of task i
    nodes: int = 1
    submitted_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())
    command: str = "submit"  # submit | resume | sbatch (slurm/sbatch_template.sh)
    log: str | None = None  # stdout of a plain-sbatch job (submitit jobs: derived from ``folder``)

    def task_ids(self) -> list[str]:
        """SLURM ids of the job's tasks: ``<id>_<i>`` for arrays, ``<id>`` otherwise."""
        if self.mode == "array" and len(self.trial_ids) > 1:
            return [f"{self.job_id}_{i}" for i in range(len(self.trial_ids))]
        return [self.job_id]

    def log_paths(self, task_id: str) -> tuple[Path, Path]:
        """(stdout, stderr) of the job's first SLURM task (rank 0 = the Ray head in ray mode)."""
        if self.log:
            return Path(self.log), Path(self.log)
        folder = Path(self.folder.replace("%j", task_id))  # submitit puts array task 12_3 in .../12_3/
        stem = f"{task_id}_0_log"
        return folder / f"{stem}.out", folder / f"{stem}.err"


def jobs_file(sweep_dir: Path) -> Path:
    return sweep_dir / "slurm" / JOBS_FILE


def append_record(sweep_dir: Path, rec: JobRecord) -> None:
    path = jobs_file(sweep_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(asdict(rec)) + "\n")


def read_records(sweep_dir: Path) -> list[JobRecord]:
    path = jobs_file(sweep_dir)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(JobRecord(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


# ------------------------------------------------------------------------------------------ job states
def parse_squeue(text: str) -> dict[str, tuple[str, str]]:
    """``squeue -o '%i|%T|%N'`` lines -> {job id: (state, nodes)}; pending array ranges ``12_[3-5%2]`` expand."""
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 2 or not parts[0]:
            continue
        jid, state = parts[0], parts[1].split()[0] if parts[1] else "UNKNOWN"
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


def submitit_outcome(rec: JobRecord, task_id: str) -> str | None:
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


def job_states(records: list[JobRecord]) -> dict[str, tuple[str, str]]:
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
                out[tid] = (submitit_outcome(rec, tid) or "UNKNOWN", "")
    return out


def active_jobs(records: list[JobRecord], states: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """Task ids still queued or running (``resume`` must not start a second copy of them)."""
    states = job_states(records) if states is None else states
    return [tid for tid, (state, _) in states.items() if state in ACTIVE_STATES]


def to_jsonable(obj: Any) -> Any:
    return asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj


def wait_until_idle(sweep_dirs: list[Path], poll_s: float = 5.0) -> None:
    """Block until no job of any of these sweeps is queued or running (``--wait`` of submit and reproduce)."""
    import time

    while any(active_jobs(read_records(d)) for d in sweep_dirs):
        time.sleep(poll_s)
