"""``robustsweep submit --backend slurm``: check the cluster, build the sbatch job with submitit, submit, return.

Runs on the login node and returns within seconds: the sweep folder (``sweep.json``) is written first, then one
job is submitted -- ``mode: ray`` (one multi-node allocation running a Ray cluster and the Tune driver, see
:mod:`robustsweep.runners.slurm.job`) or ``mode: array`` (one SLURM array task per trial, see
:mod:`robustsweep.runners.slurm.array`). The job id goes into ``<sweep>/slurm/jobs.jsonl`` for ``status``/``resume``
(:mod:`robustsweep.runners.slurm.records`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robustsweep.runners.base import Outcome
from robustsweep.runners.slurm.checks import (
    SlurmSetupError,
    check_partition,
    check_results_shared,
    explain_sbatch_error,
    list_partitions,
    python_path_setup,
    require_slurm_commands,
    warn,
)
from robustsweep.runners.slurm.options import (
    SlurmOptions,
    SlurmOptionsError,
    resolve_options,
)
from robustsweep.runners.slurm.records import SlurmJob, append_record

__all__ = ["SlurmBackend", "SlurmOptions", "SlurmOptionsError", "SlurmSetupError", "resolve_options",
           "executor_parameters", "validate_resources", "preflight", "submit"]


def log_folder(sweep_dir: Path) -> Path:
    """submitit's folder (``%j`` = job id, or ``<id>_<index>`` for array tasks)."""
    return sweep_dir / "slurm" / "logs" / "%j"


def validate_resources(opts: SlurmOptions, cpus_per_trial: float, gpus_per_trial: float) -> None:
    """A trial must fit on one node of the request, else Tune would wait forever for resources."""
    if opts.mode == "ray":
        if opts.cpus_per_node is not None and cpus_per_trial > opts.cpus_per_node:
            raise SlurmOptionsError(f"a trial needs {cpus_per_trial:g} CPUs (resources.cpus_per_trial) but a node "
                                    f"gets {opts.cpus_per_node} (--cpus-per-node): raise --cpus-per-node or lower "
                                    f"resources.cpus_per_trial")
        if gpus_per_trial > 0 and gpus_per_trial > opts.gpus_per_node:
            raise SlurmOptionsError(f"a trial needs {gpus_per_trial:g} GPU(s) (resources.gpus_per_trial) but a node "
                                    f"gets {opts.gpus_per_node} (--gpus-per-node): request GPUs with "
                                    f"--gpus-per-node, or set resources.gpus_per_trial: 0 for CPU-only trials")
    elif gpus_per_trial and gpus_per_trial % 1:
        warn(f"array mode gives each trial whole GPUs: resources.gpus_per_trial={gpus_per_trial:g} becomes "
             f"{math.ceil(gpus_per_trial)}; use mode: ray to pack several trials onto one GPU")


def executor_parameters(opts: SlurmOptions, *, sweep_name: str, cpus_per_trial: float,
                        gpus_per_trial: float) -> dict[str, Any]:
    """The submitit ``SlurmExecutor.update_parameters`` keywords for this sweep (pure; unit-tested)."""
    p: dict[str, Any] = {
        "job_name": f"rs-{sweep_name}",
        "time": opts.time_minutes,
        "signal_delay_s": opts.signal_delay_s,
        "setup": python_path_setup() + list(opts.setup),
        # a pre-empted job must be allowed back into the queue (submitit requeues it via scontrol)
        "additional_parameters": {"requeue": True, **opts.additional},
    }
    if opts.mode == "ray":
        p["nodes"] = opts.nodes
        p["ntasks_per_node"] = 1  # one submitit task per node: the Ray head or a Ray worker
        if opts.cpus_per_node is not None:
            p["cpus_per_task"] = opts.cpus_per_node
        if opts.gpus_per_node:
            p["gpus_per_node"] = opts.gpus_per_node
    else:
        p["nodes"] = 1
        p["ntasks_per_node"] = 1
        p["cpus_per_task"] = opts.cpus_per_node or max(1, math.ceil(cpus_per_trial))
        gpus = opts.gpus_per_node or math.ceil(gpus_per_trial)
        if gpus:
            p["gpus_per_node"] = gpus
        p["array_parallelism"] = opts.array_parallelism
    for key in ("partition", "mem", "account", "qos", "constraint"):
        value = getattr(opts, key)
        if value is not None:
            p[key] = value
    return p


def preflight(opts: SlurmOptions, results: Path) -> list[str]:
    """Everything checkable before submitting; raises SlurmSetupError, returns warnings."""
    require_slurm_commands()
    warnings = []
    w = check_partition(opts.partition, list_partitions())
    if w:
        warnings.append(w)
    w = check_results_shared(results, opts.nodes, opts.allow_local_results, array_mode=opts.mode == "array")
    if w:
        warnings.append(w)
    return warnings


def _executor(folder: Path, opts: SlurmOptions, params: dict[str, Any]):
    import submitit

    ex = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=opts.max_requeues, python=opts.python)
    ex.update_parameters(**params)
    return ex


def _explain_submit_failure(e: Exception, opts: SlurmOptions) -> SlurmSetupError:
    text = str(e)
    return SlurmSetupError(explain_sbatch_error(text, opts.partition))


def submit(sweep: Any, opts: SlurmOptions, runtime: Any, *, cpus_per_trial: float, gpus_per_trial: float,
           trials: list[dict[str, Any]] | None = None, restart_errored: bool = False,
           max_concurrent: int | None = None, command: str = "submit") -> SlurmJob | None:
    """Submit the sweep's unfinished trials (or ``trials``) as one SLURM job; return its record.

    Returns None (nothing submitted) when every trial already has an ``ok`` result.

    ``sweep`` is a :class:`robustsweep.sweep.folder.Sweep`, ``runtime`` a :class:`robustsweep.core.trial.Runtime`.
    """
    from submitit.core.utils import FailedJobError

    todo = trials if trials is not None else sweep.pending()
    if not todo:
        return None
    validate_resources(opts, cpus_per_trial, gpus_per_trial)
    for w in preflight(opts, Path(sweep.results)):
        warn(w)
    params = executor_parameters(opts, sweep_name=sweep.name, cpus_per_trial=cpus_per_trial,
                                 gpus_per_trial=gpus_per_trial)
    folder = log_folder(Path(sweep.dir))
    ex = _executor(folder, opts, params)
    rt = asdict(runtime)
    try:
        if opts.mode == "array":
            from robustsweep.runners.slurm.array import ArrayTrial, cluster_max_array_size, pack, trials_per_task

            rt["threads"] = rt.get("threads") or params["cpus_per_task"]
            limit = opts.max_array_size or cluster_max_array_size()
            k = trials_per_task(len(todo), limit, opts.trials_per_task)
            if opts.trials_per_task and k > opts.trials_per_task:
                warn(f"{len(todo)} trials at {opts.trials_per_task} per task would need more than {limit} array "
                     f"tasks (MaxArraySize): packing {k} trials per task")
            jobs = ex.map_array(ArrayTrial(str(sweep.results), sweep.name, rt), pack(todo, k))
            job_id = jobs[0].job_id.split("_")[0]
            rec = SlurmJob(job_id=job_id, mode="array", sweep=sweep.name, folder=str(folder),
                           trial_ids=[t["trial_id"] for t in todo], nodes=1, command=command, trials_per_task=k)
        else:
            from robustsweep.runners.slurm.job import JobConfig, RaySweepJob

            cfg = JobConfig(results=str(sweep.results), sweep=sweep.name, runtime=rt,
                            cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                            max_concurrent=max_concurrent, restart_errored=restart_errored,
                            ray_interface=opts.ray_interface, head_timeout_s=opts.ray_head_timeout_s)
            job = ex.submit(RaySweepJob(cfg))
            rec = SlurmJob(job_id=str(job.job_id), mode="ray", sweep=sweep.name, folder=str(folder),
                           trial_ids=[t["trial_id"] for t in todo], nodes=opts.nodes, command=command)
    except FailedJobError as e:  # submitit wraps sbatch's stderr in FailedJobError
        raise _explain_submit_failure(e, opts) from None
    append_record(Path(sweep.dir), rec)
    return rec


@dataclass
class SlurmBackend:
    """Submit the trials as one SLURM job (Ray inside the allocation, or a job array) and return at once: the runner
    the ``slurm`` backend (:mod:`robustsweep.runners.backends.slurm`) makes."""

    opts: SlurmOptions
    max_concurrent: int | None = None
    name: str = "slurm"

    def run(self, sweep: Any, trials: list[dict[str, Any]], runtime: Any, *, restart_errored: bool = False,
            command: str = "submit") -> Outcome:
        res = sweep.spec.resources
        rec = submit(sweep, self.opts, runtime, cpus_per_trial=res.cpus_per_trial, gpus_per_trial=res.gpus_per_trial,
                     trials=trials, restart_errored=restart_errored, max_concurrent=self.max_concurrent,
                     command=command)
        return Outcome(job=rec)
