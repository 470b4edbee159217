"""What a scheduler backend submitted for a sweep, and what the scheduler says about those jobs now.

Why our own record: ``status`` and ``resume`` run later, often from another shell, and must know which jobs
belong to a sweep, which trials each task carries, and where the logs are. The record is one JSON line per
submission in ``<sweep>/<backend>/jobs.jsonl`` (appended, never rewritten; ``slurm/jobs.jsonl`` for SLURM).

Why a protocol here and the schedulers elsewhere: this layer must stay free of any scheduler (and of torch and
Ray: a login node's ``status`` imports it), so it asks the backends found in the registry
(:data:`robustsweep.registry.BACKENDS`, declared in ``robustsweep/runners/backends/``) through
:class:`Scheduler`. Nothing here knows what SLURM is.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

JOBS_FILE = "jobs.jsonl"
UNKNOWN = "UNKNOWN"  # the state of a task its scheduler can no longer tell


@dataclass
class JobRecord:
    job_id: str  # the scheduler's id of the job (its tasks' ids are the backend's business: Scheduler.tasks)
    mode: str  # the backend's flavour of job (SLURM: "ray" | "array")
    sweep: str
    folder: str  # where the job's logs are
    trial_ids: list[str] = field(default_factory=list)  # the trials it carries, in task order
    nodes: int = 1
    submitted_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())
    command: str = "submit"  # submit | resume | reproduce | sbatch (slurm/sbatch_template.sh)
    log: str | None = None  # stdout of a job whose backend does not derive it from ``folder``


@dataclass(frozen=True)
class Task:
    """One thing the scheduler runs and reports a state for: a whole job, or one task of a job array."""

    task_id: str
    log: str  # its stdout
    trial_ids: tuple[str, ...]  # the trials it carries


class Scheduler(Protocol):
    """What ``status``, ``resume`` and ``--wait`` ask of a backend that submits jobs (``Backend.submits``);
    implemented by :class:`robustsweep.runners.base.Backend`."""

    name: str  # registry name; also the folder of its records and the running markers' ``<name>_job`` key
    title: str  # how messages name its jobs ("SLURM jobs:")

    def read_records(self, sweep_dir: Path) -> Sequence[JobRecord]: ...

    def tasks(self, rec: JobRecord) -> list[Task]: ...

    def states(self, records: Sequence[JobRecord]) -> dict[str, tuple[str, str]]:
        """{task id: (state, nodes)} for every task of these records (UNKNOWN when the scheduler cannot tell)."""
        ...

    def is_active(self, state: str) -> bool:
        """Queued or running: ``resume`` must not start a second copy of its trials."""
        ...

    def job_of(self, task_id: str) -> str:
        """The job a task id belongs to (SLURM: ``12_3`` -> ``12``)."""
        ...

    def cancel_hint(self, job_ids: list[str]) -> str:
        """The command that cancels these jobs, for messages (SLURM's cancel command and the ids)."""
        ...


def schedulers() -> list[Scheduler]:
    """Every registered backend that submits jobs, in name order (found lazily: see the module docstring)."""
    from robustsweep.registry import BACKENDS

    return [b for b in (e.fn() for e in BACKENDS.entries()) if b.submits]


# ------------------------------------------------------------------------------------------ the record
def jobs_file(sweep_dir: Path, backend: str) -> Path:
    return Path(sweep_dir) / backend / JOBS_FILE


def append_record(sweep_dir: Path, backend: str, rec: JobRecord) -> None:
    path = jobs_file(sweep_dir, backend)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(asdict(rec)) + "\n")


R = TypeVar("R", bound=JobRecord)


def read_records(sweep_dir: Path, backend: str, cls: type[R] = JobRecord) -> list[R]:  # type: ignore[assignment]
    """The records of ``backend``'s submissions for this sweep, oldest first (unreadable lines skipped)."""
    path = jobs_file(sweep_dir, backend)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(cls(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


# ------------------------------------------------------------------------------------------ job states
@dataclass
class SubmittedJobs:
    """One scheduler's submissions for a sweep and the states of their tasks, queried once."""

    scheduler: Scheduler
    records: Sequence[JobRecord]
    states: dict[str, tuple[str, str]]

    def active(self) -> list[str]:
        """Task ids still queued or running."""
        return [tid for tid, (state, _) in self.states.items() if self.scheduler.is_active(state)]

    def state_of(self, job: str) -> str:
        """State of a task or job id (a running marker's): its own, else its job's, else UNKNOWN."""
        state = self.states.get(job) or self.states.get(self.scheduler.job_of(job))
        return state[0] if state else UNKNOWN

    def recorded(self) -> set[str]:
        """Every job and task id these records name."""
        return {j for r in self.records for j in (r.job_id, *(t.task_id for t in self.scheduler.tasks(r)))}


def submitted_jobs(sweep_dir: Path) -> dict[str, SubmittedJobs]:
    """Scheduler name -> its submissions for this sweep, for every scheduler that has any (no query otherwise)."""
    out = {}
    for s in schedulers():
        if records := s.read_records(Path(sweep_dir)):
            out[s.name] = SubmittedJobs(s, records, s.states(records))
    return out


def last_submitted(sweep_dir: Path) -> str | None:
    """The scheduler of the sweep's latest submission (``resume`` goes back to it), None when never submitted."""
    latest = [(max(r.submitted_at for r in recs), s.name) for s in schedulers() if (recs := s.read_records(sweep_dir))]
    return max(latest)[1] if latest else None


def to_jsonable(obj: Any) -> Any:
    return asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj


def wait_until_idle(sweep_dirs: list[Path], poll_s: float = 5.0) -> None:
    """Block until no job of any of these sweeps is queued or running (``--wait`` of submit and reproduce)."""
    import time

    while any(sub.active() for d in sweep_dirs for sub in submitted_jobs(d).values()):
        time.sleep(poll_s)
