"""Command line: ``robustsweep run | results | query | list`` (+ ``submit | status | resume`` for clusters).

Exit codes: 0 all good; 1 some trials failed (their errors are in the store and printed); 2 bad input (malformed
experiment file, unknown sweep, bad option) — nothing was started.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_TRIALS_FAILED, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> int:
    print(f"robustsweep: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _add_results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=os.environ.get("ROBUSTSWEEP_RESULTS", "results"),
                   help="results folder holding one sub-folder per sweep (default: ./results, "
                        "or $ROBUSTSWEEP_RESULTS)")


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="folder with staged data sets (default: $ROBUSTSWEEP_DATA or ~/.cache/robustsweep/data)")
    p.add_argument("--cache-dir", default=None,
                   help="trained-model cache (default: <results>/.model-cache); share it between sweeps to "
                        "train each distinct model once")
    p.add_argument("--device", default=None, help="auto (GPU when present), cpu, cuda, cuda:1 … "
                                                  "(default: the spec's eval.device)")


def _add_local(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpus", type=int, default=None, help="CPUs for the local Ray (default: all cores)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="at most this many trials at once (default: as many as CPUs/GPUs allow)")
    p.add_argument("--address", default=None, help="connect to a running Ray cluster instead of starting one")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="robustsweep",
        description="Sweeps over generative classifiers and adversarial attacks: an experiment file (YAML) is "
                    "expanded into trials; each trial trains one model and evaluates its whole attack grid; "
                    "each finished trial writes one Parquet file under <results>/<sweep>/trials/.",
        epilog="Start with: robustsweep run experiments/quickstart.yaml   then: robustsweep results quickstart",
    )
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a sweep on this machine (local Ray)",
                       description="Validate SPEC, expand its search space and run every trial with Ray Tune on "
                                   "this machine. Re-running the same spec only runs trials without a result.")
    p.add_argument("spec", help="experiment file (YAML), e.g. experiments/quickstart.yaml")
    p.add_argument("--name", help="sweep name (default: the spec's name)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value, e.g. --set train.epochs=2 --set eval.n_eval=100 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the trials, run nothing")
    _add_results(p)
    _add_runtime(p)
    _add_local(p)

    p = sub.add_parser("results", help="aggregated table of a sweep (mean/std over seeds)")
    p.add_argument("sweep")
    _add_results(p)
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric columns (default: clean_accuracy,adv_accuracy,success_rate,"
                        "mean_l2,rho)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--markdown", "--md", metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--raw", action="store_true", help="print every row (no aggregation)")

    p = sub.add_parser("query", help="run polars SQL over a sweep's rows (table name: results)",
                       description='Example: robustsweep query quickstart "SELECT attack, value, '
                                   'avg(adv_accuracy) FROM results GROUP BY attack, value ORDER BY 1, 2"')
    p.add_argument("sweep")
    p.add_argument("sql")
    _add_results(p)
    p.add_argument("--csv", metavar="FILE", help="write the result as CSV instead of printing it")

    p = sub.add_parser("list", help="what the registries hold (datasets, models, attacks, detectors) or sweeps")
    p.add_argument("what", nargs="?", default="all",
                   choices=["all", "datasets", "models", "attacks", "detectors", "sweeps"])
    p.add_argument("-v", "--verbose", action="store_true", help="also show each entry's parameters")
    _add_results(p)

    try:  # cluster commands live with their backend
        from robustsweep.backends import commands

        commands.add_parsers(sub, _add_results, _add_runtime, _add_local)
    except ImportError:
        pass
    return ap


# --------------------------------------------------------------------------------------------------- commands
def cmd_run(a: argparse.Namespace) -> int:
    from robustsweep.backends.tune_runner import run_pending
    from robustsweep.spec import SpecError, load_spec
    from robustsweep.sweep import SweepExists, prepare_sweep
    from robustsweep.trial import Runtime

    try:
        spec = load_spec(a.spec, a.overrides)
    except SpecError as e:
        return _err(str(e))
    trials = spec.expand()
    if a.dry_run:
        print(f"{a.spec}: valid; {len(trials)} trials")
        for t in trials:
            print(f"  {t['trial_id']}  model={t['model']}  seed={t['seed']}")
        return EXIT_OK
    try:
        sw = prepare_sweep(spec, a.results, a.name)
    except SweepExists as e:
        return _err(str(e))
    pending = sw.pending()
    print(f"sweep {sw.name}: {len(sw.trials)} trials, {len(sw.trials) - len(pending)} already done, "
          f"{len(pending)} to run -> {sw.dir}")
    rt = Runtime(results=str(sw.results), sweep=sw.name, data_root=a.data_root, cache_dir=a.cache_dir,
                 device=a.device or spec.eval.device, eval_batch_size=spec.eval.batch_size)
    summary = run_pending(sw, rt, cpus_per_trial=spec.resources.cpus_per_trial,
                          gpus_per_trial=spec.resources.gpus_per_trial, address=a.address, cpus=a.cpus,
                          max_concurrent=a.max_concurrent)
    return finish(sw.results, sw.name, summary)


def finish(results: Path | str, sweep: str, summary) -> int:
    """Print the summary table and failures; exit code says whether anything failed."""
    from robustsweep.results import sweep_table, to_markdown

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


def cmd_results(a: argparse.Namespace) -> int:
    import polars as pl

    from robustsweep.results import DEFAULT_METRICS, sweep_table, to_markdown
    from robustsweep.store.parquet import read_sweep

    metrics = tuple(a.metrics.split(",")) if a.metrics else DEFAULT_METRICS
    try:
        table = read_sweep(a.results, a.sweep) if a.raw else sweep_table(a.results, a.sweep, metrics)
    except FileNotFoundError as e:
        return _err(str(e))
    with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=40, tbl_width_chars=200):
        print(table)
    if a.csv:
        table.select([c for c in table.columns if table[c].dtype != pl.List]).write_csv(a.csv)
        print(f"wrote {a.csv}")
    if a.markdown:
        Path(a.markdown).write_text(to_markdown(table) + "\n")
        print(f"wrote {a.markdown}")
    return EXIT_OK


def cmd_query(a: argparse.Namespace) -> int:
    import polars as pl

    from robustsweep.results import query

    try:
        df = query(a.results, a.sweep, a.sql)
    except FileNotFoundError as e:
        return _err(str(e))
    except Exception as e:  # polars SQL errors: show them plainly
        return _err(f"query failed: {e}")
    if a.csv:
        df.write_csv(a.csv)
        print(f"wrote {a.csv} ({len(df)} rows)")
    else:
        with pl.Config(tbl_rows=200, tbl_cols=30, tbl_width_chars=200):
            print(df)
    return EXIT_OK


def cmd_list(a: argparse.Namespace) -> int:
    from robustsweep.registry import REGISTRIES

    if a.what == "sweeps":
        from robustsweep.sweep import list_sweeps

        names = list_sweeps(a.results)
        print("\n".join(names) if names else f"no sweeps under {Path(a.results).resolve()}")
        return EXIT_OK
    for kind, reg in REGISTRIES.items():
        if a.what not in ("all", kind):
            continue
        print(f"{kind}:")
        for e in reg.entries():
            print(f"  {e.name:<16} {e.help}")
            if a.verbose:
                for k, p in reg.settable_params(e.name).items():
                    default = "" if p.default is p.empty else f" = {p.default!r}"
                    print(f"  {'':<16}   {k}{default}")
    return EXIT_OK


COMMANDS = {"run": cmd_run, "results": cmd_results, "query": cmd_query, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS.get(args.cmd) or getattr(args, "handler", None)
    if handler is None:
        return _err(f"unknown command {args.cmd}")
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
