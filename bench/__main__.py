"""``python -m bench`` (or ``robustsweep bench``): every performance claim as a ratio against a baseline run in the
same process, written as JSON plus a readable table. See bench/README.md for what each figure compares.

    python -m bench                       # full size (minutes, on a loaded 2-core machine ~10 min)
    python -m bench --size tiny           # seconds: the smoke test's size, so the benchmarks never rot
    python -m bench --only store --trials 100000 --status-only     # the 100,000-trial status figure
    python -m bench --only sweep --sweep-spec quickstart,deep_bayes_digits   # both sweep-overhead figures
    python -m bench --device cuda         # on a GPU node: also the fractional-GPU packing figure (suite gpu)
"""
from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from pathlib import Path
from typing import Any

SUITES = ("attacks", "sweep", "store", "gpu")  # gpu: run by default only with --device cuda


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
            if "ratio_lo" in node:
                detail += f"; per-run ratios {node['ratio_lo']:.2f}-{node['ratio_hi']:.2f}"
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
    g = report.get("gpu")
    if g:
        lines.append("")
        kind = "a logical GPU (Ray resources only; the trials ran on the CPU)" if g["logical_gpu"] else "one GPU"
        lines.append(f"gpu packing, {g['sweep']} on {kind}:")
        for r in (v for k, v in g.items() if k.startswith("pack")):
            util = "n/a" if r["gpu_util_mean"] is None else f"{r['gpu_util_mean']:.0f}%"
            lines.append(f"  {r['packed']} at once (gpus_per_trial {r['gpus_per_trial']:.2f}): {r['ok']}/{r['trials']} "
                         f"trials in {r['wall_s']:.1f} s, {r['trials_per_s']:.3f} trials/s, GPU utilisation {util}")
    st = report.get("store")
    if st:
        lines.append("")
        lines.append(f"store, {st['trials']} trials x {st['rows_per_trial']} rows (seconds; command = subprocess)")
        for k in ("status", "results", "query"):
            lines.append(f"  {k:<8} before compact: fn {st['before_s'][k]:.3f} / command {st['cli_before_s'][k]:.2f}"
                         f"   after: fn {st['after_s'][k]:.3f} / command {st['cli_after_s'][k]:.2f}")
        lines.append(f"  without the read cache: fn status {st['uncached_s']['status']:.3f} / results "
                     f"{st['uncached_s']['results']:.3f} / query {st['uncached_s']['query']:.3f}; the read that writes "
                     f"it {st['cache_cold_s']:.2f}, as a `results` command {st['cli_cold_s']['results']:.2f}")
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
    default_only = ",".join(SUITES)
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(SUITES)} (default: all; gpu "
                                                 f"only with --device cuda)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--trials", type=int, default=None, help="store: number of fake trials (default 10,000)")
    ap.add_argument("--status-only", action="store_true", help="store: only time `status` (for 100,000 trials)")
    ap.add_argument("--sweep-backend", choices=["ray", "inline"], default="ray",
                    help="sweep: inline runs the trials through run_logged in this process (no Ray start; "
                         "what the smoke test uses)")
    ap.add_argument("--sweep-spec", default="quickstart",
                    help="sweep: comma-separated sweeps of bench/bench_sweep.py SPECS (quickstart, deep_bayes_digits); "
                         "the first is the `sweep` figure, the others `sweep.<name>`")
    ap.add_argument("--sweep-address", default=None,
                    help="sweep: run on this running Ray cluster (e.g. `auto` after `ray start --head`) instead of "
                         "starting Ray per sweep: the figure without Ray's start-up (the serial loop is unchanged)")
    ap.add_argument("--out", default=None,
                    help="JSON report path (default bench/results-<host>-<size>.json; -<size>-<suites>.json for --only a "
                         "subset, -status.json for --status-only)")
    ap.add_argument("--gpu-packs", default="1,2,4",
                    help="gpu: trials packed on one GPU (gpus_per_trial 1/k), compared with one trial per GPU")
    a = ap.parse_args(argv)
    only = [s.strip() for s in (a.only or default_only).split(",") if s.strip()]
    if a.only is None and not a.device.startswith("cuda"):
        only.remove("gpu")  # without CUDA the packing figure only measures CPU contention (ask for it with --only)
    try:
        packs = tuple(int(k) for k in a.gpu_packs.split(","))
    except ValueError:
        ap.error(f"--gpu-packs {a.gpu_packs!r}: expected comma-separated integers such as 1,2,4")
    if any(k < 1 for k in packs):
        ap.error("--gpu-packs: every k must be >= 1")
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

        kw = {"backend": a.sweep_backend, "address": a.sweep_address}
        report["sweep"] = bench_sweep.run(a.size, a.device, spec_name=names[0], **kw)
        for n in names[1:]:
            report["sweep"][n] = bench_sweep.run(a.size, a.device, spec_name=n, **kw)
    if "gpu" in only:
        from bench import bench_gpu

        report["gpu"] = bench_gpu.run(a.size, a.device, packs)
    if "store" in only:
        from bench import bench_store

        report["store"] = bench_store.run(a.size, a.trials)
    bad = {k: v for k, v in ratios(report).items() if not (math.isfinite(v) and v > 0)}
    # never replace a full run: a status-only or partial (--only) run gets its own default file
    kind = "status" if set(report) == {"host", "size", "device", "store_status"} else a.size
    default_suites = {s for s in SUITES if s != "gpu" or a.device.startswith("cuda")}
    if kind == a.size and set(only) != default_suites:
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
