"""``--mode array``: one SLURM array task per trial, no Ray and no long-lived driver.

For clusters that frown on a driver holding an allocation for the whole sweep: submitit's ``map_array``
submits one job array (``--array=0-N%parallelism``); each task runs one trial in-process and writes its own
Parquet file. The task re-checks the store first, so a requeued task, or an array submitted while another
copy already finished the trial, never repeats a finished trial.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import submitit


class ArrayTrial(submitit.helpers.Checkpointable):
    """The callable of one array task: ``ArrayTrial(results, sweep, runtime)(trial_config)``."""

    def __init__(self, results: str, sweep: str, runtime: dict[str, Any]) -> None:
        self.results = results
        self.sweep = sweep
        self.runtime = runtime

    def __call__(self, trial: dict[str, Any]) -> dict[str, Any]:
        from robustsweep.core.trial import Runtime, run_trial
        from robustsweep.runners.tune import finished_ok, running_marker

        tid = trial["trial_id"]
        rows = finished_ok(self.results, self.sweep, tid)
        if rows is not None:
            print(f"robustsweep: trial {tid} already in the store ({rows} rows); nothing to do", flush=True)
            return {"trial_id": tid, "rows": rows, "skipped": True}
        rt = Runtime(**self.runtime)
        log_path = Path(self.results) / self.sweep / "logs" / f"{tid}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with running_marker(self.results, self.sweep, tid), open(log_path, "a", buffering=1) as fh:
            def log(msg: str) -> None:
                fh.write(f"{time.strftime('%H:%M:%S')} {msg}\n")

            log(f"trial {tid} on {socket.gethostname()} pid {os.getpid()} "
                f"(SLURM {os.environ.get('SLURM_ARRAY_JOB_ID', os.environ.get('SLURM_JOB_ID'))}"
                f"_{os.environ.get('SLURM_ARRAY_TASK_ID', '')})")
            print(f"robustsweep: running trial {tid}; log {log_path}", flush=True)
            out = run_trial(trial, rt, log)  # raises TrialFailed after writing the failed row
        return {"trial_id": tid, "rows": len(out), "skipped": False}

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Pre-emption/time-out: requeue the same trial (the model cache keeps a finished training)."""
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
