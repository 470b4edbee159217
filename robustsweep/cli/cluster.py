"""``robustsweep submit | status | resume | cancel``: argparse wiring for the cluster commands (hooked in by cli.py).

The backends and their flags come from the registry (robustsweep/runners/backends/): nothing here names a scheduler.
Exit codes follow cli.py: 0 ok; 1 trials failed (``--wait`` / local runs); 2 bad input or a cluster problem
the user must fix (bad option, no such partition, no sbatch, results not shared, sweep still running) --
in which case nothing was submitted.
"""
from __future__ import annotations

import argparse
import sys

from robustsweep.cli.common import (
    EXIT_OK,
    add_backend,
    add_local,
    add_results,
    add_runtime,
    add_scale,
    err,
    execute,
    make_backend,
    preflight,
)
from robustsweep.config.scales import SCALES


def add_backend_flags(p: argparse.ArgumentParser, default: str | None, help_text: str) -> None:
    """``--backend`` (choices: the registered backends), each backend's own flags (the SLURM options …), ``--wait``."""
    add_backend(p, default, help_text)
    p.add_argument("--wait", action="store_true",
                   help="block until the submitted job(s) finish, then print the status (exit 1 if trials failed)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from robustsweep.runners.backends import RUN_HERE, SUBMIT_TO
    from robustsweep.runners.base import get_backend

    p = sub.add_parser("submit", help=f"submit a sweep to {get_backend(SUBMIT_TO).title} (returns at once with the job id)",
                       description="Validate SPEC, write the sweep folder, and submit its unfinished trials as one "
                                   "job to the backend's scheduler. The results folder must be visible from the "
                                   "compute nodes (a shared filesystem).")
    p.add_argument("spec", help="experiment file (YAML)")
    p.add_argument("--name", help="sweep name (default: the spec's name, plus -<scale> for two-size files)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value after --scale, e.g. --set train.epochs=2 (repeatable)")
    add_scale(p, "paper when the file offers it")
    add_results(p)
    add_runtime(p)
    add_local(p)
    add_backend_flags(p, SUBMIT_TO, f"where to run: {SUBMIT_TO} (default), or {RUN_HERE} (same as `robustsweep run`)")
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("status", help="job states and trial counts of a sweep; errors and logs of failed trials")
    p.add_argument("sweep")
    add_results(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("resume", help="run only the failed and never-run trials of a sweep (here or submitted)",
                       description="Finished trials (an ok Parquet file) are never rerun. Refuses while a job of "
                                   "the sweep is still queued or running.")
    p.add_argument("sweep")
    p.add_argument("--restart-errored", action="store_true",
                   help="train the rerun trials from scratch: their training checkpoints (saved every 30 s next to "
                        "the model cache) are deleted, and Tune restarts its errored trials instead of restoring "
                        "them; without it a trial interrupted mid-training continues where it stopped (same weights)")
    p.add_argument("--scale", choices=list(SCALES), default=None,
                   help="the sweep is SWEEP-<scale> (as run/submit name it) when SWEEP itself does not exist; "
                        "refused when the sweep found was run at another scale")
    add_results(p)
    add_runtime(p)
    add_local(p)
    add_backend_flags(p, None, f"where to run (default: the backend the sweep was last submitted to, else {RUN_HERE})")
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser("cancel", help="stop a sweep: cancel its queued/running jobs or its run on this machine",
                       description="Cancels the sweep's jobs that its scheduler still calls queued or running, and "
                                   "stops a run of it on this machine (as Ctrl-C would). Finished trials stay; the "
                                   "trials cut off show as pending and `resume` runs exactly them.")
    p.add_argument("sweep")
    add_results(p)
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the jobs and processes to be gone (default 120)")
    p.set_defaults(handler=cmd_cancel)


# ------------------------------------------------------------------------------------------ commands
def cmd_submit(a: argparse.Namespace) -> int:
    from robustsweep.config.spec import load_spec
    from robustsweep.sweep.folder import prepare_sweep
    from robustsweep.sweep.resume import ensure_nothing_running

    spec = load_spec(a.spec, a.overrides, scale=a.scale, smoke=a.smoke, prefer="paper")
    backend = make_backend(a.backend, a, spec)  # option errors before anything is written
    preflight(a, spec.expand(), a.results)  # data staged, weights there, results writable: before any write
    sw = prepare_sweep(spec, a.results, a.name)
    _nothing_running(sw, ensure_nothing_running)
    return execute(a, sw, sw.pending(), backend, restart_errored=False, command="submit")


def cmd_status(a: argparse.Namespace) -> int:
    from robustsweep.sweep.status import print_json, print_status, sweep_status

    st = sweep_status(a.results, a.sweep)
    if a.json:
        print_json(st)
    else:
        print_status(st, results=a.results)
    return EXIT_OK


def cmd_resume(a: argparse.Namespace) -> int:
    from robustsweep.runners.backends import RUN_HERE
    from robustsweep.sweep.folder import load_sweep, resolve_sweep_name
    from robustsweep.sweep.jobs import last_submitted
    from robustsweep.sweep.resume import (
        clear_stale_markers,
        ensure_nothing_running,
        plan_resume,
    )

    sw = load_sweep(a.results, resolve_sweep_name(a.results, a.sweep, a.scale))
    if a.scale and sw.spec.scale and sw.spec.scale != a.scale:
        return err(f"sweep {sw.name!r} was run at scale {sw.spec.scale}, not {a.scale}; drop --scale or name the "
                   f"{a.scale} sweep ({a.sweep}-{a.scale})")
    _nothing_running(sw, ensure_nothing_running)
    plan = plan_resume(sw)
    if not plan.trials:
        print(f"sweep {sw.name}: all {len(sw.trials)} trials done; nothing to resume")
        return EXIT_OK
    name = a.backend or last_submitted(sw.dir) or RUN_HERE
    backend = make_backend(name, a, sw.spec)
    preflight(a, plan.trials, sw.results)
    clear_stale_markers(sw)
    print(f"sweep {sw.name}: resuming {len(plan.trials)} of {len(sw.trials)} trials "
          f"({len(plan.failed)} failed, {len(plan.missing)} never finished) on {name}")
    return execute(a, sw, plan.trials, backend, restart_errored=a.restart_errored, command="resume")


def _nothing_running(sw, ensure) -> None:
    """``ensure(sw)`` (sweep.resume.ensure_nothing_running), its message naming ``robustsweep cancel`` of this sweep."""
    from robustsweep.runners.base import SWEEP_PLACEHOLDER
    from robustsweep.sweep.resume import ResumeBlocked

    try:
        ensure(sw)
    except ResumeBlocked as e:
        text = str(e).replace(SWEEP_PLACEHOLDER, sw.name)
        if "robustsweep cancel" not in text:
            text += f" (to stop it: robustsweep cancel {sw.name} --results {sw.results})"
        raise ResumeBlocked(text) from None


def cmd_cancel(a: argparse.Namespace) -> int:
    from robustsweep.runners.cancel import cancel_sweep
    from robustsweep.sweep.folder import load_trial_list

    sw = load_trial_list(a.results, a.sweep)  # raises a clear error for a sweep that does not exist
    res = cancel_sweep(sw.results, sw.name, sw.dir, timeout=a.timeout)
    if res.nothing:
        print(f"sweep {sw.name}: nothing is running (no queued or running job, no live run on this machine); "
              f"nothing to cancel")
        return EXIT_OK
    for title, ids in res.jobs.items():
        print(f"cancelled {title} job(s): {' '.join(ids)}")
    if res.pids:
        print(f"stopped the run on this machine (process {' '.join(map(str, res.pids))})")
    for host, tids in res.elsewhere.items():
        print(f"still running on {host} ({len(tids)} trial(s), e.g. {tids[0]}): stop that run there", file=sys.stderr)
    if res.still_active:
        return err(f"still there after {a.timeout:g} s: {' '.join(res.still_active)}; run cancel again later")
    print(f"sweep {sw.name}: {len(res.trials)} trial(s) cut off, now pending"
          + (f" ({', '.join(res.trials[:5])}{', ...' if len(res.trials) > 5 else ''})" if res.trials else ""))
    print(f"next: robustsweep resume {sw.name} --results {sw.results}   (finished trials are kept)")
    return EXIT_OK
