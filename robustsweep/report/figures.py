"""The figure shapes the papers use, drawn from polars frames with matplotlib and saved as PNG.

Figures are built on ``matplotlib.figure.Figure`` with an explicit Agg canvas instead of ``pyplot``: no GUI
backend is ever touched (works on a headless login node), no global pyplot state leaks between figures or into
other code running in the same process, and nothing needs closing. Every function takes its data, an output
path, a title and axis labels, and returns the saved ``Path``. Frames of sweep rows are aggregated here the same
way as tables (failed trials dropped, mean ± std over seeds) so a plotted point equals the table cell.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robustsweep.report.stats import summarize

DPI = 120


def _new(figsize: tuple[float, float] = (5.0, 3.6)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _labels(ax: Axes, title: str, xlabel: str | None, ylabel: str | None) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")


def _groups(df: pl.DataFrame, group: str | None) -> list[tuple[str, pl.DataFrame]]:
    if group is None:
        return [("", df)]
    return [(str(k[0]), g) for k, g in df.group_by(group, maintain_order=True)]


def line_with_band(
    df: pl.DataFrame, x: str, y: str, group: str | None, path: str | Path, *, title: str = "",
    xlabel: str | None = None, ylabel: str | None = None, logx: bool = False, dashed: Sequence[str] = (),
) -> Path:
    """One line per ``group``: mean over seeds of ``y`` against ``x``, with a ±std band (accuracy-vs-ε plots).
    Groups named in ``dashed`` are drawn dashed (paper 000's figures: dashed = discriminative classifiers)."""
    keys = [x] if group is None else [group, x]
    agg = summarize(df, keys, y).drop_nulls(x).sort(keys)
    fig, ax = _new((7.2, 3.6) if group is not None else (5.0, 3.6))  # room for the legend beside the axes
    for name, g in _groups(agg, group):
        xs, m = g[x].to_numpy(), g["mean"].to_numpy()
        s = g["std"].fill_null(0.0).to_numpy()
        ax.plot(xs, m, marker="o", label=name or None, ls="--" if name in dashed else "-")
        ax.fill_between(xs, m - s, m + s, alpha=0.2)
    if logx:
        ax.set_xscale("log")
    if group is not None:  # beside the axes: curves of rates over a grid fill every corner (paper 003 Fig. 3)
        ax.legend(title=group.removeprefix("cfg."), fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0)
    _labels(ax, title, xlabel or x, ylabel or y)
    return _save(fig, path)


def roc_curves(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float], float | None]], path: str | Path, *,
    title: str = "", xlabel: str = "False positive rate", ylabel: str = "True positive rate",
) -> Path:
    """ROC curves from the stored ``det.<name>.roc_fpr/roc_tpr`` lists; AUC in the legend, chance diagonal."""
    fig, ax = _new((4.4, 4.0))
    for label, fpr, tpr, auc in curves:
        ax.plot(fpr, tpr, label=label if auc is None else f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize="small")
    _labels(ax, title, xlabel, ylabel)
    return _save(fig, path)


def histograms(
    groups: Mapping[str, Sequence[float] | np.ndarray], path: str | Path, *, bins: int = 30, title: str = "",
    xlabel: str = "", ylabel: str = "density",
) -> Path:
    """Overlaid normalised histograms on shared bins (e.g. detector scores: clean vs adversarial)."""
    arrays = {k: np.asarray(v, dtype=float) for k, v in groups.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()] or [np.zeros(0)])
    edges = np.histogram_bin_edges(finite, bins=bins) if finite.size else bins
    fig, ax = _new()
    for label, a in arrays.items():
        ax.hist(a[np.isfinite(a)], bins=edges, density=True, alpha=0.45, label=label, histtype="stepfilled")
    ax.legend(fontsize="small")
    _labels(ax, title, xlabel, ylabel)
    return _save(fig, path)


def bars(
    df: pl.DataFrame, x: str, y: str, group: str | None, path: str | Path, *, title: str = "",
    xlabel: str | None = None, ylabel: str | None = None,
) -> Path:
    """Grouped bars of the seed-mean of ``y`` per ``x`` (and ``group``), std as error bars (ablations)."""
    keys = [x] if group is None else [x, group]
    agg = summarize(df, keys, y)
    xs = list(dict.fromkeys(agg[x].to_list()))
    groups = _groups(agg, group)
    width = 0.8 / max(len(groups), 1)
    fig, ax = _new()
    for i, (name, g) in enumerate(groups):
        lookup = {r[x]: (r["mean"], r["std"]) for r in g.iter_rows(named=True)}
        means = [lookup.get(v, (np.nan, None))[0] for v in xs]
        stds = [lookup.get(v, (None, None))[1] or 0.0 for v in xs]
        pos = np.arange(len(xs)) + (i - (len(groups) - 1) / 2) * width
        ax.bar(pos, means, width, yerr=stds, capsize=3, label=name or None)
    ax.set_xticks(np.arange(len(xs)), [str(v) for v in xs])
    if group is not None:
        ax.legend(title=group.removeprefix("cfg."), fontsize="small")
    _labels(ax, title, xlabel or x, ylabel or y)
    return _save(fig, path)


def heatmap(
    matrix: pl.DataFrame | np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], path: str | Path,
    *, title: str = "", xlabel: str = "", ylabel: str = "", fmt: str = ".2f", cmap: str = "viridis",
) -> Path:
    """Matrix with its value printed in each cell (transfer matrices, confusion matrices); NaN cells blank."""
    m = matrix.to_numpy().astype(float) if isinstance(matrix, pl.DataFrame) else np.asarray(matrix, dtype=float)
    fig, ax = _new((1.2 + 0.7 * m.shape[1], 1.0 + 0.5 * m.shape[0]))
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    fig.colorbar(im, ax=ax)
    mid = np.nanmean(m) if np.isfinite(m).any() else 0.0
    for (i, j), v in np.ndenumerate(m):
        if np.isfinite(v):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize="small",
                    color="black" if v > mid else "white")
    ax.set_xticks(range(m.shape[1]), list(col_labels), rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), list(row_labels))
    _labels(ax, title, xlabel, ylabel)
    return _save(fig, path)


def image_grid(
    images: np.ndarray, path: str | Path, *, titles: Sequence[str] | None = None, ncols: int = 8,
    title: str = "",
) -> Path:
    """Images ``(N, H, W)`` or ``(N, C, H, W)`` in [0, 1] on a grid (clean vs adversarial examples)."""
    imgs = np.clip(np.asarray(images, dtype=float), 0.0, 1.0)
    if imgs.ndim == 4:
        imgs = imgs[:, 0] if imgs.shape[1] == 1 else imgs.transpose(0, 2, 3, 1)
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(1.3 * ncols, 1.45 * nrows + (0.3 if title else 0)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k < n:
            ax.imshow(imgs[k], cmap="gray" if imgs[k].ndim == 2 else None, vmin=0, vmax=1)
            if titles is not None and k < len(titles):
                ax.set_title(titles[k], fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def decision_regions(
    grid_x: np.ndarray, grid_y: np.ndarray, z: np.ndarray, points: np.ndarray, labels: np.ndarray,
    path: str | Path, *, title: str = "", xlabel: str = "$x_1$", ylabel: str = "$x_2$",
) -> Path:
    """2-D decision regions (``z`` on the meshgrid ``grid_x, grid_y``: class or p(y=1|x)) with the data on top."""
    fig, ax = _new((4.4, 4.0))
    cs = ax.contourf(grid_x, grid_y, z, levels=20 if np.unique(z).size > 10 else None, cmap="coolwarm",
                     alpha=0.5)
    fig.colorbar(cs, ax=ax)
    pts, lab = np.asarray(points, dtype=float), np.asarray(labels)
    for c in np.unique(lab):
        sel = lab == c
        ax.scatter(pts[sel, 0], pts[sel, 1], s=8, label=str(c), edgecolors="k", linewidths=0.2)
    ax.legend(title="class", fontsize="small")
    ax.set_aspect("equal")
    _labels(ax, title, xlabel, ylabel)
    return _save(fig, path)


def binned_histograms(
    panels: Sequence[tuple[str, Sequence[float], Mapping[str, Sequence[float]]]], path: str | Path, *,
    title: str = "", xlabel: str = "", ylabel: str = "fraction of inputs",
) -> Path:
    """Pre-binned histograms, one panel each: ``(panel title, bin edges, {curve label: counts})``, every curve
    normalised to sum 1 and drawn as filled steps over its panel's edges (the stored ``det.<name>.hist_*``
    columns: clean vs successful adversarial scores on shared edges, paper 004 Fig. 2(a)/3(a))."""
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, edges, curves) in zip(axes, panels):
        for label, counts in curves.items():
            c = np.asarray(counts, dtype=float)
            if c.sum() > 0:
                ax.stairs(c / c.sum(), np.asarray(edges, dtype=float), fill=True, alpha=0.45, label=label)
        ax.set_title(name, fontsize="small")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="x-small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
