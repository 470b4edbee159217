"""Command line: one parser, one module per command group.

``local`` holds run / results / query / list, ``cluster`` holds submit / status / resume, ``report`` holds report
(tables, figures, report.md/html from the Parquet files), ``reproduce`` runs one paper's experiments and writes its
report, ``store`` holds compact (merge a sweep's trial files) and bench (the benchmark suite), ``data`` holds stage
(MNIST from a registry package into the data root). Exit codes (see :mod:`robustsweep.errors`): 0 all good; 1 some
trials failed (their errors are in the store and printed); 2 bad input or a cluster set-up problem -- nothing was
started. Errors of the tool's own family are turned into that one line and exit code here, once.
"""
from __future__ import annotations

import argparse
import sys

from robustsweep.cli import cluster, data, local, report, reproduce, store
from robustsweep.cli.common import err, finish
from robustsweep.errors import RobustSweepError

__all__ = ["build_parser", "finish", "main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="robustsweep",
        description="Sweeps over generative classifiers and adversarial attacks: an experiment file (YAML) is "
                    "expanded into trials; each trial trains one model and evaluates its whole attack grid; "
                    "each finished trial writes one Parquet file under <results>/<sweep>/trials/.",
        epilog="Start with: robustsweep run experiments/quickstart.yaml   then: robustsweep results quickstart   "
               "and: robustsweep report quickstart --out reports",
    )
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    local.add_parsers(sub)
    cluster.add_parsers(sub)
    report.add_parsers(sub)
    reproduce.add_parsers(sub)
    store.add_parsers(sub)
    data.add_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except RobustSweepError as e:
        err(str(e))
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
