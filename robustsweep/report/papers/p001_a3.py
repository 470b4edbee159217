"""Paper 001, appendix A.3: the transfer matrix (``experiments/p001_transfer_matrix.yaml``).

PGD adversarials crafted on a *source* model (attack ``transfer-from``) and evaluated on the trial's *victim*: one row
per source, one column per victim, each cell the victim's accuracy (the diagonal is white-box PGD), and a heatmap.
The claim (§4.4 on A.3): transfer is effective between generative classifiers but not between generative and
discriminative ones, i.e. mean(gen→gen) < mean(gen→disc) and < mean(disc→gen), off-diagonal cells only. A row's
source is read from its ``attack_params`` (the ``source`` section's name), not its label, so a relabelled entry
cannot land in the wrong row.
"""
from __future__ import annotations

import json

import numpy as np
import polars as pl

from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult, compare_means
from robustsweep.report.declare import Axis, TableSpec
from robustsweep.report.figures import heatmap
from robustsweep.report.html import Section
from robustsweep.report.paper_registry import PaperContext
from robustsweep.report.select import DEEP_BAYES, DISCRIMINATIVE, GENERATIVE, OK, near
from robustsweep.report.tables import Table

A3 = "deep-bayes-transfer-matrix"  # the experiment's spec name
SOURCE, VICTIM = "__source", "cfg.model.name"
A3_FIGURES = {"a3_transfer_heatmap": "Appendix A.3: transfer matrix heatmap (victim accuracy)"}


def _models(rows: pl.DataFrame) -> list[str]:
    """Every source and victim that ran: deep-Bayes models in the paper's order, then the baselines by name."""
    ok = rows.filter(OK)
    present = sorted(set(ok[SOURCE].drop_nulls().to_list()) | set(ok[VICTIM].drop_nulls().to_list()))
    return [m for m in DEEP_BAYES if m in present] + sorted(m for m in present if m not in DEEP_BAYES)


SPECS = [TableSpec("a3-transfer", "Appendix A.3: victim accuracy under PGD transferred from each source (rows) to each "
                   "victim (columns)", A3, "adv_accuracy", Axis(SOURCE, _models, str.upper, "source \\ victim"),
                   Axis(VICTIM, _models, str.upper))]
A3_TABLES = {s.id: s.title for s in SPECS}


def _source_name(params: str | None) -> str | None:
    """The source model's name from a row's ``attack_params`` JSON (None: not a transfer-from row)."""
    if not params:
        return None
    try:
        src = json.loads(params).get("source", "__absent__")
    except (json.JSONDecodeError, AttributeError):
        return None
    if src == "__absent__":
        return None
    if isinstance(src, dict):
        return src.get("name")
    return src if isinstance(src, str) else None  # None (no source) = the victim itself: resolved below


def transfer_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The experiment's ok transfer rows with a ``__source`` column (a source of None is the victim itself)."""
    rows = ensure_columns(rows, {VICTIM: pl.String, "attack_params": pl.String, "value": pl.Float64})
    if rows.is_empty():
        return rows.with_columns(pl.lit(None, pl.String).alias(SOURCE))
    has_source = pl.col("attack_params").str.contains('"source"').fill_null(False)
    out = rows.filter(has_source | ~OK).with_columns(
        pl.col("attack_params").map_elements(_source_name, return_dtype=pl.String).alias(SOURCE))
    return out.with_columns(pl.when(OK).then(pl.coalesce(SOURCE, VICTIM)).otherwise(None).alias(SOURCE))


def at_eps(rows: pl.DataFrame) -> tuple[pl.DataFrame, float | None]:
    """The rows at the matrix's eps, the file's largest (failed rows kept, so the table lists them), and that eps."""
    vals = rows.filter(OK)["value"].drop_nulls().to_list() if "value" in rows.columns else []
    if not vals:
        return rows, None
    return rows.filter(near("value", max(vals)).fill_null(False) | ~OK), max(vals)


def a3_table(rows: pl.DataFrame, eps: float | None) -> Table:
    """Sources (rows) × victims (columns), victim accuracy under transferred PGD (``rows``: one eps only)."""
    return SPECS[0].build(rows, title=f"Appendix A.3: victim accuracy under PGD (eps = {eps}) crafted on the source "
                                      f"(row) and evaluated on the victim (column); diagonal = white-box")


def _cells(src: list[str], vic: list[str], off_diagonal: bool = True) -> pl.Expr:
    e = OK & pl.col(SOURCE).is_in(src) & pl.col(VICTIM).is_in(vic)
    return e & (pl.col(SOURCE) != pl.col(VICTIM)) if off_diagonal else e


def a3_checks(rows: pl.DataFrame) -> list[CheckResult]:
    """The paper's A.3 claim as two comparisons of mean victim accuracy (lower = the transfer works), plus the
    sanity check that white-box PGD (the diagonal) is at least as strong as transferred PGD (``rows``: one eps
    only, as :func:`at_eps` leaves them)."""
    gen, disc = GENERATIVE, DISCRIMINATIVE
    return [
        compare_means(rows, _cells(gen, gen), _cells(gen, disc), "adv_accuracy", "<",
                      label_a="generative→generative", label_b="generative→discriminative",
                      at="off-diagonal cells", name="a3-transfer-gen-to-gen-beats-gen-to-disc",
                      claim="Appendix A.3: PGD crafted on a generative classifier transfers to the other generative "
                            "classifiers (lower accuracy) better than to the discriminative DFX / DFZ / DBX"),
        compare_means(rows, _cells(gen, gen), _cells(disc, gen), "adv_accuracy", "<",
                      label_a="generative→generative", label_b="discriminative→generative",
                      at="off-diagonal cells", name="a3-transfer-gen-to-gen-beats-disc-to-gen",
                      claim="Appendix A.3: generative victims are hurt more by PGD from other generative classifiers "
                            "than by PGD from the discriminative DFX / DFZ / DBX ('and vice versa')"),
        compare_means(rows, OK & (pl.col(SOURCE) == pl.col(VICTIM)), OK & (pl.col(SOURCE) != pl.col(VICTIM)),
                      "adv_accuracy", "<=", label_a="white-box (diagonal)", label_b="transferred (off-diagonal)",
                      name="a3-white-box-strongest",
                      claim="Sanity check (not a claim of the paper): white-box PGD on the victim itself leaves a "
                            "lower accuracy than PGD transferred from another model"),
    ]


def a3_heatmap(ctx: PaperContext, table: Table) -> tuple | None:
    """The table's means as a heatmap PNG (NaN = missing cell); None when no cell has a value."""
    num = table.numeric
    if num.is_empty() or num["mean"].drop_nulls().is_empty():
        return None
    pos_r = {r: i for i, r in enumerate(table.rows)}
    pos_c = {c: j for j, c in enumerate(table.columns)}
    m = np.full((len(table.rows), len(table.columns)), np.nan)
    for rec in num.iter_rows(named=True):
        if rec["mean"] is not None:
            m[pos_r[rec["row"]], pos_c[rec["column"]]] = rec["mean"]
    path = heatmap(m, table.rows, table.columns, ctx.figure("a3_transfer_heatmap.png"), title="Transfer matrix: "
                   "victim accuracy", xlabel="victim", ylabel="source (PGD crafted on)", cmap="viridis")
    return path, A3_FIGURES["a3_transfer_heatmap"] + " (mean over seeds; lower = the attack transfers)"


def build_a3(ctx: PaperContext) -> list[Section]:
    """Appendix A.3's section: the transfer table, its heatmap and the named checks."""
    rows, eps = at_eps(transfer_rows(ctx.rows(A3)))  # the table and the checks read the same cells
    table = a3_table(rows, eps)
    fig = a3_heatmap(ctx, table)
    return [Section("Appendix A.3: transferability between classifiers", tables=[table],
                    figures=[fig] if fig else [], checks=a3_checks(rows),
                    text="Rows: the model PGD was crafted on (white-box, attack transfer-from); columns: the victim; "
                         "cells: the victim's accuracy on those adversarials. The diagonal is white-box PGD.")]
