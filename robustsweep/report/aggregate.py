"""Aggregate a sweep's Parquet rows with polars: mean/std over seeds per (config, attack, grid value)."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from robustsweep.store.parquet import read_sweep, scan_sweep

DEFAULT_METRICS = ("clean_accuracy", "adv_accuracy", "success_rate", "mean_l2", "rho")


def varying_config_columns(df: pl.DataFrame) -> list[str]:
    """Config columns that differ between trials (the sweep's axes); the seed is excluded."""
    cols = [c for c in df.columns if c.startswith("cfg.") and c != "cfg.seed"]
    return [c for c in cols if df.select(pl.col(c).cast(pl.String).n_unique()).item() > 1]


def aggregate(df: pl.DataFrame, metrics: tuple[str, ...] = DEFAULT_METRICS) -> pl.DataFrame:
    """Mean and std over seeds of each metric, per config × attack × grid value (successful trials only)."""
    ok = df.filter(pl.col("status") == "ok")
    keys = [*varying_config_columns(df), "attack", "param", "value"]
    metrics = tuple(m for m in metrics if m in ok.columns)
    if ok.is_empty():
        return pl.DataFrame()
    aggs = [pl.col("seed").n_unique().alias("n_seeds")]
    for m in metrics:
        aggs += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().alias(f"{m}_std")]
    return ok.group_by(keys, maintain_order=True).agg(aggs).sort(keys, nulls_last=True)


def sweep_table(results: str | Path, sweep: str, metrics: tuple[str, ...] = DEFAULT_METRICS) -> pl.DataFrame:
    return aggregate(read_sweep(results, sweep), metrics)


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
    """Run polars SQL over the sweep; the table is called ``results`` (also ``trials`` / the sweep's name)."""
    lf = scan_sweep(results, sweep)
    ctx = pl.SQLContext(frames={"results": lf, "trials": lf}, eager=False)
    return ctx.execute(sql).collect()
