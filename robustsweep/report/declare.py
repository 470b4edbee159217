"""A paper table declared once: id, title, experiment, metric, row and column axes, filter.

Why: a paper's table used to be named in four places (the ``@paper`` listing, a title constant, the builder call and
its section) with titles that drifted apart. A :class:`TableSpec` is the one place: the registry lists its id and
title, the builder lays it out with :meth:`TableSpec.build` (``pivot_table`` underneath), and the reference validator
(``report/paper.py`` :func:`check_reference_tables`) checks a reference's row and column against the labels a spec
knows before any run (:meth:`TableSpec.layout`; axes read off the data, such as an ε grid, are checked when a run at
the reference's scale is reported). Adding a table to a paper = one spec in its list plus its reference numbers.

An axis whose order or labels depend on the rows (the grid that ran) takes a function of the rows; a layout no
single pivot can express (several metrics side by side) stays Python in the paper module, over ``select.melt``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from robustsweep.report.tables import Table, join_columns, pivot_table

Rows = pl.DataFrame
Order = Sequence[Any] | Callable[[Rows], Sequence[Any]] | None
Labels = Mapping[Any, str] | Callable[[Any], str] | None


@dataclass(frozen=True)
class Axis:
    """One axis of a table: the raw key (a column or an expression), its print order and its printed labels."""

    key: str | pl.Expr
    order: Order = None
    labels: Labels = None
    header: str | None = None  # the row header (row axis only); default: the key's name

    def resolve(self, rows: Rows) -> tuple[list[Any] | None, dict[Any, str] | None]:
        order = self.order(rows) if callable(self.order) else self.order
        order = None if order is None else list(order)
        if callable(self.labels):
            return order, {v: self.labels(v) for v in order or []}
        return order, None if self.labels is None else dict(self.labels)

    def static(self) -> list[str] | None:
        """The printed labels when neither order nor labels depend on the rows, else None."""
        if self.order is None or callable(self.order):
            return None
        if callable(self.labels):
            return [self.labels(v) for v in self.order]
        return [str((self.labels or {}).get(v, v)) for v in self.order]


def models(order: Sequence[str], key: str = "cfg.model.name", header: str = "model") -> Axis:
    """Model rows printed upper-case (``gfz`` -> ``GFZ``), as the deep-Bayes tables do."""
    return Axis(key, list(order), {m: m.upper() for m in order}, header)


@dataclass(frozen=True)
class TableSpec:
    """One paper table (module docstring). ``clean`` prepends a "clean" column of that metric (one per row:
    the clean accuracy every attacked row of a trial repeats, averaged over a trial's rows)."""

    id: str
    title: str
    experiment: str = ""
    metric: str = ""
    rows: Axis | None = None
    cols: Axis | None = None
    filter: pl.Expr | None = None
    caption: str = ""
    digits: int = 3
    duplicates: str = "error"
    clean: str | None = None

    def with_(self, **changes: Any) -> TableSpec:
        """A copy with some fields changed (the same shape over other rows or another attack)."""
        return replace(self, **changes)

    def build(self, rows: Rows, *, source: Rows | None = None, **overrides: Any) -> Table:
        """The table laid out from ``rows``; axes read off the data read ``source`` (default ``rows``: a melted
        frame's axes come from the experiment's rows); ``overrides`` (e.g. a ``title`` naming the run's ε) win."""
        spec = replace(self, **{k: v for k, v in overrides.items() if k in self.__dataclass_fields__})
        extra = {k: v for k, v in overrides.items() if k not in self.__dataclass_fields__}
        assert spec.rows is not None and spec.cols is not None, f"table {spec.id}: rows and cols must be declared"
        row_order, row_labels = spec.rows.resolve(rows if source is None else source)
        col_order, col_labels = spec.cols.resolve(rows if source is None else source)
        header = spec.rows.header
        t = pivot_table(rows, row_key=spec.rows.key, col_key=spec.cols.key, metric=spec.metric, row_order=row_order,
                        col_order=col_order, row_labels=row_labels, col_labels=col_labels, filter=spec.filter,
                        digits=spec.digits, id=spec.id, title=spec.title, caption=spec.caption, row_header=header,
                        duplicates=spec.duplicates, **extra)
        if spec.clean is None:
            return t
        clean = pivot_table(rows, row_key=spec.rows.key, col_key=pl.lit("clean"), metric=spec.clean,
                            row_order=row_order, row_labels=row_labels, filter=spec.filter, duplicates="mean",
                            row_header=header)
        return join_columns(clean, t)

    def layout(self) -> tuple[list[str], list[str]] | None:
        """(row labels, column labels) known without a run, or None when an axis is read off the rows."""
        rows = self.rows.static() if self.rows else None
        cols = self.cols.static() if self.cols else None
        if rows is None or cols is None:
            return None
        return rows, (["clean"] if self.clean else []) + cols


def melted(id: str, title: str, header: str, rows: Order, cols: Axis | Order, caption: str = "",  # noqa: A002
           experiment: str = "", **kw: Any) -> TableSpec:
    """A table over :func:`select.melt`'s long frame (``__row`` x ``__col``, value ``v``): several metrics side by
    side. Axes read off the rows are functions of the experiment's rows (``build(long, source=rows)``)."""
    return TableSpec(id, title, experiment, "v", Axis("__row", rows, header=header),
                     cols if isinstance(cols, Axis) else Axis("__col", cols), caption=caption, **kw)


def titles(specs: Sequence[TableSpec]) -> dict[str, str]:
    """id -> title, what ``@paper(tables=...)`` lists."""
    return {s.id: s.title for s in specs}
