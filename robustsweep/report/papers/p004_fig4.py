"""Paper 004 Fig. 4 (§5.3): input gradients of a regular vs an adversarially trained (PGD-AT) model.

The paper says the robust model's maps "are more meaningful" (look like the object) and prints no number, so we
measure one (our choice, named in the caption): the **alignment** of a gradient map with its image, |Pearson
correlation| over the pixels, averaged over the kept images (``eval.examples`` with ``gradients``); a map that traces
the object correlates with it, sparse noise does not. The PGD accuracy column shows which model is the robust one.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from robustsweep.report.checks import compare_means
from robustsweep.report.html import Section
from robustsweep.report.images import example_images, first_ok, grid_row, image_grid
from robustsweep.report.paper_registry import PaperContext
from robustsweep.report.tables import Table, pivot_table
from robustsweep.store import columns

GRAD = columns.example("grad_clean")
EXPERIMENT = "energy-fig4"  # spec name of p004_fig4.yaml
FIG4 = "Fig. 4: input gradients of a regular vs a robust (PGD-AT) model"
TABLE = "Fig. 4: regular vs PGD-AT: accuracy and gradient-image alignment"
KINDS = {"regular": "regular training", "pgd-at": "PGD-AT (robust)"}


def alignment(images: np.ndarray, grads: np.ndarray) -> float:
    """Mean over images of |Pearson r| between a gradient map and its image (0 for a constant image or map)."""
    rs = []
    for x, g in zip(images.reshape(len(images), -1), grads.reshape(len(grads), -1)):
        xc, gc = x - x.mean(), g - g.mean()
        den = float(np.linalg.norm(xc) * np.linalg.norm(gc))
        rs.append(abs(float(xc @ gc)) / den if den > 0 else 0.0)
    return float(np.mean(rs)) if rs else float("nan")


def prepared(df: pl.DataFrame) -> pl.DataFrame:
    """Rows with ``__kind`` (regular / pgd-at, from whether the trial's train section had ``adversarial``) and
    ``__align`` (:func:`alignment` of the row's kept images and maps)."""
    if df.is_empty():
        return df.with_columns(pl.lit(None, pl.String).alias("__kind"), pl.lit(None, pl.Float64).alias("__align"))
    at_cols = [c for c in df.columns if c.startswith("cfg.train.adversarial")]
    at = pl.any_horizontal([pl.col(c).is_not_null() for c in at_cols]) if at_cols else pl.lit(False)
    aligned = []
    for r in df.iter_rows(named=True):
        x, g = example_images(r, columns.example("clean")), example_images(r, GRAD)
        aligned.append(None if x is None or g is None else alignment(x, g))
    return df.with_columns(pl.when(at).then(pl.lit("pgd-at")).otherwise(pl.lit("regular")).alias("__kind"),
                           pl.Series("__align", aligned, dtype=pl.Float64))


def fig4_table(df: pl.DataFrame) -> Table:
    cols = {"clean_accuracy": "clean accuracy", "adv_accuracy": "PGD accuracy", "__align": "gradient-image alignment"}
    sub = df.filter(pl.col("attack") == "pgd") if not df.is_empty() else df
    long = pl.concat([sub.select("seed", "status", "__kind", pl.lit(k).alias("__col"),
                                 pl.col(k).cast(pl.Float64).alias("v")) for k in cols], how="diagonal_relaxed") \
        if not sub.is_empty() else pl.DataFrame()
    return pivot_table(long, row_key="__kind", col_key="__col", metric="v", row_order=list(KINDS),
                       col_order=list(cols), row_labels=KINDS, col_labels=cols, id="fig4", title=TABLE,
                       row_header="model",
                       caption="PGD at the experiment's ε (robustness of each model). Alignment (our measure; the "
                               "paper shows only pictures): mean over the kept test images of |Pearson r| between "
                               "the input gradient d CE / d x and the image.")


def fig4_figure(ctx: PaperContext, df: pl.DataFrame) -> tuple[str, str]:
    reg = first_ok(df, pl.col("__kind") == "regular", GRAD) if not df.is_empty() else None
    rob = first_ok(df, pl.col("__kind") == "pgd-at", GRAD) if not df.is_empty() else None
    grid = [grid_row(reg or rob, "image", columns.example("clean"), None) if (reg or rob) else None,
            grid_row(reg, "regular", GRAD, None, signed=True) if reg else None,
            grid_row(rob, "PGD-AT", GRAD, None, signed=True) if rob else None]
    path = image_grid(grid, ctx.figure("fig4_gradients.png"), title=FIG4)
    return str(path), (FIG4 + ": d CE / d x of the same test images (red +, blue -, each map scaled on its own; lowest seed)")


def build_fig4(ctx: PaperContext) -> list[Section]:
    df = prepared(ctx.rows(EXPERIMENT))
    sub = df.filter(pl.col("attack") == "pgd") if not df.is_empty() else df
    robust, reg = pl.col("__kind") == "pgd-at", pl.col("__kind") == "regular"
    checks = [
        compare_means(sub, robust, reg, "adv_accuracy", ">", label_a="PGD-AT", label_b="regular",
                      name="pgd-at-is-robust", claim="§5.3: the adversarially trained model is the robust one (higher PGD accuracy)"),
        compare_means(sub, robust, reg, "__align", ">", label_a="PGD-AT", label_b="regular",
                      name="robust-gradients-aligned", claim="Fig. 4: a robust model's input gradients are more "
                      "meaningful (align with the image) than a regular model's sparse ones"),
    ]
    return [Section("Fig. 4: input gradients of a regular vs a robust model", tables=[fig4_table(df)],
                    figures=[fig4_figure(ctx, df)], checks=checks)]
