"""Paper 001 Fig. 2: decision regions of the ring generative classifier on two-rings and the areas marginal, logit,
KL and TV detection reject (10 % false positives on the training data), from the grid columns ``eval.decision_grid``
stores (``experiments/p001_fig2.yaml``).

The paper reads its panels in words (§3); each reading is a named check on the grid, using the data set's own
distance to the rings (in ring-noise σ, so no model enters the definition of "far"): marginal / logit reject the
points more than ``FAR`` σ from both rings; KL / TV reject fewer of them than marginal; TV rejects ambiguous points on
the data (within ``NEAR`` σ, largest class probability below ``AMBIGUOUS``) more often than confident ones.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from robustsweep.report.checks import CheckResult
from robustsweep.report.declare import Axis, TableSpec
from robustsweep.report.html import Section
from robustsweep.report.paper_registry import PaperContext
from robustsweep.report.select import OK
from robustsweep.report.tables import Table

EXPERIMENT = "deep-bayes-fig2"  # spec name of p001_fig2.yaml
DETECTORS = {"marginal": "marginal", "logit": "logit", "kl": "KL", "tv": "TV"}
FAR, NEAR, AMBIGUOUS = 4.0, 2.0, 0.9  # σ from the rings; σ; largest class probability (our thresholds)
FIG2 = "Fig. 2: decision regions and rejected areas (shaded) of marginal, logit, KL and TV detection, two rings"
TITLE = "Fig. 2 (measured): rejection of clean test inputs and of grid points far from / on the data"
COLUMNS = {"fpr": "clean test FPR", "far": f"rejected, > {FAR:g}σ from the rings",
           "near": f"rejected, within {NEAR:g}σ", "ambiguous": f"rejected, within {NEAR:g}σ and p_max < {AMBIGUOUS:g}",
           "confident": f"rejected, within {NEAR:g}σ and p_max ≥ {AMBIGUOUS:g}"}


SPEC = TableSpec("fig2", TITLE, EXPERIMENT, "v", Axis("__row", list(DETECTORS), DETECTORS, "detection"),
                 Axis("__col", list(COLUMNS), COLUMNS),
                 caption=f"Grid points classed by the data set's distance to the nearer ring in units of the ring noise "
                         f"σ (far: > {FAR:g}σ, on the data: < {NEAR:g}σ; thresholds ours) and by the classifier's "
                         f"largest class probability p_max. Thresholds at 10 % FPR on training data.")


def _row(df: pl.DataFrame) -> dict[str, Any] | None:
    if df.is_empty() or "ex.grid_pred" not in df.columns:
        return None
    ok = df.filter(OK & pl.col("ex.grid_pred").is_not_null())
    return None if ok.is_empty() else ok.sort("seed").row(0, named=True)


def region_rates(row: dict[str, Any], det: str) -> dict[str, float | None]:
    """The table's rejection rates of one detector on one row (module docstring)."""
    rej = np.asarray(row.get(f"det.{det}.grid_reject") or [], dtype=float)
    sig = np.asarray(row.get("ex.grid_manifold_sigmas") or [], dtype=float)
    pmax = np.asarray(row.get("ex.grid_pmax") or [], dtype=float)
    out: dict[str, float | None] = {"fpr": row.get(f"det.{det}.fpr")}
    masks = {"far": sig > FAR, "near": sig < NEAR} if len(sig) == len(rej) and len(rej) else {}
    if masks and len(pmax) == len(rej):
        masks |= {"ambiguous": masks["near"] & (pmax < AMBIGUOUS), "confident": masks["near"] & (pmax >= AMBIGUOUS)}
    for k in ("far", "near", "ambiguous", "confident"):
        m = masks.get(k)
        out[k] = float(rej[m].mean()) if m is not None and m.any() else None
    return out


def fig2_table(df: pl.DataFrame) -> Table:
    rows = []
    for r in (df.filter(OK).iter_rows(named=True) if "ex.grid_pred" in df.columns else []):
        for det in DETECTORS:
            for k, v in region_rates(r, det).items():
                rows.append({"status": "ok", "seed": r["seed"], "__row": det, "__col": k, "v": v})
    long = pl.DataFrame(rows, schema={"status": pl.String, "seed": pl.Int64, "__row": pl.String, "__col": pl.String,
                                      "v": pl.Float64})
    return SPEC.build(long)


def fig2_checks(df: pl.DataFrame) -> list[CheckResult]:
    r = _row(df)
    rates = {d: region_rates(r, d) for d in DETECTORS} if r is not None else {}

    def check(name: str, claim: str, parts: list[tuple[str, float | None, str, float | None]]) -> CheckResult:
        bits: list[str] = []
        holds: bool | None = True
        for label, v, op, ref in parts:
            bits.append(f"{label} {'—' if v is None else f'{v:.3f}'} {op} {'—' if ref is None else f'{ref:.3f}'}")
            if v is None or ref is None:
                holds = None
            elif holds is not None:
                holds = holds and (v > ref if op == ">" else v < ref)
        return CheckResult(name, claim, holds, "; ".join(bits))

    def g(det: str, key: str) -> float | None:
        return rates.get(det, {}).get(key)

    return [
        check("fig2-far-rejected", "§3 / Fig. 2: inputs far away from the model manifold are rejected by marginal and "
              f"logit detection (rejected fraction of grid points > {FAR:g}σ from the rings above 0.9)",
              [("marginal far", g("marginal", "far"), ">", 0.9), ("logit far", g("logit", "far"), ">", 0.9)]),
        check("fig2-kl-tv-not-manifold-aware", "§3 / Fig. 2: KL / TV detection does not construct manifold-aware "
              "acceptance regions (they reject fewer far-away points than marginal detection)",
              [("KL far", g("kl", "far"), "<", g("marginal", "far")), ("TV far", g("tv", "far"), "<",
                                                                         g("marginal", "far"))]),
        check("fig2-tv-rejects-ambiguous", "§3 / Fig. 2: TV detection rejects ambiguous inputs (on the data, "
              f"p_max < {AMBIGUOUS:g}) more than confident ones",
              [("TV ambiguous", g("tv", "ambiguous"), ">", g("tv", "confident"))]),
    ]


def fig2_figure(ctx: PaperContext, df: pl.DataFrame) -> tuple[str, str]:
    """Four panels: predicted class (light red / blue), rejected area (grey), training points (red / blue)."""
    r = _row(df)
    fig = Figure(figsize=(13.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(DETECTORS))
    for ax, (det, label) in zip(axes, DETECTORS.items()):
        ax.set_xticks([])
        ax.set_yticks([])
        if r is None or not r.get(f"det.{det}.grid_reject"):
            ax.text(0.5, 0.5, "no grid stored", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(label)
            continue
        n = int(r["ex.grid_n"])
        x0, x1, y0, y1 = r["ex.grid_extent"]
        pred = np.asarray(r["ex.grid_pred"], dtype=float).reshape(n, n)
        rej = np.asarray(r[f"det.{det}.grid_reject"], dtype=float).reshape(n, n)
        ext = (x0, x1, y0, y1)
        ax.imshow(pred, origin="lower", extent=ext, cmap=ListedColormap(["#f6c5c5", "#c5d3f6"]), vmin=0, vmax=1,
                  aspect="equal", interpolation="nearest")
        ax.imshow(np.where(rej > 0.5, 1.0, np.nan), origin="lower", extent=ext, cmap=ListedColormap(["#555555"]),
                  alpha=0.55, aspect="equal", interpolation="nearest")
        pts = np.asarray(r["ex.train_x"], dtype=float).reshape(-1, 2)
        lab = np.asarray(r["ex.train_y"], dtype=float)
        ax.scatter(pts[:, 0], pts[:, 1], c=np.where(lab > 0.5, "#1f3fbf", "#c01f1f"), s=2, linewidths=0)
        fpr = r.get(f"det.{det}.fpr")
        ax.set_title(f"{label}" + ("" if fpr is None else f" (test FPR {fpr:.2f})"), fontsize="medium")
    fig.suptitle(FIG2, fontsize="medium")
    path = ctx.figure("fig2_two_rings.png")
    fig.savefig(path, dpi=120, format="png")
    return str(path), FIG2 + " (thresholds at 10 % FPR on the training data; dots: 600 training points)"


def build_fig2(ctx: PaperContext) -> list[Section]:
    df = ctx.rows(EXPERIMENT)
    return [Section("Fig. 2: visualising detection mechanisms (two rings)", tables=[fig2_table(df)],
                    figures=[fig2_figure(ctx, df)], checks=fig2_checks(df))]
