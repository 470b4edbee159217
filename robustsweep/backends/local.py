"""Run a list of trial configs as Ray Tune trials on a local Ray (or on a running Ray cluster via ``address``).

Each Tune trial is one robustsweep trial: it trains one model and evaluates the whole attack grid on it, so the
~2 s per-trial scheduling overhead of Tune is paid once per model, not once per ε.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustsweep.trial import Runtime

LOG = logging.getLogger(__name__)


@dataclass
class RunSummary:
    total: int
    ok: int
    failed: int
    errors: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


def _trainable(config: dict[str, Any]) -> None:
    """The Tune function trainable: run one trial, log to its own file, report a few numbers."""
    from ray import tune

    from robustsweep.trial import Runtime, run_trial

    cfg, rt = config["trial"], Runtime(**config["runtime"])
    log_path = Path(rt.results) / rt.sweep / "logs" / f"{cfg['trial_id']}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as fh:
        def log(msg: str) -> None:
            fh.write(f"{time.strftime('%H:%M:%S')} {msg}\n")

        log(f"trial {cfg['trial_id']} on {os.uname().nodename} pid {os.getpid()}")
        rows = run_trial(cfg, rt, log)
    tune.report({"clean_accuracy": rows[0]["clean_accuracy"], "rows": len(rows)})


def _label(cfg: dict[str, Any]) -> str:
    m = cfg["model"]
    extra = " ".join(f"{k}={v}" for k, v in m.items() if k != "name")
    return f"{m['name']}{' ' + extra if extra else ''} seed={cfg['seed']}"


def _progress_callback(total: int, concurrency: int):
    from ray import tune

    class Progress(tune.Callback):
        """One line per event: done / running / failed / pending counts and an ETA from mean trial time."""

        def __init__(self) -> None:
            self.t0 = time.time()
            self.done = self.failed = self.running = 0
            self.durations: list[float] = []
            self.starts: dict[str, float] = {}

        def _line(self, event: str) -> None:
            finished = self.done + self.failed
            pending = total - finished - self.running
            el = time.time() - self.t0
            if self.durations:
                avg = sum(self.durations) / len(self.durations)
                eta = f"{avg * (pending + self.running / 2) / max(1, concurrency):.0f}s"
            else:
                eta = "?"
            print(f"[{finished:>3}/{total}] done {self.done} · running {self.running} · failed {self.failed} · "
                  f"pending {pending} · {el:.0f}s elapsed · ETA {eta}  {event}", file=sys.stdout, flush=True)

        def on_trial_start(self, iteration, trials, trial, **info):
            self.running += 1
            self.starts[trial.trial_id] = time.time()
            self._line(f"start {_label(trial.config['trial'])}")

        def _end(self, trial) -> None:
            self.running = max(0, self.running - 1)
            self.durations.append(time.time() - self.starts.pop(trial.trial_id, time.time()))

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._end(trial)
            self.done += 1
            acc = (trial.last_result or {}).get("clean_accuracy")
            self._line(f"ok    {_label(trial.config['trial'])}" + (f" clean_acc={acc:.3f}" if acc is not None else ""))

        def on_trial_error(self, iteration, trials, trial, **info):
            self._end(trial)
            self.failed += 1
            self._line(f"FAIL  {_label(trial.config['trial'])}")

    return Progress()


def _quiet_tune() -> None:
    """Our progress lines and summary replace Tune's reporter; failed trials' tracebacks are in their logs."""
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def ensure_ray(cpus: int | None = None, address: str | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                              logging_level=logging.WARNING)
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=cpus or os.cpu_count(), **kw)


def run_tune(
    trials: list[dict[str, Any]],
    rt: Runtime,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    cpus: int | None = None,
    address: str | None = None,
) -> RunSummary:
    """Run ``trials`` with Ray Tune; every trial writes its own Parquet file. Returns counts and errors."""
    from ray import tune

    from robustsweep.store.parquet import trial_status

    t0 = time.time()
    if not trials:
        return RunSummary(0, 0, 0)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    ensure_ray(cpus, address)
    if rt.threads is None:
        rt = dataclasses.replace(rt, threads=max(1, int(cpus_per_trial)))
    storage = Path(rt.results).resolve() / rt.sweep  # Tune keeps its experiment state in <sweep>/tune
    resources = {"cpu": cpus_per_trial} | ({"gpu": gpus_per_trial} if gpus_per_trial else {})
    import ray

    total_cpus = ray.cluster_resources().get("CPU", 1)
    concurrency = max_concurrent or max(1, int(total_cpus // max(cpus_per_trial, 1e-9)))
    tuner = tune.Tuner(
        tune.with_resources(_trainable, resources),
        param_space={"trial": tune.grid_search(trials), "runtime": dataclasses.asdict(rt)},
        # reuse_actors: a worker process keeps torch imported and the data set loaded between trials
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=lambda t: t.config["trial"]["trial_id"],
                                    trial_name_creator=lambda t: t.config["trial"]["trial_id"]),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(storage), verbose=0,
            callbacks=[_progress_callback(len(trials), min(concurrency, len(trials)))],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    _quiet_tune()
    tuner.fit()
    # the Parquet files, not Tune's bookkeeping, are the record of what finished
    status = trial_status(rt.results, rt.sweep)
    ids = [t["trial_id"] for t in trials]
    ok = sum(1 for i in ids if status.get(i, {}).get("status") == "ok")
    errors = {i: (status.get(i) or {}).get("error") or "no result file (trial crashed or was killed)"
              for i in ids if status.get(i, {}).get("status") != "ok"}
    return RunSummary(len(ids), ok, len(errors), errors, time.time() - t0)
