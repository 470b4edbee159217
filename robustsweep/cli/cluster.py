"""``robustsweep submit | status | resume``: argparse wiring for the cluster commands (hooked in by cli.py).

Exit codes follow cli.py: 0 ok; 1 trials failed (``--wait`` / local runs); 2 bad input or a cluster problem
the user must fix (bad option, no such partition, no sbatch, results not shared, sweep still running) --
in which case nothing was submitted.
"""
from __future__ import annotations

import argparse

from robustsweep.cli.common import (
    EXIT_OK,
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


def add_slurm_flags(p: argparse.ArgumentParser) -> None:
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a sweep to SLURM (returns at once with the job id)",
                       description="Validate SPEC, write the sweep folder, and submit its unfinished trials as one "
                                   "SLURM job via submitit. The results folder must be visible from the compute "
                                   "nodes (a shared filesystem).")
    p.add_argument("spec", help="experiment file (YAML)")
    p.add_argument("--backend", choices=["slurm", "local"], default="slurm",
                   help="slurm (default) or local (same as `robustsweep run`)")
    p.add_argument("--name", help="sweep name (default: the spec's name, plus -<scale> for two-size files)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value after --scale, e.g. --set train.epochs=2 (repeatable)")
    add_scale(p, "paper when the file offers it")
    add_results(p)
    add_runtime(p)
    add_local(p)
    add_slurm_flags(p)
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
                   help="train the rerun trials from scratch: their training checkpoints (saved every 30 s next to "
                        "the model cache) are deleted, and Tune restarts its errored trials instead of restoring "
                        "them; without it a trial interrupted mid-training continues where it stopped (same weights)")
    p.add_argument("--scale", choices=list(SCALES), default=None,
                   help="the sweep is SWEEP-<scale> (as run/submit name it) when SWEEP itself does not exist; "
                        "refused when the sweep found was run at another scale")
    add_results(p)
    add_runtime(p)
    add_local(p)
    add_slurm_flags(p)
    p.set_defaults(handler=cmd_resume)


# ------------------------------------------------------------------------------------------ commands
def cmd_submit(a: argparse.Namespace) -> int:
    from robustsweep.config.spec import load_spec
    from robustsweep.sweep.folder import prepare_sweep
    from robustsweep.sweep.resume import ensure_nothing_running

    spec = load_spec(a.spec, a.overrides, scale=a.scale, smoke=a.smoke, prefer="paper")
    backend = make_backend(a.backend, a, spec)  # option errors before anything is written
    preflight(a, spec.expand(), a.results)  # data staged, weights there, results writable: before any write
    sw = prepare_sweep(spec, a.results, a.name)
    ensure_nothing_running(sw)
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
    from robustsweep.sweep.folder import load_sweep, resolve_sweep_name
    from robustsweep.sweep.jobs import read_records
    from robustsweep.sweep.resume import (
        clear_stale_markers,
        ensure_nothing_running,
        plan_resume,
    )

    sw = load_sweep(a.results, resolve_sweep_name(a.results, a.sweep, a.scale))
    if a.scale and sw.spec.scale and sw.spec.scale != a.scale:
        return err(f"sweep {sw.name!r} was run at scale {sw.spec.scale}, not {a.scale}; drop --scale or name the "
                   f"{a.scale} sweep ({a.sweep}-{a.scale})")
    ensure_nothing_running(sw)
    plan = plan_resume(sw)
    if not plan.trials:
        print(f"sweep {sw.name}: all {len(sw.trials)} trials done; nothing to resume")
        return EXIT_OK
    name = a.backend or ("slurm" if read_records(sw.dir) else "local")
    backend = make_backend(name, a, sw.spec)
    preflight(a, plan.trials, sw.results)
    clear_stale_markers(sw)
    print(f"sweep {sw.name}: resuming {len(plan.trials)} of {len(sw.trials)} trials "
          f"({len(plan.failed)} failed, {len(plan.missing)} never finished) on {name}")
    return execute(a, sw, plan.trials, backend, restart_errored=a.restart_errored, command="resume")
