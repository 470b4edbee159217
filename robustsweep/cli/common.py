"""Pieces every command group shares: exit codes, the error line, the common options, the end-of-run summary."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from robustsweep.errors import EXIT_OK, EXIT_TRIALS_FAILED, EXIT_USAGE

__all__ = ["EXIT_OK", "EXIT_TRIALS_FAILED", "EXIT_USAGE", "add_local", "add_results", "add_runtime", "err", "finish"]


def err(msg: str) -> int:
    print(f"robustsweep: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=os.environ.get("ROBUSTSWEEP_RESULTS", "results"),
                   help="results folder holding one sub-folder per sweep (default: ./results, "
                        "or $ROBUSTSWEEP_RESULTS)")


def add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="folder with staged data sets (default: $ROBUSTSWEEP_DATA or ~/.cache/robustsweep/data)")
    p.add_argument("--cache-dir", default=None,
                   help="trained-model cache (default: <results>/.model-cache); share it between sweeps to "
                        "train each distinct model once")
    p.add_argument("--device", default=None, help="auto (GPU when present), cpu, cuda, cuda:1 … "
                                                  "(default: the spec's eval.device)")


def add_local(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpus", type=int, default=None, help="CPUs for the local Ray (default: all cores)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="at most this many trials at once (default: as many as CPUs/GPUs allow)")
    p.add_argument("--address", default=None, help="connect to a running Ray cluster instead of starting one")


def finish(results: Path | str, sweep: str, summary) -> int:
    """Print the summary table and failures; exit code says whether anything failed."""
    from robustsweep.report.aggregate import sweep_table, to_markdown

    print(f"\n{summary.ok}/{summary.total} trials ok, {summary.failed} failed, {summary.elapsed_s:.0f}s")
    try:
        table = sweep_table(results, sweep, ("clean_accuracy", "adv_accuracy"))
        print(to_markdown(table, digits=3))
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
