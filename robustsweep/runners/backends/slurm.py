"""``slurm``: submit the trials as one SLURM job -- a Ray cluster inside one allocation (``mode: ray``) or one array
task per trial (``mode: array``) -- and return at once; ``status`` / ``resume`` follow the job through squeue / sacct.

Everything SLURM-specific the rest of the tool needs goes through this class: its flags and ``slurm:`` section
(:mod:`robustsweep.runners.slurm.options`), its job records and states (:mod:`robustsweep.runners.slurm.records`),
the job a trial runs in (SLURM's environment variables), how to cancel. The submission itself is
:mod:`robustsweep.runners.slurm.submit` (submitit), imported only by :meth:`Slurm.make`.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from robustsweep.runners.base import Backend, Runner, register_backend
from robustsweep.runners.slurm import records
from robustsweep.sweep.jobs import JobRecord, Task


@register_backend
class Slurm(Backend):
    """Submit to SLURM (one Ray cluster per allocation, or one array task per trial) and return at once."""

    name = records.NAME
    title = "SLURM"
    submits = True
    options_key = "slurm"

    # ------------------------------------------------------------------------------ the command line
    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("SLURM options (override the experiment file's slurm: section)")
        g.add_argument("--mode", choices=["ray", "array"], default=None,
                       help="ray: one allocation running a Ray cluster + Tune driver (default); array: one SLURM array "
                            "task per trial, no long-lived driver")
        g.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's default)")
        g.add_argument("--nodes", type=int, default=None, help="nodes for the Ray cluster (ray mode; default 1)")
        g.add_argument("--gpus-per-node", type=int, default=None, help="GPUs per node (default 0)")
        g.add_argument("--cpus-per-node", type=int, default=None, help="CPUs per node (ray) / per task (array)")
        g.add_argument("--mem", default=None, help="memory per node, e.g. 32G")
        g.add_argument("--time", default=None, help="time limit: minutes, HH:MM:SS or D-HH:MM:SS (default 01:00:00)")
        g.add_argument("--account", default=None)
        g.add_argument("--qos", default=None)
        g.add_argument("--constraint", default=None, help="node features, e.g. a100")
        g.add_argument("--array-parallelism", type=int, default=None,
                       help="array mode: at most this many tasks at once (default 16)")
        g.add_argument("--trials-per-task", type=int, default=None, metavar="K",
                       help="array mode: each task runs K trials one after the other (default: 1, raised as far as "
                            "needed to keep the array within the cluster's MaxArraySize)")
        g.add_argument("--max-array-size", type=int, default=None, metavar="N",
                       help="array mode: at most N tasks in one array (default: MaxArraySize from "
                            "`scontrol show config`, else 1001)")
        g.add_argument("--allow-local-results", action="store_true",
                       help="accept a results folder that looks node-local (e.g. /tmp) even with several nodes")

    def options_model(self) -> type:
        from robustsweep.runners.slurm.options import SlurmOptions

        return SlurmOptions

    def make(self, a: argparse.Namespace, spec: Any) -> Runner:
        from robustsweep.runners.slurm.options import FLAG_FIELDS, resolve_options
        from robustsweep.runners.slurm.submit import SlurmBackend

        opts = resolve_options(spec.backend_options(self.options_key), {k: getattr(a, k, None) for k in FLAG_FIELDS})
        if getattr(a, "allow_local_results", False):
            opts = opts.model_copy(update={"allow_local_results": True})
        return SlurmBackend(opts, max_concurrent=getattr(a, "max_concurrent", None))

    # ------------------------------------------------------------------------------ a submitted job
    def current_job(self) -> str | None:
        """``SLURM_JOB_ID``, or ``<array job>_<task>`` inside an array task."""
        if os.environ.get("SLURM_ARRAY_JOB_ID"):
            return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
        return os.environ.get("SLURM_JOB_ID")

    def read_records(self, sweep_dir: Path) -> list[records.SlurmJob]:
        return records.read_records(sweep_dir)

    def tasks(self, rec: JobRecord) -> list[Task]:
        """Array mode: task i carries the i-th chunk of ``trials_per_task`` trials; otherwise the one task carries
        every trial."""
        job = rec if isinstance(rec, records.SlurmJob) else records.SlurmJob(**vars(rec))
        return [Task(t, str(job.log_paths(t)[0]), chunk) for t, chunk in zip(job.task_ids(), job.chunks())]

    def states(self, recs: Sequence[JobRecord]) -> dict[str, tuple[str, str]]:
        return records.job_states(recs)  # type: ignore[arg-type]  # read_records gives SlurmJob

    def is_active(self, state: str) -> bool:
        return state in records.ACTIVE_STATES

    def job_of(self, task_id: str) -> str:
        return task_id.split("_")[0]

    def cancel(self, job_ids: list[str], recs: Sequence[JobRecord]) -> None:
        records.scancel(job_ids)

    def submit_after(self, runner: Runner, argv: list[str], after: Sequence[JobRecord], folder: Path,
                     name: str) -> str | None:
        from robustsweep.runners.slurm.followup import submit_after

        return submit_after(runner.opts, argv, [r.job_id for r in after], folder, name)  # type: ignore[attr-defined]

    def print_submitted(self, rec: JobRecord, sweep: Any, n_todo: int, out: TextIO | None = None) -> None:
        out = sys.stdout if out is None else out
        k = getattr(rec, "trials_per_task", 1)
        n_tasks = len(self.tasks(rec))
        what = (f"an array of {n_tasks} task(s)" + (f", {k} trials each" if k > 1 else "")
                if rec.mode == "array" and n_tasks > 1 else
                f"one job on {rec.nodes} node(s) (Ray head + Tune driver)" if rec.mode == "ray" else "one task")
        print(f"sweep {sweep.name}: {len(sweep.trials)} trials, {n_todo} to run -> {sweep.dir}", file=out)
        print(f"submitted SLURM job {rec.job_id} ({rec.mode} mode, {what})", file=out)
        print(f"  status: robustsweep status {sweep.name} --results {sweep.results}", file=out)
        print(f"  log:    {self.tasks(rec)[0].log}", file=out)
