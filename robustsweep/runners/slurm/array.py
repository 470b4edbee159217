"""``--mode array``: one SLURM array task per trial, no Ray and no long-lived driver.

For clusters that frown on a driver holding an allocation for the whole sweep: submitit's ``map_array``
submits one job array (``--array=0-N%parallelism``); each task runs one trial in-process and writes its own
Parquet file. The task re-checks the store first, so a requeued task, or an array submitted while another
copy already finished the trial, never repeats a finished trial.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import submitit


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
    """The callable of one array task: ``ArrayTrial(results, sweep, runtime)(trial_config)``."""

    def __init__(self, results: str, sweep: str, runtime: dict[str, Any]) -> None:
        self.results = results
        self.sweep = sweep
        self.runtime = runtime

    def __call__(self, trial: dict[str, Any]) -> dict[str, Any]:
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
        """Pre-emption/time-out: requeue the same trial (the model cache keeps a finished training)."""
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
