"""``--mode array``: one SLURM array task per chunk of trials (one trial by default), no Ray, no long-lived driver.

For clusters that frown on a driver holding an allocation for the whole sweep: submitit's ``map_array``
submits one job array (``--array=0-N%parallelism``); each task runs its trials in-process, one after the other,
each writing its own Parquet file. A task re-checks the store before each trial, so a requeued task, or an array
submitted while another copy already finished a trial, never repeats a finished trial.

Arrays of any size: SLURM refuses an array with more tasks than its ``MaxArraySize`` (1,001 on many clusters), so
the trials are packed ``k`` to a task, ``k`` = ``trials_per_task`` (1 by default) raised until the array fits
(:func:`pack`); tiny trials may be packed on purpose to save the scheduler's per-task overhead.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import submitit

DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's default MaxArraySize


def cluster_max_array_size(timeout: float = 20.0) -> int:
    """``MaxArraySize`` from ``scontrol show config`` (an array holds at most that many tasks: indices 0..N-1),
    else SLURM's default."""
    if shutil.which("scontrol"):
        try:
            res = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=timeout)
            m = re.search(r"^MaxArraySize\s*=\s*(\d+)", res.stdout, re.MULTILINE)
            if res.returncode == 0 and m and int(m.group(1)) > 0:
                return int(m.group(1))
        except (OSError, subprocess.TimeoutExpired):
            pass
    return DEFAULT_MAX_ARRAY_SIZE


def trials_per_task(n_trials: int, max_array_size: int, wanted: int | None = None) -> int:
    """k such that ``ceil(n_trials / k)`` tasks fit in one array: ``wanted`` (default 1), raised if need be."""
    return max(wanted or 1, math.ceil(n_trials / max(1, max_array_size)), 1)


def pack(trials: list[dict[str, Any]], k: int) -> list[list[dict[str, Any]]]:
    """The trials in task order, ``k`` to a task (the last task takes the rest)."""
    return [trials[i:i + k] for i in range(0, len(trials), k)]


def warm_if_last(results: str, sweep: str) -> bool:
    """The task that leaves no trial of the sweep without a result file (ok or failed) refreshes the read cache
    (:func:`robustsweep.store.parquet.warm_read_cache`): an array sweep has no driver that outlives its trials.
    Two tasks finishing together may both do it; the cache is written under a fresh name each time, so that is
    only wasted work. Costs one status read per task (0.06 s at 10,000 trials)."""
    from robustsweep.store.parquet import trial_status, warm_read_cache
    from robustsweep.store.readcache import REFRESH_AT
    from robustsweep.sweep.folder import load_trial_list

    try:
        ids = load_trial_list(results, sweep).trial_ids
        if len(ids) < REFRESH_AT or not set(ids) <= set(trial_status(results, sweep)):
            return False
    except Exception:  # noqa: BLE001 -- best effort: never fail a finished trial over its cache
        return False
    return warm_read_cache(results, sweep)


class ArrayTrial(submitit.helpers.Checkpointable):
    """The callable of one array task: ``ArrayTrial(results, sweep, runtime)(trials)``, ``trials`` one trial config
    or a chunk of them (run in order; a failed trial does not stop the others, the task fails at the end)."""

    def __init__(self, results: str, sweep: str, runtime: dict[str, Any]) -> None:
        self.results = results
        self.sweep = sweep
        self.runtime = runtime

    def __call__(self, trials: dict[str, Any] | list[dict[str, Any]]) -> Any:
        if isinstance(trials, dict):
            return self.run_one(trials)
        out, failed = [], None
        for trial in trials:
            try:
                out.append(self.run_one(trial))
            except Exception as e:  # noqa: BLE001 -- recorded in the store by run_logged; the chunk goes on
                failed = failed or e
                out.append({"trial_id": trial["trial_id"], "failed": str(e)})
        if failed is not None:
            raise failed
        return out

    def run_one(self, trial: dict[str, Any]) -> dict[str, Any]:
        from robustsweep.core.runtime import Runtime
        from robustsweep.core.trial import run_logged

        tid = trial["trial_id"]
        job = f"{os.environ.get('SLURM_ARRAY_JOB_ID', os.environ.get('SLURM_JOB_ID'))}_" \
              f"{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
        print(f"robustsweep: running trial {tid}; log {Path(self.results) / self.sweep / 'logs' / (tid + '.log')}",
              flush=True)
        try:
            rows = run_logged(trial, Runtime(**self.runtime), header=f" (SLURM {job})")  # raises TrialFailed
        finally:
            warm_if_last(self.results, self.sweep)
        if rows is None:
            print(f"robustsweep: trial {tid} already in the store; nothing to do", flush=True)
            return {"trial_id": tid, "skipped": True}
        return {"trial_id": tid, "rows": len(rows), "skipped": False}

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Pre-emption/time-out: requeue the same trial(s): finished ones skip (the store is checked first) and the
        model cache keeps a finished training."""
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
