"""``robustsweep compact | bench``: store maintenance and the benchmark suite (hooked in by cli/__init__.py)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from robustsweep.cli.common import EXIT_OK, add_results, err


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compact", help="merge a sweep's finished trial files into a few large Parquet files",
                       description="Merge the ok trial files of SWEEP into large Parquet files "
                                   "(trials/compacted-*.parquet) and swap them in atomically: a reader sees the "
                                   "sweep before or after, a crash loses nothing, resume stays exactly once, "
                                   "and compacting again without new trials does nothing. Queries over "
                                   "thousands of trials become a few-file scan. Safe while a sweep runs.")
    p.add_argument("sweep")
    add_results(p)
    p.set_defaults(handler=cmd_compact)

    p = sub.add_parser("bench", help="run the benchmark suite (bench/, needs a source checkout)",
                       description="Same as `python -m bench` from the repository root: attack throughput vs "
                                   "torchattacks, sweep overhead, store reads before/after compact; a JSON "
                                   "report plus a table, every figure a ratio against a baseline run in the same "
                                   "process.")
    p.add_argument("--size", choices=["tiny", "full"], default="full", help="tiny: the smoke-test size (seconds)")
    p.add_argument("--only", default=None, help="comma-separated subset of attacks, sweep, store")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--trials", default=None, help="store: number of fake trials (default 10,000)")
    p.add_argument("--status-only", action="store_true", help="store: only time `status` (e.g. --trials 100000)")
    p.add_argument("--sweep-backend", choices=["ray", "inline"], default=None,
                   help="sweep: inline skips Ray (runs the trials in this process)")
    p.add_argument("--sweep-spec", default=None,
                   help="sweep: comma-separated sweeps to measure (quickstart, deep_bayes_digits; default quickstart)")
    p.add_argument("--out", default=None,
                   help="JSON report path (default bench/results-<host>-<size>.json; -<size>-<suites>.json for --only "
                        "a subset, -status.json for --status-only)")
    p.set_defaults(handler=cmd_bench)


def cmd_compact(a: argparse.Namespace) -> int:
    from robustsweep.store.atomic import disk_error
    from robustsweep.store.compact import compact
    from robustsweep.store.parquet import sweep_dir

    try:
        r = compact(a.results, a.sweep)
    except FileNotFoundError as e:
        return err(str(e))
    except OSError as e:  # a read-only, full or unwritable sweep folder: one line (compaction is atomic: nothing lost)
        e2 = disk_error(e, sweep_dir(a.results, a.sweep))
        if e2 is e:
            raise
        return err(f"{e2}; compaction left the sweep as it was")
    if r.noop:
        print(f"sweep {a.sweep}: nothing to compact (generation {r.generation}, {r.parts} part(s), {r.rows} rows)")
    else:
        print(f"sweep {a.sweep}: merged {r.merged_trials} trial file(s) into {r.parts} part(s) "
              f"(generation {r.generation}, {r.rows} rows); {r.deleted_files} file(s) removed")
    return EXIT_OK


def cmd_bench(a: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").exists():
        return err(f"the benchmark suite lives in the source checkout's bench/ folder (not found under {root})")
    args = ["--size", a.size] + (["--status-only"] if a.status_only else [])
    for opt in ("only", "device", "trials", "sweep_backend", "sweep_spec", "out"):
        if getattr(a, opt) is not None:
            args += [f"--{opt.replace('_', '-')}", str(getattr(a, opt))]
    return subprocess.call([sys.executable, "-m", "bench", *args], cwd=root)
