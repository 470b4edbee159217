"""Row selection the paper reports share: ok rows, tolerant float matching, an attack's grid, the model lists, and the
long ("melted") frame a mixed-metric table pivots over.

Why one module: every paper selects "the ok rows of attack A at grid value v" and every copy of that is a chance to
compare floats exactly or forget the status; the model lists are the registry's ``kind`` metadata
(``models/deep_bayes.py``), written here because a login node's report must not import the models (torch), and a
test (``tests/report/test_select.py``) checks them against the registry.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

OK = pl.col("status") == "ok"
TOL = 1e-9  # grid values are written from the same YAML floats; only arithmetic noise may separate them

#: paper 001's seven factorisations in the order of its §2 / Fig. 1, split by the registry's ``kind``
DEEP_BAYES = ["gfz", "gfy", "gbz", "gby", "dfx", "dfz", "dbx"]
GENERATIVE = ["gfz", "gfy", "gbz", "gby"]
DISCRIMINATIVE = ["dfx", "dfz", "dbx"]
#: the discriminative factorisations without a bottleneck: the ones §4.1 of paper 001 calls not robust ("DFX & DFZ";
#: "DBX is relatively robust against FGSM"), which its generative-vs-discriminative claims compare against
NO_BOTTLENECK = ["dfx", "dfz"]


def near(column: str | pl.Expr, value: float, tol: float = TOL) -> pl.Expr:
    """``column`` equals ``value`` up to ``tol`` (grid values are floats)."""
    col = pl.col(column) if isinstance(column, str) else column
    return (col - value).abs() < tol


def at(attack: str | None = None, value: float | None = None, *, ok: bool = True, **equal: Any) -> pl.Expr:
    """Rows of ``attack`` (any when None) at grid ``value`` (any when None), ``status == ok`` unless ``ok=False``;
    ``equal`` adds exact matches on other columns, e.g. ``at("pgd", 0.1, model="Ours")``."""
    e = OK if ok else pl.lit(True)
    if attack is not None:
        e &= pl.col("attack") == attack
    if value is not None:
        e &= near("value", value)
    for col, v in equal.items():
        e &= pl.col(col) == v
    return e


def ok_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of trials that finished (a frame without a status column has nothing to drop)."""
    return rows.filter(OK) if "status" in rows.columns else rows


def grid(rows: pl.DataFrame, attack: str | None = None, column: str = "value") -> list[float]:
    """The sorted distinct ``column`` values of ``attack``'s ok rows (every ok row when None): the grid that ran."""
    if rows.is_empty() or column not in rows.columns or (attack is not None and "attack" not in rows.columns):
        return []
    sel = ok_rows(rows) if attack is None else rows.filter(at(attack))
    return sorted(set(sel[column].drop_nulls().to_list()))


def nth(values: Sequence[Any], n: int) -> Any:
    """The ``n``-th value, the last where there are fewer, None where there are none: the grid position a paper
    reads its number at, so a shorter ci grid is read at the same place."""
    return values[n] if len(values) > n else (values[-1] if values else None)


def middle(values: Sequence[Any]) -> Any:
    """The middle value of a grid (None for an empty one)."""
    return values[len(values) // 2] if values else None


def num(rows: pl.DataFrame, column: str) -> pl.Expr:
    """``column`` as a float, or nulls where the rows lack it (an experiment that has not run has no det./m. columns)."""
    return pl.col(column).cast(pl.Float64) if column in rows.columns else pl.lit(None, pl.Float64)


def upper(column: str = "cfg.model.name") -> pl.Expr:
    """A model name as the papers print it (``gfz`` -> ``GFZ``)."""
    return pl.col(column).str.to_uppercase()


Key = pl.Expr | Callable[[str], pl.Expr]
KEEP = ("status", "seed", "trial_id", "config_hash", "error", "attack", "value")


def melt(rows: pl.DataFrame, metrics: Iterable[tuple[str, str]], row: Key, col: Key,
         keep: Sequence[str] = KEEP) -> pl.DataFrame:
    """One row per (input row, metric) with ``__row``, ``__col`` and the value ``v``: a table mixing metrics is a
    single-metric pivot over this. ``metrics`` are (column, label) pairs; ``row`` / ``col`` are expressions or
    functions of the metric's label giving one; a column the rows lack gives nulls. The ``keep`` columns stay (the
    seed and status a pivot needs, the ids its failed list shows)."""
    kept = [c for c in keep if c in rows.columns]

    def key(k: Key, label: str) -> pl.Expr:
        return k(label) if callable(k) else k

    parts = [rows.select(*kept, key(row, label).alias("__row"), key(col, label).alias("__col"),
                         num(rows, m).alias("v")) for m, label in metrics]
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()
