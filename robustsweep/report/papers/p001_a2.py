"""Paper 001 appendix A.2: the bottleneck effect -- PGD accuracy of GBZ / GBY / DBX against dim(z)
(``experiments/p001_dimz.yaml``). The appendix's sentence (§4.4) "using a small bottleneck improves the robustness of
the classifier against l-inf attacks" is a named check: the three models' mean PGD accuracy at the middle ε of the
grid is higher at the smallest dim(z) than at the largest.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult, compare_means
from robustsweep.report.declare import Axis, TableSpec
from robustsweep.report.html import Section
from robustsweep.report.select import at, grid, melt, middle, upper
from robustsweep.report.tables import Table

EXPERIMENT = "deep-bayes-dimz"
MODELS = ["gbz", "gby", "dbx"]
SPECS = [TableSpec("a2-dimz", "Appendix A.2: victim accuracy under PGD vs dim(z) of the bottleneck models", EXPERIMENT,
                   "v", Axis("__row", lambda rows: [f"{m.upper()} · dim(z)={int(d)}" for m in MODELS
                                                    for d in grid(rows, "pgd", "cfg.model.dim_z")],
                             header="model · dim(z)"),
                   Axis("__col", lambda rows: ["clean", *[f"ε={v}" for v in grid(rows, "pgd")]]), duplicates="mean")]


def a2_table(rows: pl.DataFrame, eps: float | None) -> Table:
    """Rows: model · dim(z); columns: clean accuracy and PGD accuracy at every ε."""
    sub = rows.filter(pl.col("attack") == "pgd") if not rows.is_empty() else rows
    row = pl.format("{} · dim(z)={}", upper(), pl.col("cfg.model.dim_z"))
    long = melt(sub, [("clean_accuracy", "clean"), ("adv_accuracy", "")], row,
                lambda m: pl.lit("clean") if m else pl.format("ε={}", pl.col("value"))) if not sub.is_empty() \
        else pl.DataFrame()
    return SPECS[0].build(long, source=rows, caption=f"Mean over seeds. The check reads the middle ε ({eps}).")


def a2_check(rows: pl.DataFrame, eps: float | None) -> CheckResult:
    dims = grid(rows, "pgd", "cfg.model.dim_z")
    sel = at("pgd", eps) & pl.col("cfg.model.name").is_in(MODELS)
    lo, hi = (dims[0], dims[-1]) if dims else (None, None)

    def of(d: float | None) -> pl.Expr:  # no rows at all: an always-false filter, not a comparison with None
        return sel & (pl.col("cfg.model.dim_z") == d) if d is not None else pl.lit(False)

    return compare_means(rows, of(lo), of(hi), "adv_accuracy", ">", label_a=f"dim(z)={lo}", label_b=f"dim(z)={hi}",
                         at=f"PGD eps={eps}, GBZ GBY DBX", name="a2-small-bottleneck-more-robust",
                         claim="§4.4 / appendix A.2: a small bottleneck improves robustness against l-inf attacks")


def build_a2(ctx) -> list[Section]:
    rows = ensure_columns(ctx.rows(EXPERIMENT), {"cfg.model.name": pl.String, "cfg.model.dim_z": pl.Int64})
    eps = middle(grid(rows, "pgd"))
    return [Section("Appendix A.2: the bottleneck effect (dim(z))", tables=[a2_table(rows, eps)],
                    checks=[a2_check(rows, eps)])]
