"""Pieces every Ray Tune run shares: starting/joining Ray, the trainable body, progress lines, the run summary.

Each Tune trial is one robustsweep trial: it trains one model and evaluates the whole attack grid on it, so the
~2 s per-trial scheduling overhead of Tune is paid once per model, not once per ε. The runner itself (fresh run or
restored Tune state, used by ``run``, ``resume`` and the SLURM head node alike) is ``backends/tune_runner.py``.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robustsweep.core.trial import Runtime

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

    from robustsweep.core.trial import run_trial

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
