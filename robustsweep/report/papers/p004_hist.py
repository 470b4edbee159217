"""Paper 004 Fig. 2(a) / 3(a): energy histograms of natural vs adversarial inputs, from the binned score histograms
the ``energy`` detector stores with ``hist_bins`` (``det.energy.hist_*``): PGD at the most steps (Fig. 2(a)) and
HE-PGD over λ (Fig. 3(a)). The stored score is -E(x), so bin edges are negated to plot E. The overlap is the
overlapping coefficient of the two normalised histograms (1: the detector is blind; 0: disjoint).
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.figures import binned_histograms
from robustsweep.report.paper_registry import PaperContext
from robustsweep.report.select import OK, near, num
from robustsweep.report.tables import Table, pivot_table
from robustsweep.store import columns

TITLE = "Fig. 2(a) / 3(a): overlap of natural and adversarial energy histograms (1 = indistinguishable)"


def _selections(df: pl.DataFrame) -> list[tuple[str, pl.Expr]]:
    """(row label, filter) for Fig. 2(a) (PGD, most steps) and Fig. 3(a) (HE-PGD per λ), in print order."""
    steps = df.filter((pl.col("attack") == "pgd") & (pl.col("param") == "steps"))["value"].drop_nulls()
    most = steps.max() if steps.len() else 40.0
    out = [(f"PGD, {most:g} steps (Fig. 2(a))",
            (pl.col("attack") == "pgd") & (pl.col("param") == "steps") & (pl.col("value") == most))]
    lams = df.filter((pl.col("attack") == "he-pgd") & (pl.col("param") == "lam"))["value"].drop_nulls().unique()
    for lam in sorted(lams.to_list()) or [0.0, 0.6, 1.2, 2.4]:
        out.append((f"HE-PGD λ={lam:g} (Fig. 3(a))", (pl.col("attack") == "he-pgd") & (pl.col("param") == "lam")
                    & near("value", lam)))
    return out


def hist_table(df: pl.DataFrame, models: list[str], caption: str) -> Table:
    """Overlap and AUC per (selection, model column); ``df`` carries p004's ``__model`` column."""
    parts = []
    for label, filt in _selections(df):
        sub = df.filter(filt & pl.col("__model").is_not_null())
        for metric, col in (("overlap", columns.det("energy", "hist_overlap")), ("AUC", columns.det("energy", "auc"))):
            v = num(sub, col)
            parts.append(sub.select("seed", "status", pl.lit(label).alias("__row"),
                                    pl.format("{} · {}", pl.lit(metric), pl.col("__model")).alias("__col"),
                                    v.alias("v")))
    long = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    return pivot_table(long, row_key="__row", col_key="__col", metric="v",
                       row_order=[label for label, _ in _selections(df)],
                       col_order=[f"{m} · {model}" for model in models for m in ("overlap", "AUC")],
                       id="energy-hist", title=TITLE, row_header="attack", caption=caption)


def hist_figure(ctx: PaperContext, df: pl.DataFrame, model: str) -> tuple[str, str] | None:
    """One PNG per model column: a panel per selection (first seed), natural vs successful adversarial energies."""
    if columns.det("energy", "hist_edges") not in df.columns:
        return None
    ok = df.filter((pl.col("__model") == model) & OK)
    if ok.is_empty():
        return None
    ok = ok.filter(pl.col("seed") == ok["seed"].min())
    panels = []
    for label, filt in _selections(ok):
        r = ok.filter(filt)
        if not r.height or r[columns.det("energy", "hist_edges")][0] is None or not len(r[columns.det("energy", "hist_edges")][0]):
            continue
        edges = [-e for e in reversed(r[columns.det("energy", "hist_edges")][0].to_list())]  # score -E -> energy E
        clean = list(reversed(r[columns.det("energy", "hist_clean")][0].to_list()))
        adv = list(reversed(r[columns.det("energy", "hist_adv")][0].to_list()))
        ov = r[columns.det("energy", "hist_overlap")][0]
        panels.append((label + ("" if ov is None else f", overlap {ov:.2f}"), edges,
                       {"natural": clean, "adversarial (successful)": adv}))
    if not panels:
        return None
    slug = model.split(" /")[0].lower()
    path = binned_histograms(panels, ctx.figure(f"energy_hist_{slug}.png"), xlabel="energy E(x)",
                             title=f"Energy of natural vs adversarial inputs, {model} (first seed)")
    return str(path), f"Fig. 2(a) / 3(a): energy histograms of natural and successful adversarial inputs, {model}"
