"""Aggregate a sweep's Parquet rows with polars: mean/std over seeds per (config, attack, grid value).

Two layouts of the same numbers: the *long* table (:func:`aggregate`, one row per config × attack × grid value with
``<metric>_mean/_std`` and ``n_seeds``; what ``--csv`` writes) and the compact *pivot* (:func:`pivot_summary`, one
block per attack: config rows × grid-value columns, cells "mean ± std"; what ``run`` prints at the end and
``robustsweep results`` shows by default).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import polars as pl

from robustsweep.report.intervals import pooled
from robustsweep.report.select import ok_rows
from robustsweep.report.stats import fmt_cell
from robustsweep.store.parquet import read_sweep, scan_sweep

DEFAULT_METRICS = ("clean_accuracy", "adv_accuracy", "success_rate", "mean_l2", "rho")
CONFIG = "model"  # the pivot's row-header column: the model config label ("gfz dim_z=8")
CLEAN = "clean"  # the pivot's clean-accuracy column

Keys = Sequence[str] | Callable[[pl.DataFrame], list[str]] | None
Block = tuple[str, pl.DataFrame]  # (attack, pivot frame of formatted cells)


def ensure_columns(df: pl.DataFrame, columns: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    """``df`` with every absent column of ``columns`` added as typed nulls: a sweep without fusion trials has no
    ``cfg.model.head``, one that has not run no ``m.*`` metric, and a paper's table should then show "—", not fail."""
    add = [pl.lit(None, dtype).alias(c) for c, dtype in columns.items() if c not in df.columns]
    return df.with_columns(add) if add else df


def column_or(df: pl.DataFrame, col: str, fallback: str) -> str:
    """``col`` where ``df`` has it with at least one value, else ``fallback``: a report reads a newer column and
    falls back to the older one on rows written before the newer one existed."""
    return col if col in df.columns and df[col].drop_nulls().len() else fallback


def one_row_per_trial(df: pl.DataFrame) -> pl.DataFrame:
    """One row per trial, for the metrics every row of a trial repeats (clean accuracy, validation accuracy, clean
    detector rates): the first row among those measured on all of the trial's attacked points. An attack entry with
    its own ``n_eval`` (config/grid.py ATTACK_META) writes rows on fewer points, whose clean accuracy is that of its
    subset -- a trial-level figure must not come from one of those."""
    if df.is_empty() or "trial_id" not in df.columns:
        return df
    if "n_eval" in df.columns:
        n = pl.col("n_eval").fill_null(-1)
        df = df.filter(n == n.max().over("trial_id"))
    return df.unique(subset=["trial_id"], keep="first", maintain_order=True)


def varying_config_columns(df: pl.DataFrame) -> list[str]:
    """Config columns that differ between trials (the sweep's axes); the seed is excluded. ``*.name`` columns come
    first (a reader looks for the model before its settings, whatever order the store's schema has)."""
    cols = [c for c in df.columns if c.startswith("cfg.") and c != "cfg.seed"]
    cols = sorted(cols, key=lambda c: not c.endswith(".name"))  # stable: otherwise the schema's order
    return [c for c in cols if df.select(pl.col(c).cast(pl.String).n_unique()).item() > 1]


def label_columns(df: pl.DataFrame) -> list[str]:
    """Columns that name a config in summaries: the model's name (even when it does not vary), then the axes."""
    first = ["cfg.model.name"] if "cfg.model.name" in df.columns else []
    return first + [c for c in varying_config_columns(df) if c not in first]


def config_label(keys: Sequence[str]) -> pl.Expr:
    """``gfz dim_z=8 lr=0.001``: ``*.name`` values bare, other keys as ``key=value`` (null keys left out).

    Keys are shortened to their last dotted part unless two keys would then print the same (``train.lr`` vs
    ``opt.lr`` keep their paths); a config all of whose keys are null is ``(default)``.
    """
    if not keys:
        return pl.lit("all").alias(CONFIG)
    short = [k.rsplit(".", 1)[-1] for k in keys]
    parts = []
    for k, s in zip(keys, short):
        name = s if short.count(s) == 1 else k.removeprefix("cfg.")
        text = pl.col(k).cast(pl.String) if s == "name" else pl.format("{}={}", pl.lit(name), pl.col(k).cast(pl.String))
        parts.append(pl.when(pl.col(k).is_null()).then(None).otherwise(text))
    label = pl.concat_str(parts, separator=" ", ignore_nulls=True)
    return pl.when(label == "").then(pl.lit("(default)")).otherwise(label).alias(CONFIG)


def aggregate(df: pl.DataFrame, metrics: tuple[str, ...] = DEFAULT_METRICS, *, keys: Keys = None) -> pl.DataFrame:
    """Mean and std over seeds of each metric, per config × attack × grid value (successful trials only); for a
    binomial rate also ``<m>_lo`` / ``<m>_hi`` / ``<m>_points``: its 95 % Wilson interval over the attacked points
    of all seeds (:mod:`robustsweep.report.intervals`).

    ``keys``: the config columns to group by (a list, or a function of ``df``); default the varying ones.
    """
    ok = ok_rows(df)
    cfg = varying_config_columns(df) if keys is None else list(keys(df) if callable(keys) else keys)
    keys = [*cfg, "attack", "param", "value"]
    metrics = tuple(m for m in metrics if m in ok.columns)
    if ok.is_empty():
        return pl.DataFrame()
    aggs = [pl.col("seed").n_unique().alias("n_seeds")]
    for m in metrics:
        aggs += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().alias(f"{m}_std")]
    out = ok.group_by(keys, maintain_order=True).agg(aggs)
    for m in metrics:  # a binomial rate: its 95 % Wilson interval over the attacked points, seeds pooled
        cells = pooled(ok, keys, m)
        if not cells.is_empty():
            cells = cells.select(*keys, pl.col("lo").alias(f"{m}_lo"), pl.col("hi").alias(f"{m}_hi"),
                                 pl.col("points").alias(f"{m}_points"))
            out = out.join(cells, on=keys, how="left", nulls_equal=True)
    return out.sort(keys, nulls_last=True)


def sweep_table(results: str | Path, sweep: str, metrics: tuple[str, ...] = DEFAULT_METRICS, *,
                keys: Keys = None) -> pl.DataFrame:
    return aggregate(read_sweep(results, sweep), metrics, keys=keys)


# ------------------------------------------------------------------------------------------------------- pivot
def _value_label(param: str | None, value: float) -> str:
    return f"{param or 'value'}={value:g}"


def pivot_blocks(agg: pl.DataFrame, metric: str = "adv_accuracy", *, digits: int = 3) -> list[Block]:
    """The long table of :func:`aggregate` (with ``clean_accuracy`` and ``metric``) as one pivot per attack.

    Rows: the configs (label from the table's ``cfg.*`` columns); columns: ``clean`` then the attack's grid values
    (``eps=0.1``…) in increasing order; cells ``mean ± std`` over seeds (``stats.fmt_cell``), "—" where no seed
    produced the cell, and " (n=k)" where fewer seeds than the block's fullest cell did.
    """
    if agg.is_empty() or f"{metric}_mean" not in agg.columns:
        return []
    keys = [c for c in agg.columns if c.startswith("cfg.")]
    agg = agg.with_columns(config_label(keys))
    labels = list(dict.fromkeys(agg[CONFIG].to_list()))
    has_clean = "clean_accuracy_mean" in agg.columns
    blocks: list[Block] = []
    names = sorted({a for a in agg["attack"].to_list() if a is not None})
    for attack in [a for a in names if a != "none"] or names:  # 'none': clean-only rows of attack-free trials
        sub = agg.filter(pl.col("attack") == attack)
        cols = sorted({(p, v) for p, v in sub.select("param", "value").iter_rows() if v is not None},
                      key=lambda pv: (pv[0] or "", pv[1]))
        full_n = sub["n_seeds"].max() or 0
        grid: dict[str, list[str]] = {CONFIG: [], **({CLEAN: []} if has_clean else {}),
                                      **{_value_label(p, v): [] for p, v in cols}}
        for label in labels:
            rows = sub.filter(pl.col(CONFIG) == label)
            if rows.is_empty():
                continue
            grid[CONFIG].append(label)
            if has_clean:
                best = rows.sort("n_seeds", descending=True).row(0, named=True)
                grid[CLEAN].append(_cell(best["clean_accuracy_mean"], best["clean_accuracy_std"], best["n_seeds"],
                                         full_n, digits))
            cells = {(r["param"], r["value"]): r for r in rows.iter_rows(named=True)}
            for p, v in cols:
                r = cells.get((p, v))
                grid[_value_label(p, v)].append(
                    _cell(r[f"{metric}_mean"], r[f"{metric}_std"], r["n_seeds"], full_n, digits) if r else fmt_cell(None))
        blocks.append((attack, pl.DataFrame(grid, schema={k: pl.String for k in grid})))
    return blocks


def _cell(mean: float | None, std: float | None, n: int, full_n: int, digits: int) -> str:
    text = fmt_cell(mean, std, digits)
    return text + f" (n={n})" if mean is not None and n < full_n else text


def pivot_summary(df: pl.DataFrame, metric: str = "adv_accuracy", *, digits: int = 3) -> list[Block]:
    """Compact summary of a sweep's rows: ``[(attack, frame)]``, see :func:`pivot_blocks` (failed trials excluded)."""
    return pivot_blocks(aggregate(df, ("clean_accuracy", metric), keys=label_columns), metric, digits=digits)


def sweep_pivot(results: str | Path, sweep: str, metric: str = "adv_accuracy", *, digits: int = 3) -> list[Block]:
    """:func:`pivot_summary` of a stored sweep (built on :func:`sweep_table`)."""
    agg = sweep_table(results, sweep, ("clean_accuracy", metric), keys=label_columns)
    return pivot_blocks(agg, metric, digits=digits)


def format_pivot(blocks: Sequence[Block], metric: str = "adv_accuracy") -> str:
    """The blocks as aligned Markdown pipe tables under an ``attack: metric`` heading each (terminal and .md)."""
    if not blocks:
        return "(no successful trials yet)"
    out: list[str] = []
    for attack, frame in blocks:
        out += [f"{attack}: {metric} (mean ± std over seeds)", _aligned(frame), ""]
    return "\n".join(out).rstrip()


def _aligned(frame: pl.DataFrame) -> str:
    cols = frame.columns
    rows = [[str(v) for v in r] for r in frame.iter_rows()]
    width = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, width))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(width)) + "|"
    return "\n".join([line(cols), sep, *(line(r) for r in rows)])


# -------------------------------------------------------------------------------------------------- long table
def to_markdown(df: pl.DataFrame, digits: int = 4) -> str:
    if df.is_empty():
        return "(no rows)"
    cols = df.columns

    def fmt(v) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return str(v)

    lines = ["| " + " | ".join(c.removeprefix("cfg.") for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.iter_rows()]
    return "\n".join(lines)


def query(results: str | Path, sweep: str, sql: str) -> pl.DataFrame:
    """Run polars SQL over the sweep; the rows' table is called ``results`` (also ``trials``), the per-example
    outcomes' ``outcomes`` (store/outcomes.py; opened only when the query names it, so a rows-only query never
    pays for them)."""
    import re

    lf = scan_sweep(results, sweep)
    frames = {"results": lf, "trials": lf}
    if re.search(r"\boutcomes\b", sql, re.IGNORECASE):
        from robustsweep.store.outcomes import scan_outcomes

        frames["outcomes"] = scan_outcomes(results, sweep)
    ctx = pl.SQLContext(frames=frames, eager=False)
    return ctx.execute(sql).collect()
