"""Paper 001 appendix A.2: the bottleneck effect -- PGD accuracy of GBZ / GBY / DBX against dim(z)
(``experiments/p001_dimz.yaml``). The appendix's sentence (§4.4) "using a small bottleneck improves the robustness of
the classifier against l-inf attacks" is a named check: the three models' mean PGD accuracy at the middle ε of the
grid is higher at the smallest dim(z) than at the largest. No ``@paper`` here: ``p001.py`` calls :func:`build_a2`.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult, compare_means
from robustsweep.report.html import Section
from robustsweep.report.tables import Table, pivot_table

EXPERIMENT = "deep-bayes-dimz"
MODELS = ["gbz", "gby", "dbx"]
TABLES = {"a2-dimz": "Appendix A.2: victim accuracy under PGD vs dim(z) of the bottleneck models"}


def _grid(rows: pl.DataFrame, col: str) -> list[float]:
    ok = rows.filter((pl.col("status") == "ok") & (pl.col("attack") == "pgd")) if not rows.is_empty() else rows
    return sorted(set(ok[col].drop_nulls().to_list())) if col in ok.columns else []


def a2_table(rows: pl.DataFrame, eps: float | None) -> Table:
    """Rows: model · dim(z); columns: clean accuracy and PGD accuracy at every ε."""
    grid, dims = _grid(rows, "value"), _grid(rows, "cfg.model.dim_z")
    sub = rows.filter(pl.col("attack") == "pgd") if not rows.is_empty() else rows
    row = pl.format("{} · dim(z)={}", pl.col("cfg.model.name").str.to_uppercase(), pl.col("cfg.model.dim_z"))
    long = pl.concat([sub.select("seed", "status", row.alias("__row"), pl.lit("clean").alias("__col"),
                                 pl.col("clean_accuracy").cast(pl.Float64).alias("v")),
                      sub.select("seed", "status", row.alias("__row"), pl.format("ε={}", pl.col("value")).alias("__col"),
                                 pl.col("adv_accuracy").cast(pl.Float64).alias("v"))], how="vertical_relaxed") \
        if not sub.is_empty() else pl.DataFrame()
    order = [f"{m.upper()} · dim(z)={int(d)}" for m in MODELS for d in dims]
    return pivot_table(long, row_key="__row", col_key="__col", metric="v", row_order=order,
                       col_order=["clean", *[f"ε={v}" for v in grid]], id="a2-dimz", title=TABLES["a2-dimz"],
                       row_header="model · dim(z)", duplicates="mean",
                       caption=f"Mean over seeds. The check reads the middle ε ({eps}).")


def a2_check(rows: pl.DataFrame, eps: float | None) -> CheckResult:
    dims = _grid(rows, "cfg.model.dim_z")
    at = (pl.col("status") == "ok") & (pl.col("attack") == "pgd") & pl.col("cfg.model.name").is_in(MODELS)
    if eps is not None:
        at &= (pl.col("value") - eps).abs() < 1e-9
    lo, hi = (dims[0], dims[-1]) if dims else (None, None)
    def of(d: float | None) -> pl.Expr:  # no rows at all: an always-false filter, not a comparison with None
        return at & (pl.col("cfg.model.dim_z") == d) if d is not None else pl.lit(False)

    return compare_means(rows, of(lo), of(hi),
                         "adv_accuracy", ">", label_a=f"dim(z)={lo}", label_b=f"dim(z)={hi}",
                         at=f"PGD eps={eps}, GBZ GBY DBX", name="a2-small-bottleneck-more-robust",
                         claim="§4.4 / appendix A.2: a small bottleneck improves robustness against l-inf attacks")


def build_a2(ctx) -> list[Section]:
    rows = ensure_columns(ctx.rows(EXPERIMENT), {"cfg.model.name": pl.String, "cfg.model.dim_z": pl.Int64})
    grid = _grid(rows, "value")
    eps = grid[len(grid) // 2] if grid else None
    return [Section("Appendix A.2: the bottleneck effect (dim(z))", tables=[a2_table(rows, eps)],
                    checks=[a2_check(rows, eps)])]
