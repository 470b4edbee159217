"""The Ray Tune backend: run a sweep's unfinished trials on this machine or on a given Ray cluster.

Used by ``run``, ``resume``, the SLURM head node and a requeued (pre-empted) allocation alike. Each Tune trial is
one robustsweep trial (one trained model, its whole attack grid), so Tune's per-trial scheduling cost is paid once
per model. Three rules make it exactly-once, whatever happened before:

1. the Parquet files are the record: only trials without an ``ok`` file are handed to Tune;
2. the trainable re-checks the store before running (:func:`robustsweep.core.trial.run_logged`), because Tune's
   experiment state can lag behind -- a trial may have written its file a second before a pre-emption and still be
   RUNNING in Tune's last saved state;
3. a trial whose process died without writing anything (SIGKILL, OOM, node loss) is retried by Tune on any live
   node, up to ``resources.max_retries`` times, continuing from its training checkpoint; the retries are recorded
   (``<sweep>/retries/<id>.json``, a line in the trial's log). Once they are used up it gets a ``failed`` row from
   the driver (:func:`robustsweep.runners.tune_callbacks.lost_trials_callback`), so ``resume`` reruns it. A trial
   whose own code failed (:class:`robustsweep.errors.TrialFailed`) is not retried: the trainable reports it as a
   terminal ``failed`` result instead of raising, so it never reaches Tune's failure handling.

Retries and exactly-once: an attempt Tune gave up on (a node cut off, not dead) may still finish. The store holds one
file per trial id, replaced atomically, so it can never leave a second file; the two attempts compute the same rows
(a trial is a pure function of its config and seed), and a late *failure* never replaces an ok result
(:func:`robustsweep.store.rows.write_failure`).

Tune's state (``<sweep>/tune``) is restored with ``Tuner.restore(resume_errored=...)`` only when it was written by
this module (a small ``robustsweep.json`` next to it lists its trials) and covers every pending trial; otherwise the
old state is moved aside and a fresh Tune run gets exactly the pending trials.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from robustsweep.core.runtime import Runtime
from robustsweep.runners.base import Outcome, RunSummary
from robustsweep.runners.cancel import cancel_requested
from robustsweep.store.markers import DRIVER_ENV, driver_identity
from robustsweep.store.parquet import finished_ok, trial_status, warm_read_cache
from robustsweep.store.paths import ensure_inside

TUNE_DIR = "tune"
SIDECAR = "robustsweep.json"
DRIVER_LOG = "driver.log"  # <sweep>/logs/driver.log: Ray's and Tune's own messages


# ------------------------------------------------------------------------------------------ Ray and the trainable
def route_third_party_logs(log_file: Path | None) -> None:
    """Ray's and Tune's own log lines (the "Token authentication is enabled" notice, "Started a local Ray
    instance", Tune's restore warnings, trial tracebacks) go to ``log_file`` instead of the terminal, where our
    progress lines and summary say what a user needs; None = drop them below ERROR. Idempotent."""
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    else:
        handler = logging.NullHandler()
    handler.set_name("robustsweep-third-party")
    names = ["ray", *(n for n in logging.root.manager.loggerDict if n.startswith("ray."))]
    for name in names:
        lg = logging.getLogger(name)
        for h in list(lg.handlers):  # Ray's own stderr handlers, and our handler of an earlier run
            # Ray's handlers write to the terminal (ray._private.log.PlainRayHandler is a StreamHandler)
            if h.get_name() == "robustsweep-third-party" or (isinstance(h, logging.StreamHandler)
                                                               and not isinstance(h, logging.FileHandler)):
                lg.removeHandler(h)
                if h.get_name() == "robustsweep-third-party":
                    h.close()
    top = logging.getLogger("ray")
    top.addHandler(handler)
    top.setLevel(logging.INFO)
    top.propagate = False  # the root logger's handlers (a user's basicConfig) would print them again


def ensure_ray(cpus: int | None = None, address: str | None = None, log_file: Path | None = None) -> None:
    """Start (or join at ``address``) Ray once per process. ``log_file``: Ray's messages go there
    (:func:`route_third_party_logs`) instead of the terminal."""
    import ray

    if ray.is_initialized():
        return
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=log_file is None,
                              logging_level=logging.WARNING)
    # ray.init(configure_logging=False) clears the "ray" logger's handlers, so what it logs while starting (the
    # token-authentication notice) would reach Python's last-resort stderr handler: point that at the log meanwhile
    saved = logging.lastResort
    if log_file is not None:
        route_third_party_logs(log_file)
        logging.lastResort = logging.getLogger("ray").handlers[-1]
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            # "local", not None: with None, Ray silently JOINS the last cluster a `ray start` left on this machine
            # (and refuses num_cpus there), so a laptop run would land on someone else's cluster
            ray.init(address="local", num_cpus=cpus or os.cpu_count(), **kw)
    finally:
        logging.lastResort = saved
    if log_file is not None:
        route_third_party_logs(log_file)  # our handler again, after ray.init cleared it


def quiet_tune(log_file: Path | None = None) -> None:
    """Our progress lines and summary replace Tune's reporter; failed trials' tracebacks are in their logs, Tune's
    own messages in ``log_file`` (None: dropped)."""
    route_third_party_logs(log_file)
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.WARNING if log_file is not None else logging.CRITICAL)


def attempt_header(results: str, sweep: str, trial_id: str) -> str:
    """What the trial log's first line of an attempt adds: the Ray node it runs on (hosts can share a name: two
    nodes on one machine, containers) and which attempt this is (1 + the retries the driver recorded)."""
    import ray

    from robustsweep.store.markers import read_retry, retry_path

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "?"
    attempt = 1 + len(read_retry(retry_path(results, sweep, trial_id)))
    return f", ray node {node}, attempt {attempt}"


def robustsweep_trial(config: dict[str, Any]) -> None:
    """The Tune trainable: skip a trial already in the store, else run it and report a few numbers.

    A failure of the trial's own code (:class:`TrialFailed`, its ``failed`` row already written) ends the trial
    with a ``failed`` result instead of an exception: retrying a bad setting or a NaN loss would fail the same way,
    so only the failures that kill the process (node lost, worker killed, out of memory) reach Tune's retries.

    The name is part of Tune's saved state (``Tuner.restore`` insists on the same trainable), so keep it.
    """
    from ray import tune

    from robustsweep.core.trial import run_logged
    from robustsweep.errors import TrialFailed

    cfg, rt = config["trial"], Runtime(**config["runtime"])
    try:
        rows = run_logged(cfg, rt, header=attempt_header(rt.results, rt.sweep, cfg["trial_id"]))
    except TrialFailed as e:
        tune.report({"failed": 1, "error": str(e)[:300]})
        return
    if rows is None:
        tune.report({"skipped": 1})
    else:
        tune.report({"clean_accuracy": rows[0]["clean_accuracy"], "rows": len(rows)})


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

    try:
        can = tune.Tuner.can_restore(str(exp_dir))
    except Exception as e:  # a driver killed mid-write can leave a torn state file
        return False, f"Tune's experiment state is unreadable ({type(e).__name__})"
    if not can:
        return False, "Tune's experiment state is missing or incomplete"
    return True, "Tune state intact"


def _move_aside(exp_dir: Path) -> None:
    if exp_dir.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = exp_dir.with_name(f"{exp_dir.name}.old-{stamp}-{os.getpid()}")
        os.replace(exp_dir, target)


def _trial_dirname(trial: Any) -> str:
    return trial.config["trial"]["trial_id"]


def run_pending(
    sweep: Any,
    rt: Runtime,
    *,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    address: str | None = None,
    cpus: int | None = None,
    max_concurrent: int | None = None,
    restart_errored: bool = False,
    max_retries: int | None = None,
    out: TextIO | None = None,
    announced: list[str] | None = None,
) -> RunSummary:
    """Run every trial of ``sweep`` (a :class:`robustsweep.sweep.folder.Sweep`) that has no ``ok`` Parquet file.

    ``restart_errored``: errored trials restart from scratch instead of their last Tune checkpoint.
    ``max_retries``: retries of an infrastructure failure per trial (None: the spec's ``resources.max_retries``).
    ``announced``: the trial ids the command's header promised to run. Workers of a SIGKILLed driver can outlive it
    by a moment and finish a trial between that header and this call; such trials count as done in the progress
    lines, so ``[x/M]`` keeps counting what the header said.
    """
    from ray import tune

    from robustsweep.runners import tune_callbacks

    if max_retries is None:
        max_retries = int(getattr(getattr(sweep.spec, "resources", None), "max_retries", 2))
    out = out or sys.stdout  # resolved per call: a default bound at import would outlive a replaced stdout
    t0 = time.time()
    pending = sweep.pending()
    ids = [t["trial_id"] for t in pending]
    if not pending:
        print(f"sweep {sweep.name}: all {len(sweep.trials)} trials already done", file=out, flush=True)
        return RunSummary(0, 0, 0, {}, 0.0)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    log_file = ensure_inside(Path(sweep.dir) / "logs" / DRIVER_LOG, sweep.results, "driver log")
    if address is None:  # Ray starts here: its workers inherit this, so their running markers name this driver
        os.environ[DRIVER_ENV] = driver_identity()
    ensure_ray(cpus, address, log_file=log_file)
    import ray

    from robustsweep.runners.capacity import check_capacity

    # a trial no node can hold would wait for ever (Tune only logs "insufficient resources"): refuse it now
    check_capacity(cpus_per_trial, gpus_per_trial, [n["Resources"] for n in ray.nodes() if n.get("Alive")],
                   f"the Ray cluster at {address}" if address else "the local Ray")
    if rt.threads is None:
        rt = dataclasses.replace(rt, threads=max(1, int(cpus_per_trial)))
    resources = {"cpu": cpus_per_trial} | ({"gpu": gpus_per_trial} if gpus_per_trial else {})
    trainable = tune.with_resources(robustsweep_trial, resources)
    exp_dir = Path(sweep.dir) / TUNE_DIR
    total_cpus = ray.cluster_resources().get("CPU", 1)
    concurrency = max_concurrent or max(1, int(total_cpus // max(cpus_per_trial, 1e-9)))

    # the progress lines count exactly the pending trials the command's header announced, whichever Tune run
    # (restored, then fresh for what it left) runs them
    finished_meanwhile = [i for i in (announced or []) if i not in set(ids)
                          and finished_ok(rt.results, rt.sweep, i) is not None]
    tune_callbacks.start_run(ids, concurrency, already_done=finished_meanwhile)
    if finished_meanwhile:
        print(f"{len(finished_meanwhile)} trial(s) finished since this command started (workers of an earlier, "
              f"killed run): counted as done", file=out, flush=True)
    ok, why = restorable(exp_dir, set(ids))
    ran: set[str] = set()
    if ok:
        print(f"restoring Tune state in {exp_dir} ({len(pending)} trial(s) to finish; errored trials "
              f"{'restart from scratch' if restart_errored else 'resume from their last checkpoint'})",
              file=out, flush=True)
        try:
            quiet_tune(log_file)  # before restore: its per-trial "Could not fetch metrics" warnings go to the log
            tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=not restart_errored, restart_errored=restart_errored)
            # Tune restarts every trial of its state that is not TERMINATED (ours skip themselves if done)
            tuner.fit()
            ran = set(ids)
        except Exception as e:  # unreadable/corrupt state: the Parquet files still say what is left
            logging.getLogger("ray.tune").warning("robustsweep: Tune restore failed", exc_info=True)  # -> log_file
            print(f"robustsweep: Tune restore failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); starting "
                  f"the remaining trials fresh (details: {log_file})", file=sys.stderr)
    elif exp_dir.exists():  # only worth saying when there was an earlier Tune state to restore
        print(f"starting a fresh Tune run for {len(pending)} trial(s) ({why})", file=out, flush=True)
    # trials Tune did not (re)run: fresh run, with a sidecar so a later resume can restore this state
    left = [t for t in sweep.pending() if t["trial_id"] not in ran or finished_ok(rt.results, rt.sweep,
                                                                                    t["trial_id"]) is None]
    if cancel_requested(sweep.dir, t0):  # `robustsweep cancel` stopped the restored run: start nothing more
        left = []
    if left:
        _move_aside(exp_dir)
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / SIDECAR).write_text(json.dumps(
            {"trainable": robustsweep_trial.__name__, "trial_ids": [t["trial_id"] for t in left]}))
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(left), "runtime": dataclasses.asdict(rt)},
            # warm worker processes, trial folders named by trial id
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                        trial_dirname_creator=_trial_dirname, trial_name_creator=_trial_dirname),
            run_config=tune.RunConfig(name=TUNE_DIR, storage_path=str(Path(sweep.dir)), verbose=0,
                                      callbacks=[tune_callbacks.progress_callback(),
                                                 tune_callbacks.lost_trials_callback()],
                                      failure_config=tune.FailureConfig(max_failures=max_retries)),
        )
        quiet_tune(log_file)
        tuner.fit()
    warm_read_cache(rt.results, rt.sweep)  # the analyst's first read after the run: one file, not 10,000 footers
    status = trial_status(rt.results, rt.sweep)
    n_ok = sum(1 for i in ids if status.get(i, {}).get("status") == "ok")
    lost = ("cancelled (robustsweep cancel); `robustsweep resume` runs it" if cancel_requested(sweep.dir, t0)
            else "no result file (trial crashed or was killed)")
    errors = {i: (status.get(i) or {}).get("error") or lost for i in ids if status.get(i, {}).get("status") != "ok"}
    return RunSummary(len(ids), n_ok, len(errors), errors, time.time() - t0)


@dataclasses.dataclass
class LocalBackend:
    """Ray Tune on this machine (``cpus``) or on a running Ray cluster (``address``)."""

    address: str | None = None
    cpus: int | None = None
    max_concurrent: int | None = None
    name: str = "local"

    def run(self, sweep: Any, trials: list[dict[str, Any]], runtime: Runtime, *, restart_errored: bool = False,
            command: str = "run") -> Outcome:
        res = sweep.spec.resources
        summary = run_pending(sweep, runtime, cpus_per_trial=res.cpus_per_trial, gpus_per_trial=res.gpus_per_trial,
                              address=self.address, cpus=self.cpus, max_concurrent=self.max_concurrent,
                              restart_errored=restart_errored, announced=[t["trial_id"] for t in trials])
        return Outcome(summary=summary)
