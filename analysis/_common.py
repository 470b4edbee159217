"""Shared argument parsing and label helpers for the analysis scripts."""
from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from robustsweep.report.aggregate import varying_config_columns
from robustsweep.store.parquet import read_sweep


def parse(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("sweep")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="report", help="folder for the tables and figures")
    a = ap.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    return a


def load(results: str, sweep: str) -> tuple[pl.DataFrame, list[str]]:
    """Successful rows of the sweep, with a ``label`` column naming each config by its varying keys."""
    df = read_sweep(results, sweep)
    keys = varying_config_columns(df)
    ok = df.filter(pl.col("status") == "ok")
    label = pl.concat_str([pl.format("{}={}", pl.lit(k.removeprefix("cfg.")), pl.col(k).cast(pl.String))
                           for k in keys], separator=" ") if keys else pl.lit("all")
    return ok.with_columns(label.alias("label")), keys
