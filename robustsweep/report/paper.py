"""One paper's report: its builder's tables, figures and claims, compared with the numbers the paper prints.

``build_paper_report`` is what ``robustsweep reproduce`` and ``robustsweep report --paper`` call. It reads nothing
but the rows it is given (Parquet, via the CLI), so it runs on a login node. What it adds around a paper's builder
(``report/papers/pNNN.py``):

- every table is compared with ``experiments/reference/<paper>.yaml`` (``report/reference.py``): the entries for the
  scale that ran become ``paper / ours / Δ / within tolerance`` columns and a one-line verdict. At ``mini`` scale
  (the paper's MNIST models on 5,000 real digits) the paper's numbers are compared with their ``mini_tolerance``.
  At ``ci`` scale (and at mini for numbers without one) the paper-scale numbers are still shown, labelled "for
  orientation": the test at that scale is the paper's qualitative claims (``report/checks.py``), which every
  section lists as holds / does not hold with the numbers;
- a reference to a table, row or column the builder does not produce is an error (a typo must not look like
  "not run");
- ``summary.json``: per table its missing cells and verdict, per claim its status — what CI asserts on;
- tables as ``tables/<id>.md|csv|tex`` (+ ``<id>.compare.csv``), ``report.md`` and one self-contained
  ``report.html`` with the provenance (versions, git revision, exact configs) of every experiment.
"""
from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from robustsweep.report.aggregate import config_label, label_columns
from robustsweep.report.checks import CheckResult
from robustsweep.report.generic import FORMATS, provenance
from robustsweep.report.html import Section, write_pages
from robustsweep.report.paper_registry import Paper, PaperContext
from robustsweep.report.reference import Reference, for_scale, load_references, validate_references
from robustsweep.report.robustness import evaluation_sections
from robustsweep.report.tables import Table, compare, write_table_files

Log = Callable[[str], None]


@dataclass
class PaperReport:
    """What was written and what it says (the CLI prints it, tests assert on it)."""

    out: Path
    tables: list[Table] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    absent_tables: list[str] = field(default_factory=list)  # declared by the paper, not produced by its builder
    sanity: list[str] = field(default_factory=list)  # every sanity check's CheckResult.status (report/robustness.py)
    error: str | None = None  # the builder crashed: its traceback (the report still lists what it has)

    @property
    def missing_cells(self) -> dict[str, list[tuple[str, str]]]:
        return {t.id: t.missing for t in self.tables if t.missing}

    def summary(self) -> dict:
        return {
            "tables": {t.id: {"title": t.title, "rows": len(t.rows), "columns": len(t.columns),
                              "missing_cells": [list(c) for c in t.missing],
                              "undefined_cells": [list(c) for c in t.undefined],
                              "verdict": t.comparison.verdict if t.comparison else None} for t in self.tables},
            "absent_tables": self.absent_tables,
            "checks": [{"name": c.name, "claim": c.claim, "status": c.status, "observed": c.observed}
                       for c in self.checks],
            "sanity": {v: self.sanity.count(v) for v in dict.fromkeys(self.sanity)},
            "error": self.error,
        }


def _labelled(rows: pl.DataFrame) -> pl.DataFrame:
    if rows.is_empty() or "config" in rows.columns:
        return rows
    return rows.with_columns(config_label(label_columns(rows)))


def references(paper: Paper) -> list[Reference]:
    """The paper's reference entries (none when it has no reference file yet)."""
    return load_references(paper.reference_file) if paper.reference_file.is_file() else []


def check_reference_tables(paper: Paper, refs: Sequence[Reference]) -> None:
    """Every reference names a table the paper declares, and a row and column of it where the declaration knows its
    labels before a run; other rows and columns are checked against the tables of a run at the reference's scale (a
    ci run's grid can differ from the paper's)."""
    bad = sorted({r.table for r in refs} - set(paper.tables))
    if bad:
        raise ValueError(f"{paper.reference_file}: reference(s) to table(s) {bad} that paper {paper.id} does not "
                         f"produce (its tables: {', '.join(paper.tables)})")
    # a declared table whose labels do not depend on the run: its rows and columns are known at every scale
    known = {tid: layout for tid, spec in paper.specs.items() if (layout := spec.layout()) is not None}
    validate_references([r for r in refs if r.table in known], known)


def attach_comparisons(tables: Sequence[Table], refs: Sequence[Reference], scale: str) -> None:
    """Set ``table.comparison`` from the references for ``scale``; at ``ci`` scale without ci entries, the
    paper-scale numbers are attached for orientation (the verdict says so)."""
    for t in tables:
        mine = [r for r in for_scale(refs, scale) if r.table == t.id]
        orientation = False
        if not mine and scale != "paper":  # only the cells this scale's layout has (its grid may differ)
            mine = [r for r in for_scale(refs, "paper") if r.table == t.id and r.row in t.rows and r.column in t.columns]
            orientation = True
        if not mine:
            continue
        t.comparison = compare(t, mine)
        if orientation:
            t.comparison.verdict = (f"{scale} scale: the paper's full-size numbers, shown for orientation only "
                                    f"({t.comparison.verdict}); the test at this scale is the qualitative claims")


def _datasets(experiments: Mapping[str, pl.DataFrame]) -> dict[str, list[str]]:
    """Experiment -> the data sets its rows ran on (``cfg.dataset.name``), for the summary's data line."""
    return {name: sorted(rows["cfg.dataset.name"].drop_nulls().unique().to_list())
            for name, rows in experiments.items() if "cfg.dataset.name" in rows.columns and not rows.is_empty()}


def _verdict_section(report: PaperReport, paper: Paper, scale: str, smoke: bool,
                     datasets: Mapping[str, list[str]] | None = None) -> Section:
    lines = [f"Paper {paper.id} ({paper.name}): {paper.title}. Source: `{paper.source}`. Scale: **{scale}**"
             + (" (smoke: the smallest run that fills every cell; numbers are not meaningful)" if smoke else "") + "."]
    if datasets:  # which data the numbers come from: at ci / mini it is not the paper's (e.g. mnist5k for Fashion)
        lines.append("Data: " + "; ".join(f"{name} ran on {', '.join(ds)}" for name, ds in datasets.items()) + ".")
    if paper.notes:
        lines.append(paper.notes)
    for t in report.tables:
        miss = f"; {len(t.missing)} empty cell(s)" if t.missing else ""
        verdict = f": {t.comparison.verdict}" if t.comparison else ": no reference numbers"
        lines.append(f"- **{t.id}** ({t.title}){verdict}{miss}")
    for tid in report.absent_tables:
        lines.append(f"- **{tid}** ({paper.tables[tid]}): not produced (see the error below)")
    counts = {s: sum(c.status == s for c in report.checks) for s in ("holds", "does not hold", "not evaluated")}
    if report.checks:
        lines.append(f"\nQualitative claims: {counts['holds']} hold, {counts['does not hold']} do not hold, "
                     f"{counts['not evaluated']} not evaluated (each section lists its claims with the numbers).")
    if report.sanity:
        bad = report.sanity.count("does not hold")
        lines.append(f"\nBeside the paper's layout, every experiment's robust accuracy (each attack and the worst case "
                     f"over attacks, 95 % intervals) and its gradient-masking sanity checks: {bad} of "
                     f"{len(report.sanity)} checks do not hold (sections at the end).")
    if report.error:
        lines.append(f"\nThe paper's report builder failed:\n\n```\n{report.error}\n```")
    return Section("Summary: paper vs ours", text="\n".join(lines))


def build_paper_report(paper: Paper, experiments: Mapping[str, pl.DataFrame], out_dir: str | Path, *, scale: str,
                       smoke: bool = False, formats: Sequence[str] = FORMATS, sweeps: Mapping[str, str] | None = None,
                       compare: bool = True, log: Log | None = None) -> PaperReport:
    """Build, compare and write one paper's report into ``out_dir`` (module docstring); ``experiments`` maps each
    experiment's spec name to its rows, ``sweeps`` its spec name to the sweep folder it came from."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = PaperReport(out=out)
    ctx = PaperContext({k: _labelled(v) for k, v in experiments.items()}, out, scale, smoke)
    try:
        sections = list(paper.build(ctx))
    except Exception:  # the rest of the report (provenance, what did run) is still worth writing
        sections, report.error = [], traceback.format_exc(limit=6)
    report.tables = [t for s in sections for t in s.tables]
    report.checks = [c for s in sections for c in s.checks]
    unknown = [t.id for t in report.tables if t.id not in paper.tables]
    if unknown:
        raise ValueError(f"paper {paper.id}: the builder produced table(s) {unknown} that the paper does not declare "
                         f"(declared: {sorted(paper.tables)})")
    report.absent_tables = [tid for tid in paper.tables if tid not in {t.id for t in report.tables}]
    refs = references(paper)
    check_reference_tables(paper, refs)
    if report.error is None:  # the run's own scale: every referenced row and column must exist
        validate_references(for_scale(refs, scale), {t.id: t for t in report.tables})
    if compare:
        attach_comparisons(report.tables, refs, scale)

    def wrote(p: Path) -> Path:
        report.written.append(p)
        if log:
            log(f"  wrote {p}")
        return p

    for t in report.tables:
        for p in write_table_files(t, out / "tables", formats):
            wrote(p)
    for s in sections:
        for f in s.figures:
            wrote(Path(f[0] if isinstance(f, tuple) else f))
    prov = {"paper": paper.id, "scale": scale, "smoke": smoke,
            "experiments": {name: provenance(rows, (sweeps or {}).get(name, name))
                            for name, rows in experiments.items() if not rows.is_empty()}}
    evaluation: list[Section] = []  # beside the paper's layout: every experiment's robust accuracy and sanity
    for name, rows in experiments.items():
        if rows.is_empty():
            continue
        secs, files, checks = evaluation_sections(_labelled(rows), out / "tables", formats, prefix=f"{name}-")
        evaluation += secs
        report.sanity += [c.status for c in checks]
        for p in files:
            wrote(p)
    all_sections = [_verdict_section(report, paper, scale, smoke, _datasets(experiments)), *sections, *evaluation]
    (out / "summary.json").write_text(json.dumps(report.summary(), indent=1), encoding="utf-8")
    wrote(out / "summary.json")
    title = f"Paper {paper.id} ({paper.name}) at {scale} scale" + (" (smoke)" if smoke else "")
    for p in write_pages(out, title, all_sections, provenance=prov, formats=formats):
        wrote(p)
    return report
