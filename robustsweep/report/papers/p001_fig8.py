"""Paper 001 Fig. 8 (§4.3): GBZ / GBY / DBX heads on VGG16 features at CONV9 and FC1 vs the VGG16 itself on CIFAR-10,
under white-box FGSM / PGD / MIM, with detection rates (``experiments/p001_fig8.yaml``; at ci a small cnn and its
pool1 / conv2+fc1 taps stand in). Rows are labelled as the paper's legend (``GBZ-CONV9``…); the four sentences of
§4.3 are named checks at the middle ε of the grid. No ``@paper`` here: ``p001.py`` calls :func:`build_fig8`.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult, compare_means
from robustsweep.report.html import Section
from robustsweep.report.tables import Table, join_columns, pivot_table

EXPERIMENT = "deep-bayes-fig8"
SHALLOW, DEEP = ("conv9", "pool1"), ("conv13+fc1", "conv2+fc1")  # paper tap, ci stand-in
ROWS = ["VGG16", "GBZ-CONV9", "GBY-CONV9", "DBX-CONV9", "GBZ-FC1", "GBY-FC1", "DBX-FC1"]
TABLES = {"fig8-fgsm": "Fig. 8: accuracy under white-box FGSM (CIFAR-10, VGG16 features)",
          "fig8-pgd": "Fig. 8: accuracy under white-box PGD (CIFAR-10, VGG16 features)",
          "fig8-mim": "Fig. 8: accuracy under white-box MIM (CIFAR-10, VGG16 features)",
          "fig8-detection": "Fig. 8: detection rates of successful PGD adversarials (5 % FPR)"}
DETECTORS = ["marginal", "logit", "kl"]


def with_label(rows: pl.DataFrame) -> pl.DataFrame:
    """``__fig8`` = the paper's legend name: VGG16 for the plain backbone (vgg16 / ci cnn), HEAD-CONV9 / HEAD-FC1."""
    rows = ensure_columns(rows, {"cfg.model.name": pl.String, "cfg.model.head": pl.String,
                                 "cfg.model.feature_depth": pl.String})
    head = pl.col("cfg.model.head") if "cfg.model.head" in rows.columns else pl.lit(None, pl.String)
    depth = pl.col("cfg.model.feature_depth") if "cfg.model.feature_depth" in rows.columns else pl.lit(None, pl.String)
    tap = pl.when(depth.is_in(list(SHALLOW))).then(pl.lit("CONV9")).when(depth.is_in(list(DEEP))).then(pl.lit("FC1"))
    # the baseline: the heads' own backbone (fusion-backbone); vgg16 / cnn rows of sweeps written before it existed
    label = (pl.when(pl.col("cfg.model.name").is_in(["fusion-backbone", "vgg16", "cnn"])).then(pl.lit("VGG16"))
             .when(pl.col("cfg.model.name") == "fusion").then(pl.format("{}-{}", head.str.to_uppercase(), tap)))
    return rows.with_columns(label.alias("__fig8"))


def _grid(rows: pl.DataFrame, attack: str) -> list[float]:
    ok = rows.filter((pl.col("status") == "ok") & (pl.col("attack") == attack)) if not rows.is_empty() else rows
    return sorted(set(ok["value"].drop_nulls().to_list())) if "value" in ok.columns else []


def accuracy(rows: pl.DataFrame, attack: str) -> Table:
    """Clean accuracy, then accuracy at every ε of ``attack``."""
    grid = _grid(rows, attack)
    t = pivot_table(rows, row_key="__fig8", col_key="value", metric="adv_accuracy", row_order=ROWS, col_order=grid,
                    col_labels={v: f"ε={v:g}" for v in grid}, filter=pl.col("attack") == attack,
                    id=f"fig8-{attack}", title=TABLES[f"fig8-{attack}"], row_header="model")
    clean = pivot_table(rows, row_key="__fig8", col_key=pl.lit("clean"), metric="clean_accuracy", row_order=ROWS,
                        filter=pl.col("attack") == attack, duplicates="mean", row_header="model")
    return join_columns(clean, t)


def detection(rows: pl.DataFrame) -> Table:
    grid = _grid(rows, "pgd")
    sub = rows.filter(pl.col("attack") == "pgd") if not rows.is_empty() else rows
    long = pl.concat([sub.with_columns(pl.format("{} {}", pl.col("__fig8"), pl.lit(d)).alias("__md"),
                                       (pl.col(f"det.{d}.tpr") if f"det.{d}.tpr" in sub.columns
                                        else pl.lit(None, pl.Float64)).alias("__tpr")) for d in DETECTORS],
                     how="diagonal_relaxed")
    return pivot_table(long, row_key="__md", col_key="value", metric="__tpr",
                       row_order=[f"{r} {d}" for r in ROWS for d in DETECTORS], col_order=grid,
                       col_labels={v: f"ε={v:g}" for v in grid}, id="fig8-detection", title=TABLES["fig8-detection"],
                       row_header="model / detector")


def claims(rows: pl.DataFrame) -> list[CheckResult]:
    grid = _grid(rows, "pgd")
    mid = grid[len(grid) // 2] if grid else None
    at = (pl.col("status") == "ok") & (pl.col("attack") == "pgd")
    if mid is not None:
        at &= (pl.col("value") - mid).abs() < 1e-9
    lab = pl.col("__fig8")
    heads = ["GBZ-CONV9", "GBY-CONV9", "DBX-CONV9", "GBZ-FC1", "GBY-FC1", "DBX-FC1"]
    w = f"PGD eps={mid}"
    return [
        compare_means(rows, at & lab.is_in(heads), at & (lab == "VGG16"), "adv_accuracy", ">", label_a="heads (mean)",
                      label_b="VGG16", at=w, name="fig8-heads-beat-vgg16",
                      claim="§4.3: for all LVM-based classifiers, clear robustness improvements over the VGG16 baseline"),
        compare_means(rows, at & lab.is_in(["GBZ-CONV9", "GBY-CONV9"]), at & (lab == "DBX-CONV9"), "adv_accuracy",
                      ">", label_a="GBZ/GBY-CONV9", label_b="DBX-CONV9", at=w, name="fig8-generative-beat-dbx",
                      claim="§4.3: GBZ and GBY with CONV9 features are overall better than DBX"),
        compare_means(rows, at & lab.is_in(["GBZ-CONV9", "GBY-CONV9"]), at & lab.is_in(["GBZ-FC1", "GBY-FC1"]),
                      "adv_accuracy", ">", label_a="GBZ/GBY-CONV9", label_b="GBZ/GBY-FC1", at=w,
                      name="fig8-conv9-beats-fc1",
                      claim="§4.3: generative classifiers on CONV9 features are significantly more robust than on FC1"),
        _similar(rows, at, w),
    ]


def _similar(rows: pl.DataFrame, at: pl.Expr, where: str, tol: float = 0.05) -> CheckResult:
    """§4.3: "for DBX ... the robustness results are very similar" (CONV9 vs FC1 within ``tol``)."""
    from robustsweep.report.checks import seed_mean

    a, na = seed_mean(rows, at & (pl.col("__fig8") == "DBX-CONV9"), "adv_accuracy")
    b, nb = seed_mean(rows, at & (pl.col("__fig8") == "DBX-FC1"), "adv_accuracy")
    obs = (f"adv_accuracy: DBX-CONV9 {'—' if a is None else f'{a:.3f}'} (n={na}) vs DBX-FC1 "
           f"{'—' if b is None else f'{b:.3f}'} (n={nb}) at {where}; |Δ| <= {tol}")
    holds = None if a is None or b is None else abs(a - b) <= tol
    return CheckResult("fig8-dbx-depth-similar", "§4.3: for the discriminative DBX, CONV9 and FC1 features give very "
                       "similar robustness", holds, obs)


def build_fig8(ctx) -> list[Section]:
    rows = with_label(ctx.rows(EXPERIMENT))
    return [Section("Fig. 8: deep-Bayes heads on VGG16 features (CIFAR-10)",
                    text="Rows as the paper's legend; at ci the small cnn stands in for VGG16, its pool1 tap for "
                         "CONV9 and conv2+fc1 for FC1. The paper downloads a CIFAR-10 VGG16; ours is trained by the "
                         "fusion code and cached.",
                    tables=[accuracy(rows, "fgsm"), accuracy(rows, "pgd"), accuracy(rows, "mim"), detection(rows)],
                    checks=claims(rows))]
