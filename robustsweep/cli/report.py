"""``robustsweep report``: the generic report of one or more sweeps, from their Parquet files only (no torch, no Ray)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from robustsweep.cli.common import EXIT_OK, EXIT_USAGE, add_results, err

DESCRIPTION = """\
Write a report of each SWEEP into OUT/<sweep>/, reading only its Parquet files (runs on a login node: no torch,
no Ray, nothing re-run): per attack, pivot tables (config rows x grid values, mean ± std over seeds) of
adversarial accuracy (with clean accuracy), attack success rate and each detector's TPR, as
tables/<attack>-<metric>.md|.csv|.tex; figures/accuracy_<attack>.png (accuracy vs grid value, ±std band per
config) and figures/roc_<detector>.png when ROC points were stored; report.md and a self-contained report.html
(figures embedded) listing failed trials with their errors, and provenance (package versions, git revision, the
exact trial configs; also configs.json)."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write tables, figures, report.md and report.html for sweeps (Parquet only)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Example: robustsweep report quickstart --out reports --format md,html")
    p.add_argument("sweeps", nargs="+", metavar="SWEEP", help="sweep name(s) under --results")
    p.add_argument("--out", default="reports", metavar="DIR",
                   help="output folder; each sweep gets DIR/<sweep>/ (default: ./reports)")
    p.add_argument("--format", default="md,csv,tex,html", metavar="LIST",
                   help="comma-separated subset of md,csv,tex,html (default: all). md/csv/tex: per-table files "
                        "(+ report.md for md); html: report.html. PNG figures and configs.json are always written")
    p.add_argument("--paper", default=None, metavar="ID",
                   help="also write the paper's own report over all the SWEEPs (its tables and figures in the "
                        "paper's layout, its qualitative claims) into DIR/<paper>-<scale>/; ID as in "
                        "`robustsweep reproduce --list`. Each sweep stands for the paper experiment its spec names")
    p.add_argument("--compare", action="store_true",
                   help="with --paper: add paper / ours / delta / within-tolerance columns from "
                        "experiments/reference/<paper>.yaml and a verdict per table")
    add_results(p)
    p.set_defaults(handler=cmd_report)


def _spec(sweep_dir: Path) -> dict:
    """The stored spec from ``sweep.json`` (absent or unreadable: empty)."""
    from robustsweep.sweep.folder import SWEEP_FILE

    try:
        return dict(json.loads((sweep_dir / SWEEP_FILE).read_text())["spec"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _check_sweep(results: str, sweep: str) -> str | None:
    """Why ``sweep`` cannot be reported (no folder, no finished trial), or None when it can."""
    from robustsweep.store.parquet import sweep_dir, trial_files
    from robustsweep.sweep.folder import list_sweeps

    root = Path(results).expanduser().resolve()
    if not root.is_dir():
        return f"results folder {root} does not exist; pass --results DIR where the sweeps were written"
    if not sweep_dir(results, sweep).is_dir():
        known = list_sweeps(results)
        return (f"no sweep {sweep!r} under {root}" +
                (f"; sweeps there: {', '.join(known)}" if known else "; pass --results DIR where it was written"))
    if not trial_files(results, sweep):
        return (f"sweep {sweep!r} under {root} has no finished trials yet (no Parquet files in "
                f"{sweep_dir(results, sweep) / 'trials'}); see `robustsweep status {sweep}`")
    return None


def cmd_report(a: argparse.Namespace) -> int:
    from robustsweep.report.generic import FORMATS, build_report
    from robustsweep.store.parquet import read_sweep, sweep_dir

    formats = [f.strip().lower() for f in a.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        return err(f"--format {a.format!r}: unknown {', '.join(bad) or '(empty)'}; choose from {','.join(FORMATS)}")
    if a.compare and not a.paper:
        return err("--compare needs --paper ID (the paper whose reference numbers to compare with)")
    paper = None
    if a.paper:
        from robustsweep.report.papers import get_paper

        paper = get_paper(a.paper)
    problems = [p for s in a.sweeps if (p := _check_sweep(a.results, s))]
    if problems:  # check every sweep before writing anything
        for p in problems:
            err(p)
        return EXIT_USAGE
    by_experiment, sweeps, scales = {}, {}, set()
    for sweep in a.sweeps:
        rows = read_sweep(a.results, sweep)
        out = Path(a.out) / sweep
        spec = _spec(sweep_dir(a.results, sweep))
        print(f"report {sweep}: {rows['trial_id'].n_unique()} trials, {rows.height} rows -> {out}", flush=True)
        written = build_report(rows, out, sweep=sweep, formats=formats, paper=spec.get("paper"),
                               log=lambda line: print(line, flush=True))
        failed = rows.filter(rows["status"] != "ok")["trial_id"].n_unique()
        note = f"; {failed} failed trial(s) listed in the report" if failed else ""
        print(f"report {sweep}: {len(written)} files{note}")
        name = spec.get("name", sweep)
        by_experiment[name], sweeps[name] = rows, sweep
        scales.add(spec.get("scale") or "paper")
    if paper is None:
        return EXIT_OK
    from robustsweep.cli.reproduce import print_outcome
    from robustsweep.report.paper import build_paper_report

    if len(scales) > 1:
        return err(f"--paper: the sweeps were run at different scales ({', '.join(sorted(scales))}); report each "
                   "scale separately")
    scale = scales.pop()
    out = Path(a.out) / f"{paper.id}-{paper.name}-{scale}"
    print(f"paper report {paper.id}: {len(by_experiment)} sweep(s) -> {out}", flush=True)
    print_outcome(build_paper_report(paper, by_experiment, out, scale=scale, formats=formats, sweeps=sweeps,
                                     compare=a.compare))
    return EXIT_OK
