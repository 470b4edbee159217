"""Tune callbacks: one progress line per trial event, and a ``failed`` row for trials whose process died.

The callback classes live at module level (this module imports Ray, so it is imported only when a run starts): a
Tune experiment pickles its callbacks, and ``Tuner.restore`` brings them back. A class pickled *by reference* runs
today's code and reads today's :data:`CURRENT_RUN`; the closures we used before were pickled by value, so a restored
run counted against the totals of the run that was killed ("resuming 4 of 12 trials" next to ``[x/8]``).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from ray import tune

from robustsweep.config.trial import trial_label
from robustsweep.store.rows import record_lost_trial

#: the run in progress in this driver process: its pending trial ids (the only ones counted: a restored Tune
#: experiment also restarts trials that finished in the store and skip themselves), totals and counters, shared by
#: every callback object of the run (a restore followed by a fresh Tune run for what it left keeps counting).
CURRENT_RUN: dict[str, Any] = {"total": 0, "concurrency": 1, "ids": set(), "done": 0, "failed": 0, "running": set(),
                               "durations": [], "starts": {}, "t0": 0.0}


def start_run(ids: list[str], concurrency: int) -> None:
    """Reset the progress counters for a run of ``ids`` (what the header announced: the counts must agree)."""
    CURRENT_RUN.update(total=len(ids), concurrency=max(1, min(concurrency, len(ids))), ids=set(ids), done=0, failed=0,
                       running=set(), durations=[], starts={}, t0=time.time())


def _tid(trial: Any) -> str | None:
    with contextlib.suppress(Exception):
        return trial.config["trial"]["trial_id"]
    return None


class Progress(tune.Callback):
    """One line per event of a pending trial: done / running / failed / pending counts and an ETA."""

    def _line(self, event: str) -> None:
        r = CURRENT_RUN
        finished = r["done"] + r["failed"]
        running = len(r["running"])
        pending = max(0, r["total"] - finished - running)
        el = time.time() - r["t0"]
        eta = "?"
        if r["durations"]:
            avg = sum(r["durations"]) / len(r["durations"])
            eta = f"{avg * (pending + running / 2) / max(1, r['concurrency']):.0f}s"
        print(f"[{finished:>3}/{r['total']}] done {r['done']} · running {running} · failed {r['failed']} · "
              f"pending {pending} · {el:.0f}s elapsed · ETA {eta}  {event}", file=sys.stdout, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        tid = _tid(trial)
        if tid not in CURRENT_RUN["ids"] or tid in CURRENT_RUN["running"]:
            return
        CURRENT_RUN["running"].add(tid)
        CURRENT_RUN["starts"][tid] = time.time()
        self._line(f"start {trial_label(trial.config['trial'])}")

    def _end(self, trial: Any) -> str | None:
        """The trial's id if this run counts it (and it had not ended yet), else None."""
        tid = _tid(trial)
        if tid not in CURRENT_RUN["ids"]:
            return None
        CURRENT_RUN["ids"].discard(tid)  # each pending trial ends once in the counts
        CURRENT_RUN["running"].discard(tid)
        CURRENT_RUN["durations"].append(time.time() - CURRENT_RUN["starts"].pop(tid, time.time()))
        return tid

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._end(trial) is None:
            return
        CURRENT_RUN["done"] += 1
        acc = (trial.last_result or {}).get("clean_accuracy")
        self._line(f"ok    {trial_label(trial.config['trial'])}" + (f" clean_acc={acc:.3f}" if acc is not None else ""))

    def on_trial_error(self, iteration, trials, trial, **info):
        if self._end(trial) is None:
            return
        CURRENT_RUN["failed"] += 1
        self._line(f"FAIL  {trial_label(trial.config['trial'])}")


def progress_callback() -> Progress:
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


class RecordLostTrials(tune.Callback):
    """On a Tune trial error, record the trial as failed in the store if it left no file behind."""

    def on_trial_error(self, iteration, trials, trial, **info):
        cfg, rt = trial.config["trial"], trial.config["runtime"]
        try:
            record_lost_trial(cfg, rt["results"], rt["sweep"], summarize_tune_error(_tune_error_text(trial)))
        except Exception as e:  # never let bookkeeping crash the driver
            print(f"robustsweep: could not record failure of {cfg.get('trial_id')}: {e}", file=sys.stderr)


def lost_trials_callback() -> RecordLostTrials:
    return RecordLostTrials()
