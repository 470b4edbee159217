"""``robustsweep run | results | query | list``: the commands that need no cluster."""
from __future__ import annotations

import argparse
from pathlib import Path

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


def add_parsers(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("run", help="run a sweep on this machine (local Ray)",
                       description="Validate SPEC, expand its search space and run every trial with Ray Tune on "
                                   "this machine. Re-running the same spec only runs trials without a result.")
    p.add_argument("spec", help="experiment file (YAML), e.g. experiments/quickstart.yaml")
    p.add_argument("--name", help="sweep name (default: the spec's name, plus -<scale> for two-size files)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value after --scale, e.g. --set train.epochs=2 --set eval.n_eval=100 "
                        "(repeatable)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the trials, run nothing")
    add_scale(p, "the file's own (its scale: key, else paper)")
    add_results(p)
    add_runtime(p)
    add_local(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("results", help="a sweep's results: compact pivot per attack (default), --long or --raw",
                       description="Print a sweep's results, read from its Parquet files. Default (--pivot): one "
                                   "block per attack, config rows x grid-value columns (eps=0.1 ...), cells mean "
                                   "± std over seeds, clean accuracy first (the summary `run` prints). --long: the "
                                   "aggregated long table, one row per config x attack x grid value with "
                                   "<metric>_mean/_std and n_seeds. --raw: every stored row.")
    p.add_argument("sweep")
    add_results(p)
    view = p.add_mutually_exclusive_group()
    view.add_argument("--pivot", dest="view", action="store_const", const="pivot",
                      help="compact pivot per attack (the default view)")
    view.add_argument("--long", dest="view", action="store_const", const="long",
                      help="aggregated long table (mean/std over seeds per config x attack x grid value)")
    view.add_argument("--raw", dest="view", action="store_const", const="raw", help="print every row (no aggregation)")
    p.set_defaults(view="pivot")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric columns: the pivot shows one block set per metric (default: "
                        "adv_accuracy); the long table's and the CSV's columns (default: clean_accuracy,"
                        "adv_accuracy,success_rate,mean_l2,rho)")
    p.add_argument("--csv", metavar="FILE",
                   help="also write the machine-readable long table as CSV, whatever the view (every row with --raw)")
    p.add_argument("--markdown", "--md", metavar="FILE", help="also write the long aggregated table as Markdown (like --csv)")
    p.set_defaults(handler=cmd_results)

    p = sub.add_parser("query", help="run polars SQL over a sweep's rows (table results) or per-example outcomes "
                                     "(table outcomes)",
                       description='Example: robustsweep query quickstart "SELECT attack, value, '
                                   'avg(adv_accuracy) FROM results GROUP BY attack, value ORDER BY 1, 2". '
                                   'The per-example outcomes (one entry per attack point and attacked example: '
                                   'index, label, pred_clean, pred_adv, fooled, linf, l2, det.<d>.score/reject) '
                                   'are the table outcomes, e.g. robustsweep query quickstart \'SELECT "index", '
                                   'min(CASE WHEN pred_adv = label THEN 1 ELSE 0 END) AS robust FROM outcomes '
                                   'WHERE eps = 0.1 GROUP BY "index"\' (robust under every attack at that ε).')
    p.add_argument("sweep")
    p.add_argument("sql")
    add_results(p)
    p.add_argument("--csv", metavar="FILE", help="write the result as CSV instead of printing it")
    p.set_defaults(handler=cmd_query)

    p = sub.add_parser("list", help="what the registries hold (datasets, models, attacks, detectors) or sweeps")
    p.add_argument("what", nargs="?", default="all",
                   choices=["all", "datasets", "models", "attacks", "detectors", "sweeps"])
    p.add_argument("-v", "--verbose", action="store_true", help="also show each entry's parameters")
    add_results(p)
    p.set_defaults(handler=cmd_list)


# --------------------------------------------------------------------------------------------------- commands
def cmd_run(a: argparse.Namespace) -> int:
    from robustsweep.config.spec import load_spec
    from robustsweep.runners.backends import RUN_HERE
    from robustsweep.sweep.folder import prepare_sweep
    from robustsweep.sweep.resume import ensure_nothing_running

    spec = load_spec(a.spec, a.overrides, scale=a.scale, smoke=a.smoke)
    trials = spec.expand()
    if a.dry_run:
        print(f"{a.spec}: valid at scale {spec.scale}{' (smoke)' if spec.smoke else ''}; {len(trials)} trials; "
              f"sweep {a.name or spec.sweep_name}")
        for t in trials:
            print(f"  {t['trial_id']}  model={t['model']}  seed={t['seed']}")
        return EXIT_OK
    backend = make_backend(RUN_HERE, a, spec)
    preflight(a, trials, a.results)  # before the sweep folder exists and before Ray starts
    sw = prepare_sweep(spec, a.results, a.name)
    # a second `run` of a sweep that a live run or a scheduler's job is running would start its pending trials twice and
    # move that run's Tune state aside: refused, as submit / resume refuse it
    ensure_nothing_running(sw)
    pending = sw.pending()
    print(f"sweep {sw.name}: {len(sw.trials)} trials, {len(sw.trials) - len(pending)} already done, "
          f"{len(pending)} to run -> {sw.dir}")
    return execute(a, sw, pending, backend, restart_errored=False, command="run")


def cmd_results(a: argparse.Namespace) -> int:
    import polars as pl

    from robustsweep.report.aggregate import DEFAULT_METRICS, aggregate, format_pivot, pivot_summary, to_markdown
    from robustsweep.store.parquet import read_sweep

    metrics = tuple(m.strip() for m in a.metrics.split(",") if m.strip()) if a.metrics else None
    try:
        rows = read_sweep(a.results, a.sweep)
    except FileNotFoundError as e:
        return err(str(e))
    need_long = a.view == "long" or a.csv or a.markdown
    long = rows if a.view == "raw" else aggregate(rows, metrics or DEFAULT_METRICS) if need_long else None
    if a.view == "pivot":
        pivot_metrics = [m for m in metrics or ("adv_accuracy",) if m != "clean_accuracy"] or ["adv_accuracy"]
        unknown = [m for m in pivot_metrics if m not in rows.columns]
        if unknown:
            return err(f"--metrics: no column {', '.join(unknown)} in sweep {a.sweep!r}")
        text = "\n\n".join(format_pivot(pivot_summary(rows, m), m) for m in pivot_metrics)
        failed = rows.filter(pl.col("status") != "ok")["trial_id"].n_unique()
        print(text)
        if failed:
            print(f"({failed} failed trial(s) excluded; `robustsweep status {a.sweep}` lists their errors)")
    else:
        text = to_markdown(long)
        with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=40, tbl_width_chars=200):
            print(long)
    if a.csv and long is not None:
        long.select([c for c in long.columns if long[c].dtype != pl.List]).write_csv(a.csv)
        print(f"wrote {a.csv}")
    if a.markdown:  # like --csv: the machine-readable long table, whatever the view shown
        Path(a.markdown).write_text(to_markdown(long) + "\n")
        print(f"wrote {a.markdown}")
    return EXIT_OK


def cmd_query(a: argparse.Namespace) -> int:
    import polars as pl

    from robustsweep.report.aggregate import query

    try:
        df = query(a.results, a.sweep, a.sql)
    except FileNotFoundError as e:
        return err(str(e))
    except Exception as e:  # polars SQL errors: show them plainly
        return err(f"query failed: {e}")
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
        from robustsweep.sweep.folder import list_sweeps

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
