"""A throw-away scheduler backend, complete in this one file: what a new backend needs and nothing more.

``submit`` / ``resume`` with ``--backend fake`` queue the trials as one job (its record in ``<sweep>/fake/jobs.jsonl``,
its state in ``<sweep>/fake/queue.json``) and return at once, as a cluster scheduler would; :func:`drain` is the
scheduler's turn: it runs every queued job's trials in this process, inside the job (``FAKE_JOB_ID`` set, so the
running markers name it), and ``--fake-interrupt N`` makes a job die while running its N-th trial (its running
marker is left behind, the job ends CANCELLED), which is what ``status`` and ``resume`` must then make sense of.
It has its own section of the experiment file, ``fake:`` (:class:`FakeOptions`: ``interrupt``, the flag's default,
and ``node``, what ``status`` shows), which the spec accepts and validates because the backend is registered.
Registered by the tests with ``register_backend(FakeScheduler)`` (a backend module in runners/backends/ would carry
the decorator itself).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from robustsweep.runners.base import Backend, Outcome, Runner
from robustsweep.sweep.jobs import JobRecord, append_record, read_records

NAME = "fake"
JOB_ENV = "FAKE_JOB_ID"
ACTIVE = {"PENDING", "RUNNING"}


def queue_path(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / NAME / "queue.json"


def read_queue(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    path = queue_path(sweep_dir)
    return json.loads(path.read_text()) if path.exists() else {}


def write_queue(sweep_dir: Path, queue: dict[str, dict[str, Any]]) -> None:
    queue_path(sweep_dir).write_text(json.dumps(queue))


class FakeOptions(BaseModel):
    """The experiment file's ``fake:`` section."""

    model_config = ConfigDict(extra="forbid")
    interrupt: int | None = Field(None, ge=1)  # the job dies while running its N-th trial; --fake-interrupt wins
    node: str = "fakenode"  # where the pretend cluster runs the job (status shows it)


@dataclass
class FakeRunner:
    interrupt: int | None = None  # the job dies while running its N-th trial (1-based)
    node: str = "fakenode"
    name: str = NAME

    def run(self, sweep: Any, trials: list[dict[str, Any]], runtime: Any, *, restart_errored: bool = False,
            command: str = "submit") -> Outcome:
        if not trials:
            return Outcome()
        job_id = str(len(read_records(sweep.dir, NAME)) + 1)
        rec = JobRecord(job_id, NAME, sweep.name, str(sweep.dir / NAME), [t["trial_id"] for t in trials],
                        command=command)
        append_record(sweep.dir, NAME, rec)
        write_queue(sweep.dir, {**read_queue(sweep.dir), job_id: {"state": "PENDING", "runtime": asdict(runtime),
                                                                  "interrupt": self.interrupt, "node": self.node}})
        return Outcome(job=rec)


class FakeScheduler(Backend):
    """A pretend cluster scheduler (tests only): queues a job, runs it when drained."""

    name = NAME
    title = "FAKE"
    submits = True
    options_key = NAME

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument_group("fake scheduler").add_argument("--fake-interrupt", type=int, default=None, metavar="N",
                                                            help="the job dies while running its N-th trial")

    def options_model(self) -> type[FakeOptions]:
        return FakeOptions

    def make(self, a: argparse.Namespace, spec: Any) -> Runner:
        opts = FakeOptions.model_validate(spec.backend_options(NAME))  # checked when the file was loaded
        flag = getattr(a, "fake_interrupt", None)
        return FakeRunner(interrupt=opts.interrupt if flag is None else flag, node=opts.node)

    def current_job(self) -> str | None:
        return os.environ.get(JOB_ENV)

    def states(self, records: Any) -> dict[str, tuple[str, str]]:
        queues = {r.folder: read_queue(Path(r.folder).parent) for r in records}
        jobs = {r.job_id: queues[r.folder].get(r.job_id, {}) for r in records}
        return {i: (job.get("state", "UNKNOWN"), job.get("node", "fakenode")) for i, job in jobs.items()}

    def is_active(self, state: str) -> bool:
        return state in ACTIVE

    def cancel(self, job_ids: list[str], records: Any) -> None:
        for folder in {Path(r.folder).parent for r in records if r.job_id in job_ids}:
            queue = read_queue(folder)
            for jid in job_ids:
                if jid in queue and queue[jid]["state"] in ACTIVE:
                    queue[jid]["state"] = "CANCELLED"
            write_queue(folder, queue)


def drain(sweep_dir: Path) -> None:
    """The scheduler's turn: run every queued job to its end (or to its interruption)."""
    from robustsweep.core.runtime import Runtime
    from robustsweep.core.trial import run_logged
    from robustsweep.errors import TrialFailed
    from robustsweep.store.markers import running_marker
    from robustsweep.sweep.folder import load_sweep

    queue = read_queue(sweep_dir)
    for rec in read_records(sweep_dir, NAME):
        job = queue[rec.job_id]
        if job["state"] != "PENDING":
            continue
        rt = Runtime(**job["runtime"])
        configs = {t["trial_id"]: t for t in load_sweep(rt.results, rt.sweep).trials}
        os.environ[JOB_ENV] = rec.job_id
        try:
            job["state"] = "COMPLETED"
            for i, tid in enumerate(rec.trial_ids, 1):
                if i == job["interrupt"]:  # killed mid-trial: its marker stays, no result is written
                    with running_marker(rt.results, rt.sweep, tid) as marker:
                        left = marker.read_text()
                    marker.write_text(left)
                    job["state"] = "CANCELLED"
                    break
                with contextlib.suppress(TrialFailed):  # its failed row is in the store
                    run_logged(configs[tid], rt, header=f" (fake job {rec.job_id})")
        finally:
            del os.environ[JOB_ENV]
    write_queue(sweep_dir, queue)
