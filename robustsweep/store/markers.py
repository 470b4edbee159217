"""Running markers: ``<sweep>/running/<trial_id>.json`` says which host / pid / SLURM job runs a trial right now.

Written by whoever runs a trial (Tune trainable, array task), removed when the trial ends. ``status`` counts a trial
as running while its marker exists and its process or job is alive; a marker left by a killed process is how
``status`` tells an interrupted trial from one that never started. Lives in the store layer because the sweep
layer (status, resume) must read markers without importing the runners (and so without torch or Ray).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from robustsweep.store.parquet import sweep_dir

RUNNING_DIR = "running"


def marker_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    return sweep_dir(results, sweep) / RUNNING_DIR / f"{trial_id}.json"


@contextlib.contextmanager
def running_marker(results: str | Path, sweep: str, trial_id: str) -> Iterator[Path]:
    """A small JSON file saying which host/pid/SLURM job runs a trial, removed when the trial ends.

    ``status`` counts a trial as running while its marker exists and its job is alive; a marker left by a
    killed process is how ``status`` tells an interrupted trial from one that never started.
    """
    path = marker_path(results, sweep, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    info = {"trial_id": trial_id, "host": socket.gethostname(), "pid": os.getpid(), "slurm_job": job,
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_markers(results: str | Path, sweep: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    d = sweep_dir(results, sweep) / RUNNING_DIR
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out[p.stem] = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return out
