"""``robustsweep submit | status | resume``: argparse wiring for the cluster commands (hooked in by cli.py).

Exit codes follow cli.py: 0 ok; 1 trials failed (``--wait`` / local runs); 2 bad input or a cluster problem
the user must fix (bad option, no such partition, no sbatch, results not shared, sweep still running) --
in which case nothing was submitted.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

from robustsweep.cli.common import (
    EXIT_OK,
    EXIT_TRIALS_FAILED,
    add_local,
    add_results,
    add_runtime,
    err,
    finish,
)


def _add_slurm_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("SLURM options (override the experiment file's slurm: section)")
    g.add_argument("--mode", choices=["ray", "array"], default=None,
                   help="ray: one allocation running a Ray cluster + Tune driver (default); array: one SLURM array "
                        "task per trial, no long-lived driver")
    g.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's default)")
    g.add_argument("--nodes", type=int, default=None, help="nodes for the Ray cluster (ray mode; default 1)")
    g.add_argument("--gpus-per-node", type=int, default=None, help="GPUs per node (default 0)")
    g.add_argument("--cpus-per-node", type=int, default=None, help="CPUs per node (ray) / per task (array)")
    g.add_argument("--mem", default=None, help="memory per node, e.g. 32G")
    g.add_argument("--time", default=None, help="time limit: minutes, HH:MM:SS or D-HH:MM:SS (default 01:00:00)")
    g.add_argument("--account", default=None)
    g.add_argument("--qos", default=None)
    g.add_argument("--constraint", default=None, help="node features, e.g. a100")
    g.add_argument("--array-parallelism", type=int, default=None,
                   help="array mode: at most this many tasks at once (default 16)")
    g.add_argument("--allow-local-results", action="store_true",
                   help="accept a results folder that looks node-local (e.g. /tmp) even with several nodes")
    g.add_argument("--wait", action="store_true",
                   help="block until the job(s) finish, then print the status (exit 1 if trials failed)")


def _slurm_flags(a: argparse.Namespace) -> dict[str, Any]:
    from robustsweep.config.slurm_options import FLAG_FIELDS

    return {k: getattr(a, k, None) for k in FLAG_FIELDS}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a sweep to SLURM (returns at once with the job id)",
                       description="Validate SPEC, write the sweep folder, and submit its unfinished trials as one "
                                   "SLURM job via submitit. The results folder must be visible from the compute "
                                   "nodes (a shared filesystem).")
    p.add_argument("spec", help="experiment file (YAML)")
    p.add_argument("--backend", choices=["slurm", "local"], default="slurm",
                   help="slurm (default) or local (same as `robustsweep run`)")
    p.add_argument("--name", help="sweep name (default: the spec's name)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set train.epochs=2 (repeatable)")
    add_results(p)
    add_runtime(p)
    add_local(p)
    _add_slurm_flags(p)
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("status", help="SLURM state and trial counts of a sweep; errors and logs of failed trials")
    p.add_argument("sweep")
    add_results(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("resume", help="run only the failed and never-run trials of a sweep (locally or on SLURM)",
                       description="Finished trials (an ok Parquet file) are never rerun. Refuses while a job of "
                                   "the sweep is still queued or running.")
    p.add_argument("sweep")
    p.add_argument("--backend", choices=["slurm", "local"], default=None,
                   help="where to run (default: slurm if the sweep was submitted to SLURM, else local)")
    p.add_argument("--restart-errored", action="store_true",
                   help="start failed trials from scratch instead of from their last Tune checkpoint")
    add_results(p)
    add_runtime(p)
    add_local(p)
    _add_slurm_flags(p)
    p.set_defaults(handler=cmd_resume)


# ------------------------------------------------------------------------------------------ helpers
def _runtime(a: argparse.Namespace, sw: Any):
    from robustsweep.core.trial import Runtime

    return Runtime(results=str(sw.results), sweep=sw.name, data_root=a.data_root, cache_dir=a.cache_dir,
                   device=a.device or sw.spec.eval.device, eval_batch_size=sw.spec.eval.batch_size)


def _run_local(a: argparse.Namespace, sw: Any, restart_errored: bool) -> int:
    from robustsweep.runners.tune import run_pending

    summary = run_pending(sw, _runtime(a, sw), cpus_per_trial=sw.spec.resources.cpus_per_trial,
                          gpus_per_trial=sw.spec.resources.gpus_per_trial, address=a.address, cpus=a.cpus,
                          max_concurrent=a.max_concurrent, restart_errored=restart_errored)
    return finish(sw.results, sw.name, summary)


def _submit_slurm(a: argparse.Namespace, sw: Any, trials: list[dict[str, Any]], restart_errored: bool,
                  command: str) -> int:
    from robustsweep.config.slurm_options import SlurmOptionsError
    from robustsweep.runners.slurm.checks import SlurmSetupError
    from robustsweep.runners.slurm.submit import (
        print_submitted,
        resolve_options,
        submit,
    )

    try:
        opts = resolve_options(sw.spec.slurm, _slurm_flags(a))
        if a.allow_local_results:
            opts = opts.model_copy(update={"allow_local_results": True})
        rec = submit(sw, opts, _runtime(a, sw), cpus_per_trial=sw.spec.resources.cpus_per_trial,
                     gpus_per_trial=sw.spec.resources.gpus_per_trial, trials=trials,
                     restart_errored=restart_errored, max_concurrent=a.max_concurrent, command=command)
    except (SlurmOptionsError, SlurmSetupError) as e:
        return err(str(e))
    if rec is None:
        print(f"sweep {sw.name}: all {len(sw.trials)} trials already done; nothing submitted")
        return EXIT_OK
    print_submitted(rec, sw, len(trials))
    if a.wait:
        return _wait_and_report(sw)
    return EXIT_OK


def _wait_and_report(sw: Any, poll_s: float = 3.0) -> int:
    from robustsweep.sweep.jobs import active_jobs, read_records
    from robustsweep.sweep.status import print_status, sweep_status

    while active_jobs(read_records(sw.dir)):
        time.sleep(poll_s)
    st = sweep_status(sw.results, sw.name)
    print_status(st, results=str(sw.results))
    return EXIT_TRIALS_FAILED if st.count("failed") or st.count("pending") else EXIT_OK


# ------------------------------------------------------------------------------------------ commands
def cmd_submit(a: argparse.Namespace) -> int:
    from robustsweep.config.spec import SpecError, load_spec
    from robustsweep.sweep.folder import SweepExists, prepare_sweep
    from robustsweep.sweep.resume import ResumeBlocked, ensure_nothing_running

    try:
        spec = load_spec(a.spec, a.overrides)
    except SpecError as e:
        return err(str(e))
    if a.backend == "slurm":  # option errors before writing anything
        from robustsweep.config.slurm_options import SlurmOptionsError, resolve_options

        try:
            resolve_options(spec.slurm, _slurm_flags(a))
        except SlurmOptionsError as e:
            return err(str(e))
    try:
        sw = prepare_sweep(spec, a.results, a.name)
    except SweepExists as e:
        return err(str(e))
    try:
        ensure_nothing_running(sw)
    except ResumeBlocked as e:
        return err(str(e))
    if a.backend == "local":
        return _run_local(a, sw, restart_errored=False)
    return _submit_slurm(a, sw, sw.pending(), restart_errored=False, command="submit")


def cmd_status(a: argparse.Namespace) -> int:
    from robustsweep.sweep.status import print_json, print_status, sweep_status

    try:
        st = sweep_status(a.results, a.sweep)
    except FileNotFoundError as e:
        return err(str(e))
    if a.json:
        print_json(st)
    else:
        print_status(st, results=a.results)
    return EXIT_OK


def cmd_resume(a: argparse.Namespace) -> int:
    from robustsweep.sweep.folder import load_sweep
    from robustsweep.sweep.jobs import read_records
    from robustsweep.sweep.resume import (
        ResumeBlocked,
        clear_stale_markers,
        ensure_nothing_running,
        plan_resume,
    )

    try:
        sw = load_sweep(a.results, a.sweep)
    except FileNotFoundError as e:
        return err(str(e))
    try:
        ensure_nothing_running(sw)
    except ResumeBlocked as e:
        return err(str(e))
    plan = plan_resume(sw)
    if not plan.trials:
        print(f"sweep {sw.name}: all {len(sw.trials)} trials done; nothing to resume")
        return EXIT_OK
    clear_stale_markers(sw)
    backend = a.backend or ("slurm" if read_records(sw.dir) else "local")
    print(f"sweep {sw.name}: resuming {len(plan.trials)} of {len(sw.trials)} trials "
          f"({len(plan.failed)} failed, {len(plan.missing)} never finished) on {backend}")
    if backend == "local":
        return _run_local(a, sw, restart_errored=a.restart_errored)
    return _submit_slurm(a, sw, plan.trials, restart_errored=a.restart_errored, command="resume")

