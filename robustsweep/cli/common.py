"""Pieces every command group shares: exit codes, the error line, the common options, the end-of-run summary."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from robustsweep.config.scales import SCALES
from robustsweep.errors import EXIT_OK, EXIT_TRIALS_FAILED, EXIT_USAGE
from robustsweep.runners.base import Runner

__all__ = ["EXIT_OK", "EXIT_TRIALS_FAILED", "EXIT_USAGE", "add_backend", "add_local", "add_results", "add_runtime",
           "add_scale", "err", "execute", "finish", "make_backend", "preflight"]


def err(msg: str) -> int:
    print(f"robustsweep: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=os.environ.get("ROBUSTSWEEP_RESULTS", "results"),
                   help="results folder holding one sub-folder per sweep (default: ./results, "
                        "or $ROBUSTSWEEP_RESULTS)")


def add_scale(p: argparse.ArgumentParser, default_help: str) -> None:
    """``--scale ci|mini|paper`` and ``--smoke`` (robustsweep/config/scales.py)."""
    p.add_argument("--scale", choices=list(SCALES), default=None,
                   help="size of the experiment: paper (the paper's data and models, for a GPU cluster), mini (the "
                        "paper's MNIST models and settings on 5,000 real MNIST digits, under an hour on a laptop) "
                        "or ci (the same grid on digits / two-rings, minutes on a laptop); default: "
                        f"{default_help}. "
                        "The sweep is named <name>-<scale>")
    p.add_argument("--smoke", action="store_true",
                   help="shrink to the smallest run that still fills every table cell (1 epoch, a few test "
                        "examples, one seed, 3 attack steps of the same total travel); sweep <name>-<scale>-smoke")


def add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="folder with staged data sets (default: $ROBUSTSWEEP_DATA or ~/.cache/robustsweep/data)")
    p.add_argument("--cache-dir", default=None,
                   help="trained-model cache (default: <results>/.model-cache); share it between sweeps to "
                        "train each distinct model once")
    p.add_argument("--device", default=None, help="auto (GPU when present), cpu, cuda, cuda:1 … "
                                                  "(default: the spec's eval.device)")
    p.add_argument("--no-preflight", action="store_true",
                   help="skip the pre-launch check that data sets are staged, weight files exist and the results "
                        "folder is writable (e.g. when only the compute nodes see the data root)")


def preflight(a: argparse.Namespace, trials: list[dict[str, Any]], results: str | Path) -> None:
    """Refuse (exit 2, one message, nothing written or launched) when ``trials`` cannot run here: data not staged,
    weight files missing, results folder or model cache not writable (robustsweep/runners/preflight.py)."""
    if getattr(a, "no_preflight", False):
        return
    from robustsweep.runners.preflight import preflight as check

    check(trials, results, data_root=getattr(a, "data_root", None), cache_dir=getattr(a, "cache_dir", None))


def add_local(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpus", type=int, default=None, help="CPUs for the local Ray (default: all cores)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="at most this many trials at once (default: as many as CPUs/GPUs allow)")
    p.add_argument("--address", default=None, help="connect to a running Ray cluster instead of starting one")


def finish(results: Path | str, sweep: str, summary) -> int:
    """Print the outcome, the compact pivot summary and the failures; exit code says whether anything failed.

    The summary is one block per attack (config rows × grid values, mean ± std over seeds of the accuracy under
    attack, clean accuracy first). If it cannot be built the trials' outcome and failures are still printed.
    """
    from robustsweep.report import aggregate

    print(f"\n{summary.ok}/{summary.total} trials ok, {summary.failed} failed, {summary.elapsed_s:.0f}s")
    try:
        print(aggregate.format_pivot(aggregate.sweep_pivot(results, sweep)))
        print(f"(full table: `robustsweep results {sweep} --long`; report: `robustsweep report {sweep}`)")
    except FileNotFoundError:
        pass
    except Exception as e:  # the trials' files are safe; only the summary could not be built
        print(f"(summary table unavailable: {type(e).__name__}: {e}; the trial files are intact, try "
              f"`robustsweep results {sweep}`)", file=sys.stderr)
    for tid, err in summary.errors.items():
        print(f"FAILED {tid}: {err}\n  log: {Path(results) / sweep / 'logs' / (tid + '.log')}", file=sys.stderr)
    if summary.failed:
        print(f"{summary.failed} trial(s) failed; fix the cause, then `robustsweep resume {sweep}` reruns only "
              f"those", file=sys.stderr)
        return EXIT_TRIALS_FAILED
    return EXIT_OK


# --------------------------------------------------------------------------------------------------- backends
def add_backend(p: argparse.ArgumentParser, default: str | None, help_text: str) -> None:
    """``--backend NAME`` (the registered backends, robustsweep/runners/backends/) and every backend's own flags."""
    from robustsweep.runners.base import backend_names, get_backend

    p.add_argument("--backend", choices=backend_names(), default=default, help=help_text)
    for name in backend_names():
        get_backend(name).add_arguments(p)


def make_backend(name: str, a: argparse.Namespace, spec: Any) -> Runner:
    """Build the named backend's runner; its option errors (a UsageError) surface before anything is written."""
    from robustsweep.runners.base import get_backend

    return get_backend(name).make(a, spec)


def execute(a: argparse.Namespace, sw: Any, trials: list[dict[str, Any]], backend: Runner, *,
            restart_errored: bool, command: str) -> int:
    """Hand ``trials`` to ``backend`` and report: the run's summary, or the submitted job (and wait if asked)."""
    from robustsweep.core.runtime import runtime_for

    rt = runtime_for(sw, data_root=a.data_root, cache_dir=a.cache_dir, device=a.device)
    rt.fresh_training = restart_errored  # every mode (local, ray, array) hands the runtime to its trials
    outcome = backend.run(sw, trials, rt, restart_errored=restart_errored, command=command)
    if outcome.summary is not None:
        return finish(sw.results, sw.name, outcome.summary)
    if outcome.job is None:
        print(f"sweep {sw.name}: all {len(sw.trials)} trials already done; nothing submitted")
        return EXIT_OK
    from robustsweep.runners.base import get_backend

    get_backend(backend.name).print_submitted(outcome.job, sw, len(trials))
    return _wait_and_report(sw) if getattr(a, "wait", False) else EXIT_OK


def _wait_and_report(sw: Any, poll_s: float = 3.0) -> int:
    from robustsweep.sweep.jobs import wait_until_idle
    from robustsweep.sweep.status import print_status, sweep_status

    wait_until_idle([sw.dir], poll_s)
    st = sweep_status(sw.results, sw.name)
    print_status(st, results=str(sw.results))
    return EXIT_TRIALS_FAILED if st.count("failed") or st.count("pending") else EXIT_OK
