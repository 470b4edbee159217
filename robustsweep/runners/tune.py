"""Run a sweep's unfinished trials with Ray Tune, restoring Tune's own state when it is intact.

Used by the SLURM head node, by a requeued (pre-empted) allocation and by ``robustsweep resume``. Three rules
make it exactly-once, whatever happened before:

1. the Parquet files are the record: only trials without an ``ok`` file are handed to Tune;
2. the trainable itself re-checks the Parquet file before running (``robustsweep_trial``), because Tune's
   experiment state can lag behind -- a trial may have written its file a second before a pre-emption and
   still be RUNNING in Tune's last saved state;
3. a trial whose process died without writing anything (SIGKILL, OOM, node loss) gets a ``failed`` row from
   the driver (:class:`RecordLostTrials`), so the store says what happened and ``resume`` reruns it.

Tune's state (``<sweep>/tune``) is restored with ``Tuner.restore(resume_errored=...)`` only when it was
written by this module (a small ``robustsweep.json`` next to it lists its trials) and covers every pending
trial; otherwise the old state is moved aside and a fresh Tune run gets exactly the pending trials.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

from robustsweep.runners.tune_trainable import (
    RunSummary,
    _progress_callback,
    _quiet_tune,
    _trainable,
    ensure_ray,
)
from robustsweep.store.parquet import sweep_dir, trial_path, trial_status, write_trial
from robustsweep.store.schema import flatten_config

TUNE_DIR = "tune"
SIDECAR = "robustsweep.json"
RUNNING_DIR = "running"


# ------------------------------------------------------------------------------------------ running markers
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


# ------------------------------------------------------------------------------------------ the trainable
def finished_ok(results: str | Path, sweep: str, trial_id: str) -> int | None:
    """Number of rows if the trial's Parquet file exists and says ok, else None (missing, failed, unreadable)."""
    import pyarrow.parquet as pq

    path = trial_path(results, sweep, trial_id)
    try:
        statuses = pq.read_table(path, columns=["status"]).column("status").to_pylist()
    except Exception:
        return None
    return len(statuses) if statuses and "failed" not in statuses else None


def robustsweep_trial(config: dict[str, Any]) -> None:
    """The Tune trainable used by SLURM runs and resume: skip a trial already in the store, else run it.

    The name is part of Tune's saved state (``Tuner.restore`` insists on the same trainable), so keep it.
    """
    cfg, rt = config["trial"], config["runtime"]
    rows = finished_ok(rt["results"], rt["sweep"], cfg["trial_id"])
    if rows is not None:
        from ray import tune

        tune.report({"rows": rows, "skipped": 1})
        return
    with running_marker(rt["results"], rt["sweep"], cfg["trial_id"]):
        _trainable(config)


# ------------------------------------------------------------------------------------------ lost trials
def record_lost_trial(cfg: dict[str, Any], results: str | Path, sweep: str, error: str) -> bool:
    """Write a ``failed`` row for a trial whose process died before writing anything. Never overwrites.

    Returns True when a row was written.
    """
    if trial_path(results, sweep, cfg["trial_id"]).exists():
        return False
    row = {
        "sweep": sweep, "trial_id": cfg["trial_id"], "config_hash": cfg.get("config_hash"),
        "seed": int(cfg.get("seed", 0)),
        **flatten_config({k: v for k, v in cfg.items() if k not in ("trial_id", "config_hash")}),
        "status": "failed", "error": error, "host": socket.gethostname(),
        "config_json": json.dumps(cfg, sort_keys=True),
        "finished_at": dt.datetime.now(dt.timezone.utc),
    }
    write_trial([row], results, sweep, cfg["trial_id"])
    return True


def summarize_tune_error(text: str | None, limit: int = 300) -> str:
    """A short line from Tune's error text for the store, e.g. that the trial's worker process died."""
    prefix = "trial process died without writing a result"
    if not text:
        return f"{prefix} (killed, out of memory, or node lost)"
    lines = [ln.strip() for ln in text.strip().splitlines()
             if ln.strip() and not ln.startswith("Failure #") and not ln.strip().startswith(("File ", "^"))]
    picked = [ln for ln in lines if "died" in ln or "exit" in ln.lower() or "Error" in ln][:2] or lines[-1:]
    detail = " | ".join(picked)
    if len(detail) > limit:
        detail = detail[:limit - 3] + "..."
    return f"{prefix}: {detail}"


def _tune_error_text(trial: Any) -> str | None:
    """Tune's error text for a trial: the local error.txt, else via the storage filesystem."""
    with contextlib.suppress(Exception):
        path = trial.error_file
        if path and os.path.exists(path):
            return Path(path).read_text(errors="replace")
    with contextlib.suppress(Exception):
        err = trial.get_error()
        return str(err) if err is not None else None
    return None


def _lost_trials_callback():
    from ray import tune

    class RecordLostTrials(tune.Callback):
        """On a Tune trial error, record the trial as failed in the store if it left no file behind."""

        def on_trial_error(self, iteration, trials, trial, **info):
            cfg, rt = trial.config["trial"], trial.config["runtime"]
            try:
                record_lost_trial(cfg, rt["results"], rt["sweep"], summarize_tune_error(_tune_error_text(trial)))
            except Exception as e:  # never let bookkeeping crash the driver
                print(f"robustsweep: could not record failure of {cfg.get('trial_id')}: {e}", file=sys.stderr)

    return RecordLostTrials()


# ------------------------------------------------------------------------------------------ restore or fresh
def read_sidecar(exp_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((exp_dir / SIDECAR).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def restorable(exp_dir: Path, pending_ids: set[str]) -> tuple[bool, str]:
    """Whether Tune's state in ``exp_dir`` can be restored for these pending trials, and why (not)."""
    side = read_sidecar(exp_dir)
    if side is None:
        return False, "no Tune state written by robustsweep's cluster runner"
    if side.get("trainable") != robustsweep_trial.__name__:
        return False, f"Tune state was made with trainable {side.get('trainable')!r}"
    missing = pending_ids - set(side.get("trial_ids", []))
    if missing:
        return False, f"{len(missing)} pending trial(s) are not part of the saved Tune experiment"
    from ray import tune

    if not tune.Tuner.can_restore(str(exp_dir)):
        return False, "Tune's experiment state is missing or incomplete"
    return True, "Tune state intact"


def _move_aside(exp_dir: Path) -> None:
    if exp_dir.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = exp_dir.with_name(f"{exp_dir.name}.old-{stamp}-{os.getpid()}")
        os.replace(exp_dir, target)


def run_pending(
    sweep: Any,
    rt: Any,
    *,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    address: str | None = None,
    cpus: int | None = None,
    max_concurrent: int | None = None,
    restart_errored: bool = False,
    out: TextIO = sys.stdout,
) -> RunSummary:
    """Run every trial of ``sweep`` (a :class:`robustsweep.sweep.folder.Sweep`) that has no ``ok`` Parquet file.

    ``restart_errored``: errored trials restart from scratch instead of their last Tune checkpoint.
    """
    import dataclasses

    from ray import tune

    t0 = time.time()
    pending = sweep.pending()
    ids = [t["trial_id"] for t in pending]
    if not pending:
        print(f"sweep {sweep.name}: all {len(sweep.trials)} trials already done", file=out, flush=True)
        return RunSummary(0, 0, 0, {}, 0.0)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    ensure_ray(cpus, address)
    if rt.threads is None:
        rt = dataclasses.replace(rt, threads=max(1, int(cpus_per_trial)))
    resources = {"cpu": cpus_per_trial} | ({"gpu": gpus_per_trial} if gpus_per_trial else {})
    trainable = tune.with_resources(robustsweep_trial, resources)
    exp_dir = Path(sweep.dir) / TUNE_DIR
    import ray

    total_cpus = ray.cluster_resources().get("CPU", 1)
    concurrency = max_concurrent or max(1, int(total_cpus // max(cpus_per_trial, 1e-9)))

    def callbacks(n: int) -> list:
        return [_progress_callback(n, min(concurrency, max(n, 1))), _lost_trials_callback()]

    ok, why = restorable(exp_dir, set(ids))
    ran: set[str] = set()
    if ok:
        print(f"restoring Tune state in {exp_dir} ({len(pending)} trial(s) to finish; errored trials "
              f"{'restart from scratch' if restart_errored else 'resume from their last checkpoint'})",
              file=out, flush=True)
        try:
            tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=not restart_errored, restart_errored=restart_errored)
            # Tune restarts every trial of its state that is not TERMINATED (ours skip themselves if done)
            n_start = len(read_sidecar(exp_dir)["trial_ids"]) - tuner.get_results().num_terminated
            # the restored RunConfig carries the old run's callbacks; progress must count this run's trials
            tuner._local_tuner.get_run_config().callbacks = callbacks(n_start)
            _quiet_tune()
            tuner.fit()
            ran = set(ids)
        except Exception as e:  # unreadable/corrupt state: the Parquet files still say what is left
            print(f"robustsweep: Tune restore failed ({type(e).__name__}: {e}); starting the remaining "
                  f"trials fresh", file=sys.stderr)
    else:
        if exp_dir.exists():  # only worth saying when there was an earlier Tune state to restore
            print(f"starting a fresh Tune run for {len(pending)} trial(s) ({why})", file=out, flush=True)
    # trials Tune did not (re)run: fresh run, with a sidecar so a later resume can restore this state
    left = [t for t in sweep.pending() if t["trial_id"] not in ran or not _has_file(rt, t)]
    if left:
        _move_aside(exp_dir)
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / SIDECAR).write_text(json.dumps(
            {"trainable": robustsweep_trial.__name__, "trial_ids": [t["trial_id"] for t in left]}))
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(left), "runtime": dataclasses.asdict(rt)},
            # same settings as the local runner: warm worker processes, trial folders named by trial id
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                        trial_dirname_creator=_trial_dirname, trial_name_creator=_trial_dirname),
            run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(Path(sweep.dir)), verbose=0,
                                      callbacks=callbacks(len(left)),
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        _quiet_tune()
        tuner.fit()
    status = trial_status(rt.results, rt.sweep)
    n_ok = sum(1 for i in ids if status.get(i, {}).get("status") == "ok")
    errors = {i: (status.get(i) or {}).get("error") or "no result file (trial crashed or was killed)"
              for i in ids if status.get(i, {}).get("status") != "ok"}
    return RunSummary(len(ids), n_ok, len(errors), errors, time.time() - t0)


def _trial_dirname(trial: Any) -> str:
    return trial.config["trial"]["trial_id"]


def _has_file(rt: Any, trial: dict[str, Any]) -> bool:
    return trial_path(rt.results, rt.sweep, trial["trial_id"]).exists()
