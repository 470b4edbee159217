"""Image grids from the ``ex.*`` columns that ``eval.examples`` stores (robustsweep/core/examples.py).

The papers show adversarial examples as grids: one row per attack (or model, or target), one column per test image,
the predicted label under each picture. :func:`example_images` turns a row's flat list back into ``(n, C, H, W)``
pixels, :func:`grid_row` makes one labelled row of a grid from it, :func:`image_grid` draws the grid (grey for one
channel, RGB for three; gradient maps with a diverging map, each scaled on its own because their sign and shape are
the message, not their size). Like :mod:`robustsweep.report.figures`, it draws on an explicit Agg canvas, reads
no model and runs on a login node.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robustsweep.report.select import OK

DPI = 120


@dataclass
class GridRow:
    """One row of an image grid: its label, images ``(n, C, H, W)`` and one caption per image."""

    label: str
    images: np.ndarray
    captions: list[str] = field(default_factory=list)
    signed: bool = False  # a gradient map: diverging colours, symmetric around 0


def example_images(row: Mapping[str, Any], column: str) -> np.ndarray | None:
    """``row[column]`` (a flat ``ex.*`` list) as ``(n, C, H, W)`` float pixels, or None where the row has none."""
    flat, shape = row.get(column), row.get("ex.shape")
    if flat is None or shape is None or len(flat) == 0:
        return None
    return np.asarray(flat, dtype=np.float32).reshape([int(s) for s in shape])


def _class(v: Any, names: Sequence[str] | None) -> str:
    k = int(v)
    return names[k] if names and 0 <= k < len(names) else str(k)


def grid_row(row: Mapping[str, Any], label: str, column: str = "ex.adv", pred: str | None = "ex.pred_adv",
             n: int | None = None, names: Sequence[str] | None = None, signed: bool = False) -> GridRow | None:
    """A grid row from one result row: the images of ``column`` captioned ``pred p`` (``✗ (is y)`` where ``p`` is
    not the true label ``y``), the first ``n`` only; None when the row stored no such images."""
    imgs = example_images(row, column)
    if imgs is None:
        return None
    imgs = imgs[:n] if n else imgs
    caps: list[str] = []
    if pred and row.get(pred) is not None:
        labels = row.get("ex.label") or []
        for i, p in enumerate(row[pred][: len(imgs)]):
            wrong = i < len(labels) and int(p) != int(labels[i])
            caps.append(f"pred {_class(p, names)}" + (f" ✗ (is {_class(labels[i], names)})" if wrong else ""))
    return GridRow(label, imgs, caps, signed)


def first_ok(rows: pl.DataFrame, where: pl.Expr, column: str = "ex.adv") -> dict[str, Any] | None:
    """The first (lowest seed) ok row matching ``where`` that stored ``column``; None when there is none."""
    if rows.is_empty() or column not in rows.columns:
        return None
    sel = rows.filter(OK & where & pl.col(column).is_not_null())
    return None if sel.is_empty() else sel.sort("seed").row(0, named=True)


def _show(ax: Any, img: np.ndarray, signed: bool) -> None:
    c = img.shape[0]
    if signed:
        m = float(np.abs(img).max()) or 1.0
        ax.imshow(img.mean(0), cmap="RdBu_r", vmin=-m, vmax=m)
    elif c == 1:
        ax.imshow(img[0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(np.transpose(img[:3], (1, 2, 0)), 0.0, 1.0))


def image_grid(rows: Sequence[GridRow], path: str | Path, *, title: str = "", cell: float = 1.15) -> Path:
    """Draw ``rows`` (label on the left, caption under each image) and save a PNG. Rows may hold different counts;
    an empty list draws a one-line "no examples stored" figure, so a report never lacks the file it promises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r for r in rows if r is not None and len(r.images)]
    ncols = max((len(r.images) for r in rows), default=1)
    size = (1.6 + cell * ncols, 0.7 + (cell + 0.3) * len(rows)) if rows else (6.0, 1.2)
    # a grid of one or two images is narrower than its title: widen the figure so the title is not cut off
    size = (max(size[0], 0.075 * len(title) + 0.4), size[1])
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    if not rows:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no example images stored: no run yet, eval.examples not set, or none of the kept\n"
                "examples is among the points this attack's own n_eval attacks", ha="center",
                va="center", fontsize="small")
    else:
        axes = fig.subplots(len(rows), ncols, squeeze=False)
        for i, r in enumerate(rows):
            for j in range(ncols):
                ax = axes[i][j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(r.images):
                    ax.axis("off")
                    continue
                _show(ax, r.images[j], r.signed)
                if j < len(r.captions):
                    ax.set_xlabel(r.captions[j], fontsize="x-small", labelpad=1)
                if j == 0:
                    ax.set_ylabel(r.label, fontsize="small", rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.savefig(path, dpi=DPI, format="png")
    return path
