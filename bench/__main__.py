"""``python -m bench`` (or ``robustsweep bench``): every performance claim as a ratio against a baseline run in the
same process, written as JSON plus a readable table. See bench/README.md for what each figure compares.

    python -m bench                       # full size (minutes, on a loaded 2-core machine ~10 min)
    python -m bench --size tiny           # seconds: the smoke test's size, so the benchmarks never rot
    python -m bench --only store --trials 100000 --status-only     # the 100,000-trial status figure
    python -m bench --only sweep --sweep-spec quickstart,deep_bayes_digits   # both sweep-overhead figures
"""
from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from pathlib import Path
from typing import Any

SUITES = ("attacks", "sweep", "store")


def ratios(report: dict[str, Any]) -> dict[str, float]:
    """Every ratio of the report, flattened to ``suite.figure[.sub]`` -> value (what the table and the smoke test
    read)."""
    out: dict[str, float] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "ratio" and isinstance(v, (int, float)):
                    out[prefix] = float(v)
                elif k.endswith("_ratio") and isinstance(v, dict):
                    for kk, vv in v.items():
                        out[f"{prefix}.{k}.{kk}"] = float(vv)
                elif k.endswith("_ratio") and isinstance(v, (int, float)):
                    out[f"{prefix}.{k}"] = float(v)
                else:
                    walk(f"{prefix}.{k}" if prefix else k, v)

    walk("", {s: report[s] for s in SUITES if s in report})
    return out


def table(report: dict[str, Any]) -> str:
    lines = [f"{'figure':<44} {'ratio':>8}  detail", "-" * 100]
    for name, r in ratios(report).items():
        suite, _, fig = name.partition(".")
        node: Any = report.get(suite, {}).get(fig, {}) if suite == "attacks" else {}
        detail = ""
        if "robustsweep_img_s" in node:
            detail = f"{node['robustsweep_img_s']:.0f} vs {node['torchattacks_img_s']:.0f} img/s (torchattacks)"
        elif suite == "sweep":
            s = report["sweep"] if name == "sweep" else report["sweep"][fig]
            detail = (f"{s['sweep']}: useful-work fraction {s['useful_fraction_ray']:.2f} ({s['backend']}, "
                      f"concurrency {s['concurrency']}, {s['trials']} trials, {s['ray_wall_s']:.1f} s wall) "
                      f"vs {s['useful_fraction_serial']:.2f} (serial loop, {s['serial_wall_s']:.1f} s)")
            b = s.get("breakdown")
            if b:
                init = f", of which ray.init {b['ray_init_s']:.1f} s" if b.get("ray_init_s") is not None else ""
                detail += (f"; idle slot-s {b['idle_slot_s']:.1f} = start-up {b['startup_slot_s']:.1f} (first "
                           f"trial at {b['first_trial_start_s']:.1f} s{init}) + between trials "
                           f"{b['between_slot_s']:.1f} + tail {b['tail_slot_s']:.1f}")
        lines.append(f"{name:<44} {r:>8.2f}  {detail}")
    st = report.get("store")
    if st:
        lines.append("")
        lines.append(f"store, {st['trials']} trials x {st['rows_per_trial']} rows (seconds; command = subprocess)")
        for k in ("status", "results", "query"):
            lines.append(f"  {k:<8} before compact: fn {st['before_s'][k]:.3f} / command {st['cli_before_s'][k]:.2f}"
                         f"   after: fn {st['after_s'][k]:.3f} / command {st['cli_after_s'][k]:.2f}")
        lines.append(f"  results peak RSS {st['results_peak_mb']:.0f} MB (imports alone {st['import_peak_mb']:.0f} MB)"
                     f"; compact {st['compact_s']:.1f} s")
        dl = st.get("delta", {})
        if "query_s" in dl:
            lines.append(f"  Delta Lake, {dl['trials']} trials one commit each: {dl['append_files_s']:.0f} appends/s, "
                         f"query {dl['query_s']:.3f} s, after optimize+vacuum {dl['query_after_optimize_s']:.3f} s")
    ss = report.get("store_status")
    if ss:
        lines.append("")
        lines.append(f"store status, {ss['trials']} trials (seconds): command {ss['cli_status_s']:.2f} (median of 3), "
                     f"first on a sweep without trial_ids.json {ss['cli_status_no_sidecar_s']:.2f}; "
                     f"fn trial_status {ss['trial_status_s']:.3f}, sweep_status {ss['sweep_status_s']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["tiny", "full"], default="full")
    ap.add_argument("--only", default=",".join(SUITES), help=f"comma-separated subset of {', '.join(SUITES)}")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--trials", type=int, default=None, help="store: number of fake trials (default 10,000)")
    ap.add_argument("--status-only", action="store_true", help="store: only time `status` (for 100,000 trials)")
    ap.add_argument("--sweep-backend", choices=["ray", "inline"], default="ray",
                    help="sweep: inline runs the trials through run_logged in this process (no Ray start; "
                         "what the smoke test uses)")
    ap.add_argument("--sweep-spec", default="quickstart",
                    help="sweep: comma-separated sweeps of bench/bench_sweep.py SPECS (quickstart, deep_bayes_digits); "
                         "the first is the `sweep` figure, the others `sweep.<name>`")
    ap.add_argument("--out", default=None,
                    help="JSON report path (default bench/results-<host>-<size>.json; -<size>-<suites>.json for --only a "
                         "subset, -status.json for --status-only)")
    a = ap.parse_args(argv)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    names = [n.strip() for n in a.sweep_spec.split(",") if n.strip()]
    from bench.bench_sweep import SPECS as SWEEP_SPECS  # light: no torch or ray at import

    if not names or any(n not in SWEEP_SPECS for n in names):  # before any suite runs for minutes
        ap.error(f"--sweep-spec {a.sweep_spec!r}: expected some of {', '.join(SWEEP_SPECS)}")
    report: dict[str, Any] = {"host": socket.gethostname(), "size": a.size, "device": a.device}
    if "store" in only and a.status_only:
        from bench.bench_store import status_only

        report["store_status"] = status_only(a.trials or 100_000)
        only.remove("store")
    if "attacks" in only:
        from bench import bench_attacks

        report["attacks"] = bench_attacks.run(a.size, a.device)
    if "sweep" in only:
        from bench import bench_sweep

        report["sweep"] = bench_sweep.run(a.size, a.device, backend=a.sweep_backend, spec_name=names[0])
        for n in names[1:]:
            report["sweep"][n] = bench_sweep.run(a.size, a.device, backend=a.sweep_backend, spec_name=n)
    if "store" in only:
        from bench import bench_store

        report["store"] = bench_store.run(a.size, a.trials)
    bad = {k: v for k, v in ratios(report).items() if not (math.isfinite(v) and v > 0)}
    # never replace a full run: a status-only or partial (--only) run gets its own default file
    kind = "status" if set(report) == {"host", "size", "device", "store_status"} else a.size
    if kind == a.size and set(only) != set(SUITES):
        kind = f"{a.size}-{'-'.join(s for s in SUITES if s in only)}"
    out = Path(a.out or Path(__file__).parent / f"results-{socket.gethostname()}-{kind}.json")
    out.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"wrote {out}")
    if bad:
        print(f"non-finite or non-positive ratios: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
