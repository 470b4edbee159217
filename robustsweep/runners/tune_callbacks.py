"""Tune callbacks: one progress line per trial event, and a ``failed`` row for trials whose process died.

Built lazily (Ray is imported only when a run starts) by :func:`progress_callback` and :func:`lost_trials_callback`.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from robustsweep.config.trial import trial_label
from robustsweep.store.rows import record_lost_trial

#: totals of the run in progress in this driver process. A restored Tune experiment brings back the callbacks
#: pickled with its first run, so the counts they print must come from here, not from their own construction.
CURRENT_RUN: dict[str, int] = {"total": 0, "concurrency": 1}


def progress_callback():
    from ray import tune

    class Progress(tune.Callback):
        """One line per event: done / running / failed / pending counts and an ETA from mean trial time."""

        def __init__(self) -> None:
            self.setup()

        def setup(self, *args: Any, **info: Any) -> None:  # Tune calls this when fit() starts
            self.t0 = time.time()
            self.done = self.failed = self.running = 0
            self.durations: list[float] = []
            self.starts: dict[str, float] = {}

        def _line(self, event: str) -> None:
            total, concurrency = CURRENT_RUN["total"], CURRENT_RUN["concurrency"]
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
            self._line(f"start {trial_label(trial.config['trial'])}")

        def _end(self, trial) -> None:
            self.running = max(0, self.running - 1)
            self.durations.append(time.time() - self.starts.pop(trial.trial_id, time.time()))

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._end(trial)
            self.done += 1
            acc = (trial.last_result or {}).get("clean_accuracy")
            self._line(f"ok    {trial_label(trial.config['trial'])}"
                       + (f" clean_acc={acc:.3f}" if acc is not None else ""))

        def on_trial_error(self, iteration, trials, trial, **info):
            self._end(trial)
            self.failed += 1
            self._line(f"FAIL  {trial_label(trial.config['trial'])}")

    return Progress()


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


def lost_trials_callback():
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
