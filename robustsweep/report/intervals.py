"""Binomial 95 % intervals for every rate a row carries, over its attacked points (issue 38, part 6).

Why binomial and why Wilson: a rate such as ``adv_accuracy`` is k successes out of n attacked points, and the
number a reviewer needs beside it is how far it could be from the rate on the whole test set -- a cell of 0.3 on
10 points has a 95 % interval of about 0.11-0.60. Wilson's score interval (Wilson 1927; Brown, Cai & DasGupta 2001
recommend it over the normal approximation, which collapses at 0 and 1) keeps its coverage at small n. k is the
rate times its denominator; every rate of a row has a known denominator (:func:`denominator`): the attacked points
(``n_eval``), the initially-correct ones (success rates, attacker success), the successful adversarials (a
detector's TPR). A class-averaged rate (paper 001's per-class detector rates) is no binomial count: it gets none.
Seeds pool: k and n add up over the seeds of a cell (intervals over seeds stay where there are seeds: the
``ci_lo``/``ci_hi`` of :mod:`robustsweep.report.stats`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from robustsweep.store import columns as col

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
THIN = 30  # a cell on fewer attacked points than this is marked "thin" (its interval is wide whatever it says)

_N_EVAL = ("adv_accuracy", "clean_accuracy")
_N_CORRECT = ("success_rate",)
_DET_N_EVAL = ("fpr", "reject_adv", "accept_correct_adv")
_DET_N_CORRECT = ("attacker_success", "attacker_success_fpr1", "attacker_success_fpr5", "attacker_success_fpr10")


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials (``(nan, nan)`` for n = 0)."""
    if not n:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # exactly 0 / 1 at k = 0 / k = n (the formula's value there, without its floating-point residue)
    return (0.0 if k <= 0 else max(0.0, centre - half)), (1.0 if k >= n else min(1.0, centre + half))


def _n_correct() -> pl.Expr:
    return (pl.col("clean_accuracy") * pl.col("n_eval")).round(0)


def denominator(metric: str, columns: Sequence[str]) -> pl.Expr | None:
    """The number of points ``metric`` is a fraction of, as an expression over a row; None for a metric that is not
    a binomial rate (a distance, an AUC, a class-averaged rate, a time) or whose counts the rows do not carry."""
    n = _denominator(metric, columns)
    return n if n is not None and set(n.meta.root_names()) <= set(columns) else None


def _denominator(metric: str, columns: Sequence[str]) -> pl.Expr | None:
    if metric in _N_EVAL:
        return pl.col("n_eval").cast(pl.Float64)
    if metric in _N_CORRECT:
        return _n_correct()
    parts = col.split_det(metric)
    if parts is None:
        return None
    det, name = parts
    pooled = col.det(det, f"{name}_pooled")
    if name in ("tpr", "fpr") and pooled in columns:  # a class-averaged detector: its tpr / fpr are class means
        averaged = pl.col(pooled).is_not_null()
    else:
        averaged = pl.lit(False)
    if name in ("tpr", "tpr_pooled") and col.det(det, "n_pos") in columns:
        n = pl.col(col.det(det, "n_pos")).cast(pl.Float64)
    elif name in _DET_N_EVAL or name == "fpr_pooled":
        n = pl.col("n_eval").cast(pl.Float64)
    elif name in _DET_N_CORRECT:
        n = _n_correct()
    elif name == "fpr_correct":
        n = _n_correct()
    elif name == "fpr_wrong":
        n = pl.col("n_eval") - _n_correct()
    else:
        return None
    return pl.when(averaged).then(None).otherwise(n)


def _bounds(df: pl.DataFrame, k: pl.Expr, n_col: str, prefix: str) -> pl.DataFrame:
    k_vals = df.select(k.round(0)).to_series().to_list()
    n_vals = df[n_col].to_list()
    lo, hi = zip(*[wilson(a, b) if a is not None and b is not None and not math.isnan(a) and b > 0 else (None, None)
                   for a, b in zip(k_vals, n_vals)]) if df.height else ((), ())
    return df.with_columns(pl.Series(f"{prefix}_lo", list(lo), pl.Float64), pl.Series(f"{prefix}_hi", list(hi), pl.Float64))


def pooled(rows: pl.DataFrame, keys: Sequence[str], metric: str) -> pl.DataFrame:
    """Per cell of ``keys``: ``rate`` = Σk / Σn over its rows (seeds), ``points`` = Σn, ``lo`` / ``hi`` the Wilson
    interval, ``thin`` when points < :data:`THIN`. Empty when ``metric`` is no binomial rate."""
    schema = {**{k: rows.schema[k] for k in keys}, "rate": pl.Float64, "points": pl.Float64, "lo": pl.Float64,
              "hi": pl.Float64, "thin": pl.Boolean}
    if metric not in rows.columns or (n := denominator(metric, rows.columns)) is None:
        return pl.DataFrame(schema=schema)
    df = (rows.with_columns(n.alias("__n"), pl.col(metric).cast(pl.Float64).alias("__r"))
          .filter(pl.col("__n").is_not_null() & pl.col("__r").is_not_null() & pl.col("__r").is_not_nan()
                  & (pl.col("__n") > 0))
          .group_by(list(keys), maintain_order=True)
          .agg((pl.col("__r") * pl.col("__n")).round(0).sum().alias("__k"), pl.col("__n").sum().alias("points")))
    df = df.with_columns((pl.col("__k") / pl.col("points")).alias("rate"))
    df = _bounds(df, pl.col("__k"), "points", "__ci")
    return df.with_columns(pl.col("__ci_lo").alias("lo"), pl.col("__ci_hi").alias("hi"),
                           (pl.col("points") < THIN).alias("thin")).select(list(schema))


def fmt_interval(rate: float | None, lo: float | None, hi: float | None, points: float | None,
                 digits: int = 3) -> str:
    """``0.300 [0.108, 0.603] n=10†``: the rate, its 95 % interval, its points; † on a thin cell."""
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "—"
    text = f"{rate:.{digits}f}"
    if lo is not None and hi is not None:
        text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    if points is not None:
        text += f" n={points:.0f}" + ("†" if points < THIN else "")
    return text
