"""``robustsweep reproduce PAPER``: run every experiment of one seed paper, then write its report in the paper's layout.

Re-running only runs what is missing: each experiment is a sweep (``<name>-<scale>[-smoke]``) and the store skips
finished trials. With ``--backend slurm`` the experiments are submitted (one job each); the report is written once
they are done (``--wait``), or by a small report job chained after theirs (``reproduce … --report-only``, submitted
through the backend; ``--no-report-job`` leaves that to the user).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robustsweep.cli.cluster import add_backend_flags
from robustsweep.cli.common import (
    EXIT_OK,
    EXIT_TRIALS_FAILED,
    add_local,
    add_results,
    add_runtime,
    err,
    make_backend,
    preflight,
)
from robustsweep.config.scales import SCALES
from robustsweep.errors import UsageError

DESCRIPTION = """\
Run every experiment file of one paper (listed by --list) at --scale ci (digits / two-rings / 5k MNIST, minutes on
a laptop), --scale mini (papers 001-003: the paper's own MNIST models and settings on 5,000 real MNIST digits, a
laptop) or --scale paper (the paper's data and models, for a GPU cluster), then write OUT/<paper>-<scale>/:
the paper's tables (md, csv with 95% bootstrap intervals, LaTeX) with paper-vs-ours columns from
experiments/reference/<paper>.yaml, its figures (PNG), the qualitative claims as holds / does not hold with the
numbers, report.md, a self-contained report.html, summary.json and results.md (the results page: verdicts, key
numbers, run time, scale and the commit the rows were computed at). Finished trials are never rerun."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="run one paper's experiments and write its tables/figures (paper vs ours)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Examples: robustsweep reproduce --list | robustsweep reproduce 001 --scale ci | "
                              "robustsweep reproduce deep-bayes --scale paper --backend slurm --gpus-per-node 1")
    p.add_argument("paper", nargs="?", help="paper id (000 … 004) or short name (see --list)")
    p.add_argument("--list", action="store_true", help="list the papers, their experiment files and tables")
    p.add_argument("--scale", choices=list(SCALES), default=None,
                   help="ci, mini or paper (default: ci with the local backend, paper with slurm)")
    p.add_argument("--smoke", action="store_true",
                   help="each experiment at the smallest size that still fills every table cell (CI)")
    p.add_argument("--only", action="append", default=[], metavar="EXPERIMENT",
                   help="run only this experiment file (name or file stem; repeatable); the report covers all")
    p.add_argument("--report-only", action="store_true", help="run nothing; write the report from what finished")
    p.add_argument("--no-report-job", action="store_true",
                   help="with a scheduler backend: do not chain the report job after the experiments' jobs (run "
                        "--report-only yourself when they are done)")
    p.add_argument("--out", default="reports", metavar="DIR", help="report folder; DIR/<paper>-<scale>/ "
                                                                   "(default: ./reports)")
    p.add_argument("--format", default="md,csv,tex,html", metavar="LIST", help="subset of md,csv,tex,html")
    add_results(p)
    add_runtime(p)
    add_local(p)
    add_backend_flags(p, "local", "local (run here, default) or a scheduler such as slurm (submit one job per experiment)")
    p.set_defaults(handler=cmd_reproduce)


def print_papers() -> None:
    from robustsweep.report.papers import load_papers

    for p in load_papers().values():
        print(f"{p.id}  {p.name:<14} {p.title}")
        print(f"     source: shared/seeds/{p.source}")
        for f in p.experiments:
            print(f"     experiment: experiments/{f}")
        for tid, title in p.tables.items():
            print(f"     table {tid}: {title}")


def _specs(paper: Any, scale: str, smoke: bool) -> list[tuple[Path, Any]]:
    """Every experiment file of the paper that offers ``scale``, validated before anything runs. A file without that
    size (``mini`` exists only for the MNIST experiments) is skipped with a note, and its tables stay "—"; a paper
    with no experiment at that size is a usage error naming the sizes it has."""
    import yaml

    from robustsweep.config.scales import available_scales
    from robustsweep.config.spec import load_spec

    out, offered = [], set()
    for path in paper.experiment_paths():
        scales = available_scales(yaml.safe_load(path.read_text()) or {}) if path.is_file() else [scale]
        offered.update(scales)
        if scale in scales:
            out.append((path, load_spec(path, scale=scale, smoke=smoke)))
        else:
            print(f"{path.name}: no {scale} size (it offers {', '.join(scales)}); skipped, its tables stay empty",
                  flush=True)
    if not out:
        raise UsageError(f"paper {paper.id} has no experiment at scale {scale}; its experiment files offer "
                         f"{', '.join(sorted(offered))}")
    return out


def _selected(specs: list[tuple[Path, Any]], only: list[str]) -> list[tuple[Path, Any]]:
    if not only:
        return specs
    keep = [(p, s) for p, s in specs if p.stem in only or p.name in only or s.name in only]
    unknown = [o for o in only if not any(o in (p.stem, p.name, s.name) for p, s in specs)]
    if unknown:
        raise ValueError(f"--only {unknown[0]}: not an experiment of this paper; its experiments: "
                         + ", ".join(p.stem for p, _ in specs))
    return keep


def _run(a: argparse.Namespace, specs: list[tuple[Path, Any]]) -> tuple[bool, list[Any], list[Any]]:
    """Run (local) or submit (slurm) each experiment's pending trials; returns (any failed, submitted sweeps, their
    job records)."""
    from robustsweep.core.runtime import runtime_for
    from robustsweep.sweep.folder import prepare_sweep
    from robustsweep.sweep.resume import ensure_nothing_running

    backends = [(path, spec, make_backend(a.backend, a, spec)) for path, spec in specs]  # option errors first
    for _, spec, _ in backends:  # data staged, weights present, folders writable: before any sweep starts
        preflight(a, spec.expand(), a.results)
    failed, submitted, jobs = False, [], []
    for i, (path, spec, backend) in enumerate(backends, 1):
        sw = prepare_sweep(spec, a.results)
        ensure_nothing_running(sw)
        pending = sw.pending()
        print(f"[{i}/{len(backends)}] {path.name} -> sweep {sw.name}: {len(sw.trials)} trials, "
              f"{len(sw.trials) - len(pending)} done, {len(pending)} to run", flush=True)
        if not pending:
            continue
        rt = runtime_for(sw, data_root=a.data_root, cache_dir=a.cache_dir, device=a.device)
        outcome = backend.run(sw, pending, rt, restart_errored=False, command="reproduce")
        if outcome.summary is not None:
            s = outcome.summary
            print(f"[{i}/{len(backends)}] {sw.name}: {s.ok}/{s.total} ok, {s.failed} failed, {s.elapsed_s:.0f}s",
                  flush=True)
            for tid, e in s.errors.items():
                print(f"  FAILED {tid}: {e.splitlines()[0] if e else ''}\n  log: {sw.log_path(tid)}")
            failed |= bool(s.failed)
        elif outcome.job is not None:
            from robustsweep.runners.base import get_backend

            get_backend(a.backend).print_submitted(outcome.job, sw, len(pending))
            submitted.append(sw)
            jobs.append(outcome.job)
    return failed, submitted, jobs


def _chain_report(a: argparse.Namespace, paper: Any, scale: str, out: Path, jobs: list[Any],
                  spec: Any) -> str | None:
    """Submit ``reproduce PAPER --report-only`` (same scale, results and report folders) to start once ``jobs`` have
    ended; its job id, or None where the backend cannot chain a job."""
    from robustsweep.runners.base import get_backend

    argv = ["reproduce", paper.id, "--scale", scale, *(["--smoke"] if a.smoke else []), "--report-only",
            "--results", str(Path(a.results).resolve()), "--out", str(Path(a.out).resolve()), "--format", a.format]
    runner = make_backend(a.backend, a, spec)  # the options of the experiments' jobs (partition, account, setup)
    return get_backend(a.backend).submit_after(runner, argv, jobs, out / "report-job", f"rs-report-{paper.id}")


def write_paper_report(paper: Any, specs: list[tuple[Path, Any]], results: str, out: Path, scale: str, smoke: bool,
                       formats: list[str]):
    """Read each experiment's sweep (absent ones give empty rows) and write the paper's report, with its results page
    (``results.md``: verdicts, key numbers, run time, scale and commit, generated so that no number is typed by hand)."""
    from robustsweep.report.paper import build_paper_report
    from robustsweep.report.results_page import write_results_page
    from robustsweep.store.parquet import read_sweep, trial_files
    from robustsweep.store.rows import empty_rows

    rows, sweeps, have = {}, {}, 0
    for _, spec in specs:
        name = spec.sweep_name
        sweeps[spec.name] = name
        if trial_files(results, name):
            rows[spec.name], have = read_sweep(results, name), have + 1
        else:  # not run yet: the paper's layout with "—" cells
            rows[spec.name] = empty_rows(spec.expand(), name)
    print(f"report {paper.id}: {have}/{len(specs)} experiment(s) have results -> {out}", flush=True)
    rep = build_paper_report(paper, rows, out, scale=scale, smoke=smoke, formats=formats, sweeps=sweeps)
    rep.written.append(write_results_page(paper, rep, rows, scale=scale, smoke=smoke, sweeps=sweeps))
    return rep


def print_outcome(rep: Any) -> None:
    for t in rep.tables:
        miss = (f", {len(t.missing)} empty cell(s)" if t.missing else "") + \
            (f", {len(t.undefined)} n/a cell(s) (metric undefined)" if t.undefined else "")
        verdict = f" — {t.comparison.verdict}" if t.comparison else ""
        print(f"  {t.id}: {len(t.rows)}×{len(t.columns)}{miss}{verdict}")
    for tid in rep.absent_tables:
        print(f"  {tid}: NOT PRODUCED")
    for c in rep.checks:
        print(f"  claim {c.name}: {c.status} ({c.observed})")
    if rep.error:
        print(f"  the paper's report builder failed:\n{rep.error}")
    print(f"report: {rep.out / 'report.html'}")
    if (rep.out / "results.md").is_file():
        print(f"results page: {rep.out / 'results.md'}")


def cmd_reproduce(a: argparse.Namespace) -> int:
    from robustsweep.report.generic import FORMATS
    from robustsweep.report.papers import get_paper
    from robustsweep.runners.base import get_backend

    if a.list:
        print_papers()
        return EXIT_OK
    if not a.paper:
        return err("name a paper (e.g. `robustsweep reproduce 001 --scale ci`); `robustsweep reproduce --list` "
                   "lists them")
    formats = [f.strip().lower() for f in a.format.split(",") if f.strip()]
    if not formats or set(formats) - set(FORMATS):
        return err(f"--format {a.format!r}: choose from {','.join(FORMATS)}")
    paper = get_paper(a.paper)
    scale = a.scale or ("paper" if get_backend(a.backend).submits else "ci")
    specs = _specs(paper, scale, a.smoke)  # every file validated at this scale before anything runs
    try:
        chosen = _selected(specs, a.only)
    except ValueError as e:
        return err(str(e))
    failed = False
    out = Path(a.out) / (f"{paper.id}-{paper.name}-{scale}" + ("-smoke" if a.smoke else ""))
    if not a.report_only:
        failed, submitted, jobs = _run(a, chosen)
        if submitted and not getattr(a, "wait", False):
            print(f"submitted {len(submitted)} sweep(s)")
            job = None if a.no_report_job else _chain_report(a, paper, scale, out, jobs, chosen[0][1])
            if job:
                print(f"report job {job} runs `robustsweep reproduce {paper.id} --report-only` once they end "
                      f"(whatever their outcome) -> {out / 'report.html'}; its log: {out / 'report-job'}")
            else:
                print(f"when they finish: robustsweep reproduce {paper.id} --scale {scale}"
                      f"{' --smoke' if a.smoke else ''} --report-only --results {a.results}")
            return EXIT_OK
        from robustsweep.sweep.jobs import wait_until_idle

        wait_until_idle([sw.dir for sw in submitted])
    rep = write_paper_report(paper, specs, a.results, out, scale, a.smoke, formats)
    print_outcome(rep)
    return EXIT_TRIALS_FAILED if failed or rep.error else EXIT_OK
