"""Paper 001's shared table builders and constants: the model orders, the ε grid of a run, and the Fig. 3 / Table 1
table shapes that the MNIST sections (``p001.py``) and the CIFAR-binary ones (``p001_cifar.py``) both print.

Why a module of its own: ``p001.py`` holds the ``@paper`` entry, which imports every section module; the section
modules need these builders too, and importing them from ``p001.py`` would be a cycle.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.tables import Table, join_columns, pivot_table

WHITE, BLACK = "deep-bayes-whitebox", "deep-bayes-blackbox"
BASE = "deep-bayes-baselines"  # p001_baselines.yaml: the discriminative baselines of Fig. 3 / appendix B / Fig. 5
BASELINES = ["bnn", "cnn"]
MODELS = ["gfz", "gfy", "gbz", "gby", "dfx", "dfz", "dbx"]  # §2, Fig. 1 order
GENERATIVE, DISCRIMINATIVE = ["gfz", "gfy", "gbz", "gby"], ["dfx", "dfz"]
TABLE13_MODELS = ["gfz", "gbz", "gfy", "gby"]  # Table 1's column order
TABLE3_MODELS = ["gfz", "gbz", "gby", "gfy"]  # Table 3's row order
DETECTORS = ["marginal", "logit", "kl"]
ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD", "mim": "MIM", "cw": "CW"}
TABLE1_ROWS = [("pgd", WHITE, "PGD (white)"), ("mim", WHITE, "MIM (white)"), ("pgd-grey", BLACK, "PGD (grey)"),
               ("mim-grey", BLACK, "MIM (grey)"), ("pgd-black", BLACK, "PGD (black)"), ("mim-black", BLACK, "MIM (black)")]

MODEL = pl.col("cfg.model.name")
OK = pl.col("status") == "ok"


def _grid(rows: pl.DataFrame, attack: str) -> list[float]:
    return sorted(set(rows.filter(OK & (pl.col("attack") == attack))["value"].drop_nulls().to_list()))


def _fmt(v: float) -> str:
    return f"{v:g}"


def _labels(models: list[str]) -> dict[str, str]:
    return {m: m.upper() for m in models}


def accuracy_table(rows: pl.DataFrame, attack: str, tid: str, title: str, models: list[str] | None = None) -> Table:
    """Models × (clean, grid values): accuracy under ``attack`` (a panel of Fig. 3 / appendix B / Fig. 5)."""
    sym = "c" if attack == "cw" else "ε"
    grid = _grid(rows, attack)
    labels = {v: f"{sym}={_fmt(v)}" for v in grid}
    models = models or MODELS
    t = pivot_table(rows, row_key="cfg.model.name", col_key="value", metric="adv_accuracy", row_order=models,
                    col_order=grid, row_labels=_labels(models), col_labels=labels, filter=pl.col("attack") == attack,
                    id=tid, title=title, row_header="model")
    clean = pivot_table(rows, row_key="cfg.model.name", col_key=pl.lit("clean"), metric="clean_accuracy",
                        row_order=models, row_labels=_labels(models), filter=pl.col("attack") == attack,
                        duplicates="mean", row_header="model")
    return join_columns(clean, t)


def detection_table(rows: pl.DataFrame, attack: str, tid: str, title: str, models: list[str] | None = None) -> Table:
    """(model, detector) × grid values: TPR on the successful adversarials at 5% FPR on clean training data."""
    long = pl.concat([rows.filter(pl.col("attack") == attack).with_columns(
        pl.format("{} {}", MODEL.str.to_uppercase(), pl.lit(d)).alias("__md"),
        (pl.col(f"det.{d}.tpr") if f"det.{d}.tpr" in rows.columns else pl.lit(None, pl.Float64)).alias("__tpr"))
        for d in DETECTORS], how="diagonal_relaxed")
    grid = _grid(rows, attack)
    order = [f"{m.upper()} {d}" for m in (models or MODELS) for d in DETECTORS]
    sym = "c" if attack == "cw" else "ε"
    return pivot_table(long, row_key="__md", col_key="value", metric="__tpr", row_order=order, col_order=grid,
                       col_labels={v: f"{sym}={_fmt(v)}" for v in grid}, id=tid, title=title,
                       row_header="model / detector")


def by_model_table(rows: pl.DataFrame, attacks: list[tuple[str, str]], metric: str, tid: str, title: str,
                   models: list[str], value: float | None = None) -> Table:
    """Attack rows × model columns (Tables 1 and 3), one metric; ``value`` picks one grid point."""
    keep = pl.col("attack").is_in([a for a, _ in attacks]) & MODEL.is_in(models)
    if value is not None:
        keep &= (pl.col("value") - value).abs() < 1e-9
    # one row per (trial, attack) for a per-attack metric such as the minimum perturbation
    sub = rows.filter(keep | ~OK)
    if value is None and metric.startswith("m."):
        sub = sub.unique(["trial_id", "attack"], keep="first", maintain_order=True)
    return pivot_table(sub, row_key="attack", col_key="cfg.model.name", metric=metric, row_order=[a for a, _ in attacks],
                       col_order=models, row_labels=dict(attacks), col_labels=_labels(models), id=tid, title=title,
                       row_header="attack")


def _nth_eps(rows: pl.DataFrame, attack: str, n: int) -> float | None:
    """The ``n``-th (0-based) ε of ``attack``'s grid, or its last where the grid is shorter: the grid position a
    paper table reads its accuracy at, so a ci grid of the same length is read at the same position."""
    grid = _grid(rows, attack)
    return grid[n] if len(grid) > n else (grid[-1] if grid else None)


def _third_eps(rows: pl.DataFrame, attack: str) -> float | None:
    """Table 1 (MNIST) reads accuracy at ε ≤ 0.3, the third point of {0.1, ..., 0.5}."""
    return _nth_eps(rows, attack, 2)
