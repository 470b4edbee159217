"""Numbers behind every report cell: mean, std and a bootstrap CI over seeds, and how a cell is printed.

Why a bootstrap: our sweeps run 2-5 seeds per config, and a metric such as adversarial accuracy is bounded in
[0, 1] and often sits near a bound, so a t-interval (which assumes normal seed-to-seed noise) can run outside
[0, 1]. The 95 % *percentile* bootstrap of the mean never leaves the range of the observed values and needs no
distributional assumption. Its limitation is the flip side: with 3 seeds there are only 10 distinct resampled
means, so the interval is narrow (it under-covers) and should be read as "how much the seeds disagree", not as
a calibrated confidence statement. The resampling is seeded (``seed=0`` by default), so a report rebuilt from
the same rows prints the same intervals, which keeps diffs of generated reports meaningful.

Conventions: a cell is aggregated over *seeds*: rows of one seed are first averaged (a seed is one
measurement), and the std is the sample std (ddof=1, as polars' ``std``). Null/NaN metric values (an undefined
metric, e.g. ``mean_l2`` when no attack succeeded) do not count as a seed's value. With one value the std is
``None`` and the CI collapses to ``(v, v)``; with none, everything is ``None`` and ``n == 0``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from robustsweep.report.select import OK

N_RESAMPLES = 1000
LEVEL = 0.95
MISSING = "—"  # what a cell without any value prints

Stats = tuple[float | None, float | None, float | None, float | None, int]


def _clean(values: Iterable[float | None]) -> np.ndarray:
    """Finite floats only: null and NaN mean "not measured", never zero."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return np.asarray(vals, dtype=np.float64)


def bootstrap_ci(
    values: Iterable[float | None], *, n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean (see module docstring for why); deterministic for a ``seed``."""
    x = _clean(values)
    if x.size == 0:
        return None, None
    if x.size == 1:
        return float(x[0]), float(x[0])
    import scipy.stats  # here, not at the top: it takes about a second to import, and status/query never need it

    # one call of rng.integers(0, n, (n_resamples, n)) for the resamples and linear quantiles of their means: the
    # hand-written version this replaced drew and cut the same way (tests/report/test_stats.py keeps it as the oracle)
    res = scipy.stats.bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=level, method="percentile",
                                vectorized=True, rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    return float(lo), float(hi)


def mean_std_ci(
    values: Iterable[float | None], *, n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = 0
) -> Stats:
    """``(mean, std, ci_lo, ci_hi, n)`` of per-seed values; std is ``None`` below two values, all ``None`` at 0."""
    x = _clean(values)
    if x.size == 0:
        return None, None, None, None, 0
    std = float(x.std(ddof=1)) if x.size > 1 else None
    lo, hi = bootstrap_ci(x.tolist(), n_resamples=n_resamples, level=level, seed=seed)
    return float(x.mean()), std, lo, hi, int(x.size)


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_cell(mean: float | None, std: float | None = None, digits: int = 3) -> str:
    """``"0.912 ± 0.013"``; just ``"0.912"`` without a std (one seed); ``"—"`` without a value.

    Fixed decimals rather than significant digits, because papers print columns with aligned decimals and a
    reader compares cells down a column.
    """
    if _missing(mean):
        return MISSING
    if _missing(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def per_seed(df: pl.DataFrame, keys: Sequence[str], metric: str) -> pl.DataFrame:
    """One value per (keys…, seed): the mean of ``metric`` over that seed's successful rows.

    Failed trials are dropped here (they have no metrics); rows of one seed are averaged first so that a seed
    counts once however many rows it wrote. Without a ``seed`` column every row counts as its own seed.
    """
    if "status" in df.columns:
        df = df.filter(OK)
    if "seed" not in df.columns:
        df = df.with_row_index("seed")
    return (
        df.filter(pl.col(metric).is_not_null() & pl.col(metric).cast(pl.Float64).is_not_nan())
        .group_by([*keys, "seed"], maintain_order=True)
        .agg(pl.col(metric).cast(pl.Float64).mean().alias(metric))
    )


def summarize(df: pl.DataFrame, keys: Sequence[str], metric: str, *, seed: int = 0) -> pl.DataFrame:
    """``keys… , mean, std, ci_lo, ci_hi, n`` over seeds (see :func:`per_seed`), in first-seen key order."""
    vals = per_seed(df, keys, metric).group_by(list(keys), maintain_order=True).agg(pl.col(metric).alias("_v"))
    out: list[dict[str, object]] = []
    for rec in vals.iter_rows(named=True):
        mean, std, lo, hi, n = mean_std_ci(rec.pop("_v"), seed=seed)
        out.append({**rec, "mean": mean, "std": std, "ci_lo": lo, "ci_hi": hi, "n": n})
    schema = {k: df.schema[k] for k in keys} | {
        "mean": pl.Float64, "std": pl.Float64, "ci_lo": pl.Float64, "ci_hi": pl.Float64, "n": pl.Int64,
    }
    return pl.DataFrame(out, schema=schema)
