"""Paper-layout tables from a sweep's long-format rows, with per-cell seed statistics and paper-vs-ours diffs.

A :class:`Table` keeps two views of the same numbers: ``frame`` holds the formatted strings exactly as the paper
lays the table out (row header column first, then one column per paper column), and ``numeric`` is the long
``row, column, mean, std, ci_lo, ci_hi, n`` frame that CSV export and :func:`compare` use, so nothing downstream
has to parse "0.912 ± 0.013" back. Row and column *labels* (what the paper prints) are the keys everywhere, so
reference files (``reference.py``) can be written by reading the paper.

Nothing is silently dropped: failed trials are excluded from the numbers but listed in ``Table.failed``; cells
no seed produced print "—" and are listed in ``Table.missing``; a cell whose trials ran but whose metric is
undefined (a TPR without any successful adversarial) prints "n/a" and is listed in ``Table.undefined``; a cell short
of seeds carries its ``n``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from robustsweep.report.aggregate import varying_config_columns
from robustsweep.report.intervals import THIN, pooled
from robustsweep.report.reference import Reference, validate_references
from robustsweep.report.stats import fmt_cell, summarize

Key = str | pl.Expr
UNDEFINED = "n/a"  # a cell whose trials ran but whose metric has no value (see Table.undefined)
_ROW, _COL = "__row", "__col"


@dataclass
class Comparison:
    """Paper-vs-ours per referenced cell (``row, column, paper, ours, delta, tolerance, within_tolerance, note``)."""

    frame: pl.DataFrame
    verdict: str


@dataclass
class Table:
    """One paper table. ``rows``/``columns`` are the printed labels in paper order; see module docstring."""

    id: str
    title: str
    frame: pl.DataFrame
    numeric: pl.DataFrame
    rows: list[str]
    columns: list[str]
    caption: str = ""
    missing: list[tuple[str, str]] = field(default_factory=list)
    undefined: list[tuple[str, str]] = field(default_factory=list)  # ran, but the metric has no value (n/a cells)
    failed: pl.DataFrame = field(default_factory=pl.DataFrame)
    comparison: Comparison | None = None  # set by the caller: ``t.comparison = compare(t, refs)``

    @property
    def notes(self) -> list[str]:
        """Human-readable caveats (missing cells, short cells, failed trials) printed under the table."""
        out: list[str] = []
        if self.missing:
            cells = ", ".join(f"{r} / {c}" for r, c in self.missing)
            out.append(f"{len(self.missing)} cell(s) not produced by any seed: {cells}.")
        if self.undefined:
            out.append(f"{len(self.undefined)} cell(s) {UNDEFINED}: the trials ran but the metric is undefined there "
                       "(e.g. a detection rate or distortion with no successful adversarial example).")
        if not self.numeric.is_empty():
            ns = self.numeric.filter(pl.col("n") > 0)["n"]
            if ns.len() and ns.min() != ns.max():
                out.append(f"Seeds per cell vary from {ns.min()} to {ns.max()} (cells below {ns.max()} marked n=).")
        if not self.failed.is_empty():
            out.append(f"{self.failed.height} failed trial(s) excluded (see failed list).")
        return out


def _label(v: Any, labels: Mapping[Any, str] | None) -> str:
    if labels is not None and v in labels:
        return labels[v]
    return "(null)" if v is None else str(v)


def _order(present: Iterable[Any], order: Sequence[Any] | None) -> list[Any]:
    """Requested order first (absent ones included, they become "—" cells), then any others, sorted.

    A null key (e.g. ``eps`` of an attack-free clean row) only becomes a row/column when ``order`` asks for it:
    such rows have no place in the paper's layout, and listing them would add an all-"—" line to every table.
    """
    present = list(dict.fromkeys(present))
    extra = [v for v in present if v is not None and (order is None or v not in order)]
    try:
        extra.sort()
    except TypeError:
        extra.sort(key=str)
    return [*(order or []), *extra]


def _expr(key: Key) -> pl.Expr:
    return pl.col(key) if isinstance(key, str) else key


def _check_duplicates(ok: pl.DataFrame, metric: str) -> None:
    """Two rows of one seed in one cell means an axis the table does not control (e.g. two datasets)."""
    seed = ["seed"] if "seed" in ok.columns else []
    if not seed:
        return
    dup = ok.filter(pl.col(metric).is_not_null()).group_by([_ROW, _COL, *seed]).len().filter(pl.col("len") > 1)
    if dup.is_empty():
        return
    r, c, s = dup.row(0)[:3]
    cell = ok.filter((pl.col(_ROW) == r) & (pl.col(_COL) == c) & (pl.col("seed") == s))
    axes = [a for a in varying_config_columns(cell) if a != "cfg.seed"] + [
        a for a in ("attack", "param", "value") if a in cell.columns and cell[a].cast(pl.String).n_unique() > 1
    ]
    raise ValueError(
        f"cell ({r!r}, {c!r}) has {cell.height} rows for seed {s}; they differ in {axes or 'nothing visible'}. "
        "Narrow the rows with filter=, or pass duplicates='mean' to average them on purpose."
    )


def pivot_table(
    rows: pl.DataFrame,
    *,
    row_key: Key,
    col_key: Key,
    metric: str,
    row_order: Sequence[Any] | None = None,
    col_order: Sequence[Any] | None = None,
    row_labels: Mapping[Any, str] | None = None,
    col_labels: Mapping[Any, str] | None = None,
    filter: pl.Expr | None = None,  # noqa: A002 - the name the paper builders use
    digits: int = 3,
    id: str = "table",  # noqa: A002
    title: str = "",
    caption: str = "",
    row_header: str | None = None,
    mark_short: bool = True,
    duplicates: str = "error",
) -> Table:
    """Mean ± std over seeds of ``metric`` per (row, column) cell, laid out as the paper prints it.

    ``row_key``/``col_key`` are column names or polars expressions (e.g. ``pl.format("PGD ε={}", "eps")``);
    ``*_order`` list raw key values in print order (keys absent from the data still get a "—" row/column so the
    layout matches the paper); ``*_labels`` map raw key values to printed labels. With ``mark_short`` a cell
    with fewer seeds than the fullest cell gets "(n=k)" appended so a missing seed is visible in the table.
    ``duplicates='error'`` refuses cells holding two rows of one seed (an uncontrolled sweep axis).
    """
    if rows.is_empty():  # an experiment that has not run: absent columns are just empty (every cell "—")
        absent = [k for k in (row_key, col_key, metric) if isinstance(k, str) and k not in rows.columns]
        rows = rows.with_columns(pl.lit(None, pl.Float64).alias(k) for k in absent)
    df = rows.with_columns(_expr(row_key).alias(_ROW), _expr(col_key).alias(_COL))
    status = pl.col("status") if "status" in df.columns else pl.lit("ok")
    failed = df.filter(status != "ok")
    if filter is not None:  # a failed row has null metrics/attack: count it unless the filter clearly rejects it
        df = df.filter(filter)
        failed = failed.filter(filter.fill_null(True))
    ok = df.filter(status == "ok")
    if metric not in ok.columns:
        raise KeyError(f"metric {metric!r} is not a column of the rows (have {sorted(ok.columns)[:20]}…)")
    if duplicates == "error":
        _check_duplicates(ok, metric)
    summary = summarize(ok, [_ROW, _COL], metric)
    # a binomial rate also gets its 95 % Wilson interval over the attacked points of all seeds (report/intervals.py)
    binom = {(r, c): (lo, hi, pts) for r, c, _, pts, lo, hi, _ in pooled(ok, [_ROW, _COL], metric).iter_rows()}

    row_vals = _order(ok[_ROW].to_list(), row_order)
    col_vals = _order(ok[_COL].to_list(), col_order)
    rlabels = [_label(v, row_labels) for v in row_vals]
    clabels = [_label(v, col_labels) for v in col_vals]
    header = row_header if row_header is not None else (row_key if isinstance(row_key, str) else "")
    if header in clabels or len(set(clabels)) != len(clabels):
        raise ValueError(f"column labels must be unique and differ from the row header {header!r}: {clabels}")

    cells = {(r, c): rec for r, c, *rec in summary.iter_rows()}
    full_n = max((rec[4] for rec in cells.values()), default=0)
    ran = {(r, c) for r, c in ok.select(_ROW, _COL).unique().iter_rows()}  # cells with an ok row, metric or not
    numeric: list[dict[str, Any]] = []
    grid: dict[str, list[str]] = {header: rlabels, **{c: [] for c in clabels}}
    missing: list[tuple[str, str]] = []
    undefined: list[tuple[str, str]] = []
    for rv, rl in zip(row_vals, rlabels):
        for cv, cl in zip(col_vals, clabels):
            mean, std, lo, hi, n = cells.get((rv, cv), (None, None, None, None, 0))
            b_lo, b_hi, points = binom.get((rv, cv), (None, None, None))
            text = fmt_cell(mean, std, digits)
            if n and b_lo is not None:
                text += f" [{b_lo:.{digits}f}, {b_hi:.{digits}f}]" + ("†" if points < THIN else "")
            if n == 0 and (rv, cv) in ran:  # trials ran but the metric is undefined there (e.g. a TPR with no
                text = UNDEFINED                  # successful adversarial): not missing, and shown as such
                undefined.append((rl, cl))
            elif n == 0:
                missing.append((rl, cl))
            elif mark_short and n < full_n:
                text += f" (n={n})"
            grid[cl].append(text)
            numeric.append({"row": rl, "column": cl, "mean": mean, "std": std, "ci_lo": lo, "ci_hi": hi, "n": n,
                            "points": points if n else None, "bi_lo": b_lo if n else None,
                            "bi_hi": b_hi if n else None})

    keep = [c for c in ("trial_id", "config_hash", "seed", _ROW, "error") if c in failed.columns]
    failed = failed.select(keep).unique(maintain_order=True).rename({_ROW: "row"}, strict=False)
    num_schema = {"row": pl.String, "column": pl.String, "mean": pl.Float64, "std": pl.Float64,
                  "ci_lo": pl.Float64, "ci_hi": pl.Float64, "n": pl.Int64, "points": pl.Float64,
                  "bi_lo": pl.Float64, "bi_hi": pl.Float64}
    return Table(
        id=id, title=title, caption=caption, rows=rlabels, columns=clabels,
        frame=pl.DataFrame(grid, schema={k: pl.String for k in grid}),
        numeric=pl.DataFrame(numeric, schema=num_schema), missing=missing, failed=failed, undefined=undefined,
    )


def join_columns(left: Table, right: Table) -> Table:
    """``left``'s columns then ``right``'s, for two tables over the same rows (a "clean" column before the grid's):
    id, title and failed trials are ``right``'s; missing / n/a cells of both are kept."""
    if left.rows != right.rows:
        raise ValueError(f"join_columns: the tables have different rows ({left.rows} vs {right.rows})")
    header = right.frame.columns[0]
    return Table(id=right.id, title=right.title, caption=right.caption, rows=right.rows,
                 columns=[*left.columns, *right.columns], frame=left.frame.hstack(right.frame.drop(header)),
                 numeric=pl.concat([left.numeric, right.numeric], how="diagonal_relaxed"), missing=left.missing + right.missing,
                 failed=right.failed, undefined=left.undefined + right.undefined)


# ---------------------------------------------------------------------------------------------------- writers


def write_table_files(table: Table, folder: str | Path, formats: Iterable[str]) -> list[Path]:
    """``folder/<id>.md|.csv|.tex`` for the formats asked (``<id>.compare.csv`` too when the table carries a
    paper-vs-ours comparison and csv is asked); returns the paths written."""
    formats = set(formats)
    stem = Path(folder) / table.id
    if not {"md", "csv", "tex"} & formats:
        return []
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "md" in formats:
        stem.with_suffix(".md").write_text(to_markdown(table), encoding="utf-8")
        written.append(stem.with_suffix(".md"))
    if "csv" in formats:
        written.append(to_csv(table, stem.with_suffix(".csv")))
        if table.comparison is not None:
            table.comparison.frame.write_csv(stem.parent / f"{table.id}.compare.csv")
            written.append(stem.parent / f"{table.id}.compare.csv")
    if "tex" in formats:
        stem.with_suffix(".tex").write_text(to_latex(table), encoding="utf-8")
        written.append(stem.with_suffix(".tex"))
    return written


def to_markdown(table: Table, *, with_caption: bool = True) -> str:
    """GitHub-flavoured pipe table; caption and :attr:`Table.notes` below it."""
    esc = [[str(v).replace("|", "\\|") for v in row] for row in table.frame.iter_rows()]
    cols = [c.replace("|", "\\|") for c in table.frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + [":---:"] * (len(cols) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    if with_caption:
        lines += [""] + ([f"*{table.caption}*"] if table.caption else []) + [f"> {n}" for n in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(table: Table, path: str | Path) -> Path:
    """The numeric long frame (``table, row, column, mean, std, ci_lo, ci_hi, n``): the machine-readable copy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.numeric.select(pl.lit(table.id).alias("table"), pl.all()).write_csv(path)
    return path


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials; "±" and "—" become ``$\\pm$`` and ``---`` so the .tex compiles without unicode."""
    out = "".join(_LATEX.get(ch, ch) for ch in str(text))
    return out.replace("±", r"$\pm$").replace("—", "---").replace("ε", r"$\varepsilon$")


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (``\\toprule``/``\\midrule``/``\\bottomrule``), label ``tab:<id>``."""
    cols = table.frame.columns
    body = [" & ".join(latex_escape(v) for v in row) + r" \\" for row in table.frame.iter_rows()]
    lines = [
        r"\begin{table}[t]", r"\centering",
        *([rf"\caption{{{latex_escape(table.title or table.caption)}}}"] if table.title or table.caption else []),
        rf"\label{{tab:{latex_escape(table.id)}}}",
        r"\begin{tabular}{l" + "c" * (len(cols) - 1) + "}", r"\toprule",
        " & ".join(latex_escape(c) for c in cols) + r" \\", r"\midrule", *body, r"\bottomrule",
        r"\end{tabular}", r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- compare


def compare(
    table: Table,
    refs: Iterable[Reference] | Mapping[tuple[str, str], float | Reference],
    *,
    tolerance: float = 0.05,
) -> Comparison:
    """Paper value vs our mean for each referenced cell of ``table``.

    ``refs`` is a list of :class:`Reference` (entries for other tables are ignored) or a mapping
    ``(row, column) -> value | Reference``; plain values use ``tolerance``. A reference naming a row or column
    the table does not have raises ``ValueError`` (a typo must not look like "not run"); a cell the table has
    but no seed produced gets ``ours = None`` and ``within_tolerance = None`` and is counted as "not run".
    """
    if isinstance(refs, Mapping):
        items = [r if isinstance(r, Reference) else Reference(table=table.id, row=str(k[0]), column=str(k[1]),
                                                               value=float(r), tolerance=tolerance)
                 for k, r in refs.items()]
    else:
        items = [r for r in refs if r.table == table.id]
    validate_references(items, {table.id: table})
    num = _with_interval_columns(table.numeric)
    ours = {(r, c): (m, lo, hi, pts) for r, c, m, lo, hi, pts in
            num.select("row", "column", "mean", "bi_lo", "bi_hi", "points").iter_rows()}
    out: list[dict[str, Any]] = []
    for ref in items:
        mine, lo, hi, pts = ours.get((ref.row, ref.column), (None, None, None, None))
        delta = None if mine is None or math.isnan(mine) else mine - ref.value
        within = None if delta is None else abs(delta) <= ref.tolerance + 1e-12
        out.append({"row": ref.row, "column": ref.column, "paper": ref.value, "ours": mine, "delta": delta,
                    "tolerance": ref.tolerance, "within_tolerance": within, "lo": lo, "hi": hi, "points": pts,
                    "verdict": interval_verdict(ref.value, ref.tolerance, mine, lo, hi, pts), "note": ref.note})
    schema = {"row": pl.String, "column": pl.String, "paper": pl.Float64, "ours": pl.Float64,
              "delta": pl.Float64, "tolerance": pl.Float64, "within_tolerance": pl.Boolean, "lo": pl.Float64,
              "hi": pl.Float64, "points": pl.Float64, "verdict": pl.String, "note": pl.String}
    frame = pl.DataFrame(out, schema=schema)
    n_in = sum(1 for o in out if o["within_tolerance"] is True)
    n_na = sum(1 for o in out if o["within_tolerance"] is None)
    verdict = f"{n_in}/{len(out)} cells within tolerance" + (f" ({n_na} not run)" if n_na else "")
    counts = {v: sum(o["verdict"] == v for o in out) for v in (CONSISTENT, INCONSISTENT, THIN_CELL)}
    if counts[CONSISTENT] + counts[INCONSISTENT] + counts[THIN_CELL]:
        verdict += (f"; by the 95 % interval over the attacked points: {counts[CONSISTENT]} consistent, "
                    f"{counts[INCONSISTENT]} inconsistent, {counts[THIN_CELL]} too thin (< {THIN} points)")
    return Comparison(frame=frame, verdict=verdict)


CONSISTENT, INCONSISTENT, THIN_CELL, NO_INTERVAL = "consistent", "inconsistent", "too thin", "no interval"


def interval_verdict(paper: float, tolerance: float, ours: float | None, lo: float | None, hi: float | None,
                     points: float | None) -> str | None:
    """A cell's verdict against the paper (issue 38): ``consistent`` when its 95 % interval meets paper ± tolerance,
    ``inconsistent`` when it does not, ``too thin`` on fewer than :data:`THIN` points (whatever the interval says),
    ``no interval`` for a number that is no binomial rate (a distance, an AUC), None when the cell did not run."""
    if ours is None or math.isnan(ours):
        return None
    if lo is None or hi is None or points is None:
        return NO_INTERVAL
    if points < THIN:
        return THIN_CELL
    return CONSISTENT if lo <= paper + tolerance + 1e-12 and hi >= paper - tolerance - 1e-12 else INCONSISTENT


def _with_interval_columns(numeric: pl.DataFrame) -> pl.DataFrame:
    """``numeric`` with ``bi_lo`` / ``bi_hi`` / ``points`` (null where a hand-built table has none)."""
    add = [pl.lit(None, pl.Float64).alias(c) for c in ("bi_lo", "bi_hi", "points") if c not in numeric.columns]
    return numeric.with_columns(add) if add else numeric
