"""Tune callbacks: one progress line per trial event, a retry record for each infrastructure failure Tune retries,
and a ``failed`` row for trials whose process died and will not be retried.

Which failures reach these callbacks: the trainable ends a trial whose own code failed (:class:`TrialFailed`: a bad
setting, a NaN loss, data not staged) with a ``failed`` result instead of raising, so Tune sees it *complete* and
never retries it. What Tune sees as an *error* is what killed the trial's process or actor -- a node lost, the
worker SIGKILLed or out of memory. ``tune.FailureConfig(max_failures=resources.max_retries)`` retries those on any
live node (``on_trial_recover``: we write ``<sweep>/retries/<id>.json`` and a line in the trial's log); once they
are used up Tune calls ``on_trial_error`` and the trial gets its ``failed`` row, so ``resume`` reruns it.

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
from robustsweep.store.markers import record_retry
from robustsweep.store.parquet import trial_log_path
from robustsweep.store.rows import record_lost_trial

#: the run in progress in this driver process: its pending trial ids (the only ones counted: a restored Tune
#: experiment also restarts trials that finished in the store and skip themselves), totals and counters, shared by
#: every callback object of the run (a restore followed by a fresh Tune run for what it left keeps counting).
CURRENT_RUN: dict[str, Any] = {"total": 0, "concurrency": 1, "ids": set(), "done": 0, "failed": 0, "running": set(),
                               "durations": [], "starts": {}, "t0": 0.0}


def start_run(ids: list[str], concurrency: int, already_done: list[str] = ()) -> None:
    """Reset the progress counters for a run of ``ids``; ``already_done`` were announced too but finished before
    the run began (the header's count is ``ids`` + ``already_done``: the counts must agree)."""
    CURRENT_RUN.update(total=len(ids) + len(already_done), concurrency=max(1, min(concurrency, len(ids))),
                       ids=set(ids), done=len(already_done), failed=0, running=set(), durations=[], starts={},
                       t0=time.time())


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
        result = trial.last_result or {}
        if result.get("failed"):  # the trial's own code failed: a terminal result, not a Tune error (no retry)
            CURRENT_RUN["failed"] += 1
            self._line(f"FAIL  {trial_label(trial.config['trial'])}")
            return
        CURRENT_RUN["done"] += 1
        acc = result.get("clean_accuracy")
        self._line(f"ok    {trial_label(trial.config['trial'])}" + (f" clean_acc={acc:.3f}" if acc is not None else ""))

    def on_trial_recover(self, iteration, trials, trial, **info):
        if _tid(trial) not in CURRENT_RUN["ids"]:
            return
        reason = classify_failure(last_failure(_tune_error_text(trial)))
        self._line(f"retry {trial.num_failures}/{trial.max_failures} {trial_label(trial.config['trial'])}: {reason}")

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


def last_failure(text: str | None) -> str:
    """The last failure of Tune's ``error.txt`` (it appends one ``Failure # n (occurred at …)`` block per failure)."""
    if not text:
        return ""
    blocks = text.split("Failure # ")
    return ("Failure # " + blocks[-1]).strip() if len(blocks) > 1 else text.strip()


#: (reason, lower-case fragments of Ray's error text that mean it), first match wins. Out of memory only when Ray's
#: memory monitor says so (OutOfMemoryError): the text of *any* dead worker lists "the OOM killer" among possible
#: causes, so a kernel OOM kill reads as a dead worker process. Node loss before a dead worker (its actors die too).
FAILURE_KINDS = (
    ("out of memory", ("outofmemoryerror", "running low on memory")),
    ("node lost", ("node has died", "node died", "marked dead", "node lost", "is unavailable", "socket closed")),
    ("worker process died", ("worker process", "died unexpectedly", "sigkill", "exit code", "actor died",
                             "actor is dead")),
)


def classify_failure(text: str | None) -> str:
    """A few words for an infrastructure failure Tune retries ("node lost", "worker process died", "out of
    memory"), for the progress line, the trial log and ``status``."""
    low = (text or "").lower()
    for reason, fragments in FAILURE_KINDS:
        if any(f in low for f in fragments):
            return reason
    return "infrastructure failure"


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
    """On a retried infrastructure failure, record the retry; on a Tune trial error (retries used up), record the
    trial as failed in the store if it left no file behind."""

    def on_trial_recover(self, iteration, trials, trial, **info):
        cfg, rt = trial.config["trial"], trial.config["runtime"]
        try:
            raw = last_failure(_tune_error_text(trial))
            reason, detail = classify_failure(raw), summarize_tune_error(raw)
            n = record_retry(rt["results"], rt["sweep"], cfg["trial_id"], reason, detail, trial.max_failures)
            log = trial_log_path(rt["results"], rt["sweep"], cfg["trial_id"])
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as fh:  # the trial's own log (a retry appends to it too): one story per trial
                fh.write(f"{time.strftime('%H:%M:%S')} RETRY {n}/{trial.max_failures} after {reason}: {detail}; "
                         f"Tune restarts the trial on a live node (training continues from its last checkpoint)\n")
        except Exception as e:  # never let bookkeeping crash the driver
            print(f"robustsweep: could not record the retry of {cfg.get('trial_id')}: {e}", file=sys.stderr)

    def on_trial_error(self, iteration, trials, trial, **info):
        cfg, rt = trial.config["trial"], trial.config["runtime"]
        try:
            record_lost_trial(cfg, rt["results"], rt["sweep"], summarize_tune_error(_tune_error_text(trial)))
        except Exception as e:  # never let bookkeeping crash the driver
            print(f"robustsweep: could not record failure of {cfg.get('trial_id')}: {e}", file=sys.stderr)


def lost_trials_callback() -> RecordLostTrials:
    return RecordLostTrials()
