"""A paper's results page (``results.md``): what one ``reproduce`` run found, written from its report.

Why: measured results typed into prose drift. The README once carried pages of them, some stale by their own
admission. ``robustsweep reproduce`` writes this page into the report folder next to ``report.html``, and copies of a
real run are committed under ``docs/results/``. Every number on it comes from the report (claims, tables, the
comparison with the paper) or from the result rows (commit, trial counts, run time), and the page names the commit
and the scale it came from, so a reader can tell how old it is and regenerate it.

The commit is the ``git_rev`` the trials recorded in their rows: the code that computed the numbers. The report code
that laid them out may be newer; the page names it too.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from robustsweep.config.scales import SMOKE_EPOCHS, SMOKE_N_EVAL
from robustsweep.report.select import OK
from robustsweep.report.tables import Table, to_markdown
from robustsweep.store.columns import metric
from robustsweep.store.provenance import git_rev

PAGE = "results.md"
SMOKE_NOTE = (f"smoke: the smallest run that fills every table cell ({SMOKE_EPOCHS} training epoch, at most "
              f"{SMOKE_N_EVAL} attacked test points, the first seed, a few attack steps); its numbers show that the "
              "pipeline works end to end, not what the paper measured")


@dataclass
class RunFacts:
    """What the result rows say about the run behind a report: which code, how many trials, how long."""

    commits: dict[str, int] = field(default_factory=dict)  # git_rev -> trials that recorded it
    trials: int = 0
    ok: int = 0
    failed: int = 0
    trial_time_s: float = 0.0  # summed over trials (they may have run in parallel)
    first_start: dt.datetime | None = None
    last_finish: dt.datetime | None = None
    devices: list[str] = field(default_factory=list)
    sweeps: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # experiment -> (sweep, ok, failed)

    @property
    def span_s(self) -> float | None:
        if self.first_start is None or self.last_finish is None:
            return None
        return (self.last_finish - self.first_start).total_seconds()


def _per_trial(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per trial (a trial writes one row per attack point; its provenance repeats on each)."""
    return rows.unique("trial_id", keep="first", maintain_order=True) if "trial_id" in rows.columns else rows.clear()


def _distinct(frame: pl.DataFrame, column: str) -> list[Any]:
    return frame[column].drop_nulls().unique(maintain_order=True).to_list() if column in frame.columns else []


def run_facts(experiments: Mapping[str, pl.DataFrame], sweeps: Mapping[str, str] | None = None) -> RunFacts:
    """Gather :class:`RunFacts` from each experiment's rows (absent experiments have zero rows and add nothing)."""
    facts = RunFacts()
    for name, rows in experiments.items():
        trials = _per_trial(rows)
        if trials.is_empty():
            continue
        ok = trials.filter(OK).height if "status" in trials.columns else trials.height
        facts.sweeps[name] = ((sweeps or {}).get(name, name), ok, trials.height - ok)
        facts.trials, facts.ok, facts.failed = facts.trials + trials.height, facts.ok + ok, facts.failed + trials.height - ok
        for rev in trials["git_rev"].fill_null("unknown").to_list() if "git_rev" in trials.columns else []:
            facts.commits[rev] = facts.commits.get(rev, 0) + 1
        if "trial_time_s" in trials.columns:
            facts.trial_time_s += float(trials["trial_time_s"].fill_null(0.0).sum())
        starts, ends = _distinct(trials, "started_at"), _distinct(trials, "finished_at")
        if starts:
            facts.first_start = min([*starts, facts.first_start] if facts.first_start else starts)
        if ends:
            facts.last_finish = max([*ends, facts.last_finish] if facts.last_finish else ends)
        facts.devices += [d for d in _distinct(trials, metric("device")) if d not in facts.devices]
    return facts


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _commit_line(commits: Mapping[str, int]) -> str:
    if not commits:
        return "unknown: no result rows (nothing has run yet)"
    dirty = " (`-dirty`: the source tree had uncommitted changes)" if any(r.endswith("-dirty") for r in commits) else ""
    if len(commits) == 1:
        return f"`{next(iter(commits))}`, recorded by every trial in its rows (`git_rev`){dirty}"
    parts = ", ".join(f"`{rev}` ({n} trial{'s' * (n != 1)})" for rev, n in sorted(commits.items(), key=lambda kv: -kv[1]))
    return f"several, as recorded by the trials in their rows (`git_rev`): {parts}{dirty}"


def _run_time(facts: RunFacts) -> str:
    if not facts.trials:
        return "nothing ran"
    text = f"{_duration(facts.trial_time_s)} of trial time summed over {facts.trials} trials"
    if facts.span_s is not None:
        text += (f"; {_duration(facts.span_s)} from the first trial's start to the last one's end "
                 f"({facts.first_start:%Y-%m-%d %H:%M} to {facts.last_finish:%Y-%m-%d %H:%M} UTC; includes any "
                 "pause between runs)")
    return text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _facts_table(paper: Any, report: Any, facts: RunFacts, *, scale: str, smoke: bool, command: str) -> list[str]:
    rows = [
        ("paper", f"{paper.id} ({paper.name}): {paper.title}; source `{paper.source}`"),
        ("scale", f"**{scale}**" + (f" ({SMOKE_NOTE})" if smoke else "")),
        ("commit", _commit_line(facts.commits)),
        ("report code", f"`{git_rev() or 'unknown'}` (the revision that wrote this page)"),
        ("trials", f"{facts.ok} ok, {facts.failed} failed, in {len(facts.sweeps)} sweep(s)"
                   + (": " + "; ".join(f"`{s}` {o} ok" + (f", {f} failed" if f else "")
                                       for s, o, f in facts.sweeps.values()) if facts.sweeps else "")),
        ("run time", _run_time(facts)),
        ("device", ", ".join(facts.devices) or "not recorded"),
        ("regenerate", f"`{command}` (reruns nothing that finished; writes `{PAGE}` in the report folder)"),
    ]
    if report.error:
        rows.append(("report builder", "**failed**: see report.html; the tables below are those it produced"))
    return ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows)]


def _claims(checks: list[Any]) -> list[str]:
    if not checks:
        return ["The paper declares no qualitative claims."]
    counts = {s: sum(c.status == s for c in checks) for s in ("holds", "does not hold", "not evaluated")}
    out = [f"{counts['holds']} hold, {counts['does not hold']} do not hold, {counts['not evaluated']} not evaluated.",
           "", "| claim | verdict | the numbers behind it | the paper says |", "|---|---|---|---|"]
    out += [f"| `{c.name}` | {c.status} | {_cell(c.observed)} | {_cell(c.claim)} |" for c in checks]
    return out


def _table(t: Table) -> list[str]:
    verdict = t.comparison.verdict if t.comparison else "no reference numbers for this table"
    size = f"{len(t.rows)} × {len(t.columns)}" + (f", {len(t.missing)} empty cell(s)" if t.missing else "")
    return [f"### {t.id}: {_cell(t.title)}", "", f"{size}. Comparison with the paper: {_cell(verdict)}", "",
            "<details><summary>the table</summary>", "", to_markdown(t).rstrip(), "", "</details>", ""]


def render(paper: Any, report: Any, facts: RunFacts, *, scale: str, smoke: bool, command: str) -> str:
    """The page's Markdown. ``report`` is a :class:`robustsweep.report.paper.PaperReport`."""
    title = f"# Paper {paper.id} ({paper.name}) at {scale} scale" + (" (smoke)" if smoke else "")
    lines = [title, "",
             "*Generated by `robustsweep reproduce` from the report of a run (`robustsweep/report/results_page.py`); "
             "do not edit by hand: regenerate it.*", "",
             *_facts_table(paper, report, facts, scale=scale, smoke=smoke, command=command), "",
             "## Claims", "", *_claims(report.checks), "",
             "## Tables", ""]
    for t in report.tables:
        lines += _table(t)
    for tid in report.absent_tables:
        lines += [f"### {tid}: {_cell(paper.tables[tid])}", "", "Not produced (the report builder failed).", ""]
    return "\n".join(lines).rstrip() + "\n"


def reproduce_command(paper_id: str, scale: str, smoke: bool) -> str:
    return f"robustsweep reproduce {paper_id} --scale {scale}" + (" --smoke" if smoke else "")


def write_results_page(paper: Any, report: Any, experiments: Mapping[str, pl.DataFrame], *, scale: str, smoke: bool,
                       sweeps: Mapping[str, str] | None = None) -> Path:
    """Write ``results.md`` into the report's folder (``report.out``) and return its path."""
    facts = run_facts(experiments, sweeps)
    path = Path(report.out) / PAGE
    path.write_text(render(paper, report, facts, scale=scale, smoke=smoke,
                           command=reproduce_command(paper.id, scale, smoke)), encoding="utf-8")
    return path
