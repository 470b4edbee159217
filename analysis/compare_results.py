"""Do two results folders hold the same rows? The check a refactoring that must not change results is held to.

Usage: ``python analysis/compare_results.py BEFORE AFTER`` -- e.g. the results of ``reproduce P --scale ci --smoke``
run with the code before and after a change (copy BEFORE's ``.model-cache`` into AFTER first, so nothing retrains).
Every sweep in AFTER is matched with BEFORE's by name and its rows by (trial, attack, param, value, n_eval); every
column both have is compared, floats to 1e-9 relative, except what differs from run to run (timings, host,
versions) and the columns a newer schema adds (``kind``, ``atk.*``). Exit 1 when anything differs.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from robustsweep.store.parquet import read_sweep

VOLATILE = {"host", "started_at", "finished_at", "trial_time_s", "attack_time_s", "train_time_s", "model_cached",
            "versions", "git_rev", "schema_version", "m.device", "kind"}
KEY = ["trial_id", "attack", "param", "value", "n_eval"]


def same(u: Any, v: Any) -> bool:
    if u == v:
        return True
    if isinstance(u, float) and isinstance(v, float):
        return math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(u) and math.isnan(v))
    if isinstance(u, list) and isinstance(v, list):
        return len(u) == len(v) and all(same(p, q) for p, q in zip(u, v))
    return False


def compare(before: Path, after: Path, sweep: str) -> list[str]:
    """The differences of one sweep, as lines (none: the same rows)."""
    a, b = read_sweep(before, sweep), read_sweep(after, sweep)
    cols = [c for c in a.columns if c not in VOLATILE and not c.startswith("atk.")]
    missing = [c for c in cols if c not in b.columns]
    if len(a) != len(b) or missing:
        return [f"{sweep}: {len(a)} vs {len(b)} rows; columns only before: {missing}"]
    a, b = a.sort(KEY, nulls_last=True).select(cols), b.sort(KEY, nulls_last=True).select(cols)
    return [f"{sweep}: {c} row {i}: {str(u)[:60]} vs {str(v)[:60]}"
            for c in cols for i, (u, v) in enumerate(zip(a[c].to_list(), b[c].to_list())) if not same(u, v)]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    before, after = map(Path, argv)
    diffs: list[str] = []
    for sd in sorted(p for p in after.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (before / sd.name).exists():
            diffs.append(f"{sd.name}: not in {before}")
            continue
        found = compare(before, after, sd.name)
        print(f"{sd.name}: " + (f"{len(found)} difference(s)" if found else "same rows"))
        diffs += found
    print("\n".join(diffs[:40]) if diffs else "ALL THE SAME")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
