"""Running markers: ``<sweep>/running/<trial_id>.json`` says which host / pid / scheduler job runs a trial right now.

Written by whoever runs a trial (Tune trainable, array task), removed when the trial ends. ``status`` counts a trial
as running while its marker exists and its process or job is alive; a marker left by a killed process is how
``status`` tells an interrupted trial from one that never started. Lives in the store layer because the sweep
layer (status, resume) must read markers without importing the runners (and so without torch or Ray).

A marker carries enough to tell a live run from a dead one without asking anyone (:func:`marker_liveness`):

- ``pid`` and ``pid_start`` (the process's start time from ``/proc``; a recycled pid has another one) and
  ``driver_pid`` / ``driver_start`` (the Tune driver that launched it, from :data:`DRIVER_ENV`): on this host a
  marker is dead the moment either process is gone -- right after a driver is SIGKILLed, not minutes later;
- ``heartbeat_at``, refreshed every ``heartbeat_s`` by a thread of the trial process: on another host (where pids
  mean nothing) a marker is live while its heartbeat is fresh, and dead once it is older than
  :data:`STALE_AFTER` heartbeats -- so a live run on another node still blocks a resume, a dead one stops blocking.

Retry records (``<sweep>/retries/<trial_id>.json``, :func:`record_retry`) sit here too: like a running marker, a
small JSON file that ``status`` reads without the runners.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from robustsweep.store.parquet import sweep_dir
from robustsweep.store.paths import check_name, ensure_inside

RUNNING_DIR = "running"
HEARTBEAT_S = 15.0
STALE_AFTER = 4  # heartbeats missed before a marker of another host counts as dead
#: set by the Tune driver (``pid:start``) for the trial processes it launches (Ray workers inherit its environment)
DRIVER_ENV = "ROBUSTSWEEP_DRIVER"


def marker_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    check_name(trial_id, "trial_id")
    return ensure_inside(sweep_dir(results, sweep) / RUNNING_DIR / f"{trial_id}.json", results, "running marker")


def process_start(pid: int) -> str | None:
    """Start time of process ``pid`` (clock ticks since boot, field 22 of ``/proc/<pid>/stat``), None when there is
    no such process. Where ``/proc`` is absent the pid alone is checked ("?" = alive, start unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        return stat.rsplit(")", 1)[1].split()[19]  # the command name may hold spaces: fields after its ')'
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "?"


def driver_identity() -> str:
    """``pid:start`` of this process, to put in :data:`DRIVER_ENV` before the driver launches trials."""
    return f"{os.getpid()}:{process_start(os.getpid())}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def job_key(backend: str) -> str:
    """The marker key under which ``backend`` records the job a trial runs in (``slurm_job``)."""
    return f"{backend}_job"


def current_jobs() -> dict[str, str | None]:
    """``{<backend>_job: id}`` for every backend that submits jobs: the id of its job this process runs in, else
    None. Asked of the registered backends (their ``current_job()``: SLURM reads its environment variables), found
    lazily through the registry, so this layer names no scheduler."""
    from robustsweep.registry import BACKENDS

    backends = (e.fn() for e in BACKENDS.entries())
    return {job_key(b.name): b.current_job() for b in backends if b.submits}


def marker_job(marker: dict[str, Any], backends: Iterable[str]) -> tuple[str, str] | None:
    """(backend, job id) of the first of ``backends`` whose job a marker names, None for a run outside any job."""
    for name in backends:
        if job := marker.get(job_key(name)):
            return name, str(job)
    return None


@contextlib.contextmanager
def running_marker(results: str | Path, sweep: str, trial_id: str,
                   heartbeat_s: float = HEARTBEAT_S) -> Iterator[Path]:
    """A small JSON file saying which host/pid/scheduler job (:func:`current_jobs`) runs a trial, refreshed every
    ``heartbeat_s`` and removed when the trial ends (see the module docstring for how it is judged)."""
    path = marker_path(results, sweep, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver_pid, _, driver_start = os.environ.get(DRIVER_ENV, "").partition(":")
    info = {"trial_id": trial_id, "host": socket.gethostname(), "pid": os.getpid(),
            "pid_start": process_start(os.getpid()), **current_jobs(), "started_at": _now().isoformat(),
            "heartbeat_at": _now().isoformat(), "heartbeat_s": heartbeat_s}
    if driver_pid.isdigit():
        info |= {"driver_pid": int(driver_pid), "driver_start": driver_start or None}
    _write(path, info)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_s):
            with contextlib.suppress(OSError):  # a full disk must not kill the trial; the marker just ages
                _write(path, info | {"heartbeat_at": _now().isoformat()})

    thread = threading.Thread(target=beat, name=f"marker-{trial_id}", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


#: read_markers adds the marker file's mtime under this key (not part of the file): marker_liveness ages it
MTIME_KEY = "_file_mtime"


def marker_liveness(marker: dict[str, Any], now: dt.datetime | None = None) -> tuple[bool | None, str]:
    """(alive, why-not) of a marker judged from its own contents (job states are the caller's business):
    True / False when it can be told, None for an old marker of another host without a heartbeat."""
    host = marker.get("host")
    if host == socket.gethostname():
        for who, pid_key, start_key in (("process", "pid", "pid_start"), ("driver", "driver_pid", "driver_start")):
            pid = marker.get(pid_key)
            if pid is None:
                continue
            start = process_start(int(pid))
            want = marker.get(start_key)
            if start is None or (want not in (None, "?") and start not in ("?", want)):
                return False, f"interrupted: {who} {pid} on {host} is gone"
        return True, ""
    beat = marker.get("heartbeat_at")
    if not beat:
        return None, ""
    now = now or _now()
    if isinstance(marker.get(MTIME_KEY), (int, float)):
        # the marker file's mtime, which every heartbeat renews: stamped where the file is written (the shared file
        # system), so a node whose clock runs behind (a live run judged dead: duplicates) or ahead (a dead run
        # judged alive for as long) is judged right; heartbeat_at is the writer's own clock
        age = now.timestamp() - float(marker[MTIME_KEY])
    else:
        age = (now - dt.datetime.fromisoformat(beat)).total_seconds()
    limit = STALE_AFTER * float(marker.get("heartbeat_s") or HEARTBEAT_S)
    if age > limit:
        return False, f"interrupted: no heartbeat from {host} for {age:.0f}s (limit {limit:.0f}s)"
    return True, ""


def read_markers(results: str | Path, sweep: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    d = sweep_dir(results, sweep) / RUNNING_DIR
    for p in sorted(d.glob("[!.]*.json")) if d.is_dir() else []:
        try:
            doc = json.loads(p.read_text())
            if isinstance(doc, dict):
                doc[MTIME_KEY] = p.stat().st_mtime
            out[p.stem] = doc
        except (OSError, ValueError):
            continue
    return out


# ------------------------------------------------------------------------------------------------ retries
#: ``<sweep>/retries/<trial_id>.json``: the infrastructure failures of a trial that Tune retried (node lost, worker
#: process killed, out of memory), written by the driver when it schedules the retry
RETRIES_DIR = "retries"


def retry_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    check_name(trial_id, "trial_id")
    return ensure_inside(sweep_dir(results, sweep) / RETRIES_DIR / f"{trial_id}.json", results, "retry record")


def record_retry(results: str | Path, sweep: str, trial_id: str, reason: str, detail: str = "",
                 max_retries: int | None = None) -> int:
    """Append one retry (``reason``: a few words such as "node lost"; ``detail``: Ray's message) to the trial's
    retry record and return how many retries it now lists. Only the one Tune driver of a sweep writes it, so a
    read-modify-replace is enough; the replace keeps a reader from ever seeing half a record."""
    path = retry_path(results, sweep, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    past = read_retry(path)
    past.append({"at": _now().isoformat(), "reason": reason, "detail": detail[:500], "max_retries": max_retries})
    _write(path, {"trial_id": trial_id, "retries": past})
    return len(past)


def read_retry(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    retries = doc.get("retries") if isinstance(doc, dict) else None
    return [r for r in retries if isinstance(r, dict)] if isinstance(retries, list) else []


def read_retries(results: str | Path, sweep: str) -> dict[str, list[dict[str, Any]]]:
    """trial id -> its retries, for every trial that has been retried (one listing, a small file each)."""
    d = sweep_dir(results, sweep) / RETRIES_DIR
    out: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(d.glob("[!.]*.json")) if d.is_dir() else []:
        if retries := read_retry(p):
            out[p.stem] = retries
    return out
