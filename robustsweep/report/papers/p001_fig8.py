"""Paper 001 Fig. 8 (§4.3): GBZ / GBY / DBX heads on VGG16 features at CONV9 and FC1 vs the VGG16 itself on CIFAR-10,
under white-box FGSM / PGD / MIM, with detection rates (``experiments/p001_fig8.yaml``; at ci a small cnn and its
pool1 / conv2+fc1 taps stand in). Rows are labelled as the paper's legend (``GBZ-CONV9``…); the four sentences of
§4.3 are named checks at the middle ε of the grid.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult, compare_means, seed_mean
from robustsweep.report.declare import Axis, TableSpec
from robustsweep.report.html import Section
from robustsweep.report.papers.p001_mnist import detection_rows, grid_axis
from robustsweep.report.select import at, grid, middle

EXPERIMENT = "deep-bayes-fig8"
SHALLOW, DEEP = ("conv9", "pool1"), ("conv13+fc1", "conv2+fc1")  # paper tap, ci stand-in
HEADS = ["GBZ-CONV9", "GBY-CONV9", "DBX-CONV9", "GBZ-FC1", "GBY-FC1", "DBX-FC1"]
ROWS = ["VGG16", *HEADS]
DETECTORS = ["marginal", "logit", "kl"]
SPECS = [TableSpec(f"fig8-{a}", f"Fig. 8: accuracy under white-box {a.upper()} (CIFAR-10, VGG16 features)", EXPERIMENT,
                   "adv_accuracy", Axis("__fig8", ROWS, header="model"), grid_axis(a), pl.col("attack") == a,
                   clean="clean_accuracy") for a in ("fgsm", "pgd", "mim")]
SPECS.append(TableSpec("fig8-detection", "Fig. 8: detection rates of successful PGD adversarials (5 % FPR)", EXPERIMENT,
                       "v", Axis("__row", [f"{r} {d}" for r in ROWS for d in DETECTORS], header="model / detector"),
                       grid_axis("pgd", "__col")))
TABLES = {s.id: s.title for s in SPECS}


def with_label(rows: pl.DataFrame) -> pl.DataFrame:
    """``__fig8`` = the paper's legend name: VGG16 for the plain backbone (vgg16 / ci cnn), HEAD-CONV9 / HEAD-FC1."""
    rows = ensure_columns(rows, {"cfg.model.name": pl.String, "cfg.model.head": pl.String,
                                 "cfg.model.feature_depth": pl.String})
    depth = pl.col("cfg.model.feature_depth")
    tap = pl.when(depth.is_in(list(SHALLOW))).then(pl.lit("CONV9")).when(depth.is_in(list(DEEP))).then(pl.lit("FC1"))
    # the baseline: the heads' own backbone (fusion-backbone); vgg16 / cnn rows of sweeps written before it existed
    label = (pl.when(pl.col("cfg.model.name").is_in(["fusion-backbone", "vgg16", "cnn"])).then(pl.lit("VGG16"))
             .when(pl.col("cfg.model.name") == "fusion").then(pl.format("{}-{}", pl.col("cfg.model.head")
                                                                        .str.to_uppercase(), tap)))
    return rows.with_columns(label.alias("__fig8"))


def claims(rows: pl.DataFrame) -> list[CheckResult]:
    mid = middle(grid(rows, "pgd"))
    sel, lab, w = at("pgd", mid), pl.col("__fig8"), f"PGD eps={mid}"
    gen9, gen1 = lab.is_in(["GBZ-CONV9", "GBY-CONV9"]), lab.is_in(["GBZ-FC1", "GBY-FC1"])
    return [
        compare_means(rows, sel & lab.is_in(HEADS), sel & (lab == "VGG16"), "adv_accuracy", ">",
                      label_a="heads (mean)", label_b="VGG16", at=w, name="fig8-heads-beat-vgg16",
                      claim="§4.3: for all LVM-based classifiers, clear robustness improvements over the VGG16 baseline"),
        compare_means(rows, sel & gen9, sel & (lab == "DBX-CONV9"), "adv_accuracy", ">", label_a="GBZ/GBY-CONV9",
                      label_b="DBX-CONV9", at=w, name="fig8-generative-beat-dbx",
                      claim="§4.3: GBZ and GBY with CONV9 features are overall better than DBX"),
        compare_means(rows, sel & gen9, sel & gen1, "adv_accuracy", ">", label_a="GBZ/GBY-CONV9",
                      label_b="GBZ/GBY-FC1", at=w, name="fig8-conv9-beats-fc1",
                      claim="§4.3: generative classifiers on CONV9 features are significantly more robust than on FC1"),
        _similar(rows, sel, w),
    ]


def _similar(rows: pl.DataFrame, sel: pl.Expr, where: str, tol: float = 0.05) -> CheckResult:
    """§4.3: "for DBX ... the robustness results are very similar" (CONV9 vs FC1 within ``tol``)."""
    a, na = seed_mean(rows, sel & (pl.col("__fig8") == "DBX-CONV9"), "adv_accuracy")
    b, nb = seed_mean(rows, sel & (pl.col("__fig8") == "DBX-FC1"), "adv_accuracy")
    obs = (f"adv_accuracy: DBX-CONV9 {'—' if a is None else f'{a:.3f}'} (n={na}) vs DBX-FC1 "
           f"{'—' if b is None else f'{b:.3f}'} (n={nb}) at {where}; |Δ| <= {tol}")
    holds = None if a is None or b is None else abs(a - b) <= tol
    return CheckResult("fig8-dbx-depth-similar", "§4.3: for the discriminative DBX, CONV9 and FC1 features give very "
                       "similar robustness", holds, obs)


def build_fig8(ctx) -> list[Section]:
    rows = with_label(ctx.rows(EXPERIMENT))
    *acc, det = SPECS
    return [Section("Fig. 8: deep-Bayes heads on VGG16 features (CIFAR-10)",
                    text="Rows as the paper's legend; at ci the small cnn stands in for VGG16, its pool1 tap for CONV9 and "
                         "conv2+fc1 for FC1. The paper downloads a CIFAR-10 VGG16; ours is trained by the fusion code and cached.",
                    tables=[*(s.build(rows) for s in acc), det.build(detection_rows(rows, "pgd", pl.col("__fig8")))],
                    checks=claims(rows))]
