"""Detection rates per detector × attack × grid value (TPR on successful adversarials, FPR on clean) and ROC plots."""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load, parse  # noqa: E402

from robustsweep.report.aggregate import to_markdown  # noqa: E402
from robustsweep.report.figures import roc_curves  # noqa: E402


def detectors(df: pl.DataFrame) -> list[str]:
    return sorted({c.split(".")[1] for c in df.columns if c.startswith("det.") and c.endswith(".tpr")})


def table(df: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for d in detectors(df):
        cols = {k: f"det.{d}.{k}" for k in ("tpr", "fpr", "auc") if f"det.{d}.{k}" in df.columns}
        parts.append(df.group_by("label", "attack", "value").agg(
            [pl.lit(d).alias("detector")] + [pl.col(c).mean().alias(k) for k, c in cols.items()]))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="diagonal_relaxed").sort("detector", "attack", "label", "value")


def plot_roc(df: pl.DataFrame, out: Path) -> list[Path]:
    """One ROC figure per detector (the report's :func:`robustsweep.report.figures.roc_curves`)."""
    paths = []
    for d in detectors(df):
        fpr_c, tpr_c, auc_c = f"det.{d}.roc_fpr", f"det.{d}.roc_tpr", f"det.{d}.auc"
        if fpr_c not in df.columns:
            continue
        first = df.filter(pl.col(fpr_c).is_not_null()).group_by("label", "attack", "value").first()
        curves = [(f"{r['label']} {r['attack']} {r['value']}", r[fpr_c], r[tpr_c], r.get(auc_c))
                  for r in first.sort("label", "attack", "value").iter_rows(named=True)]
        paths.append(roc_curves(curves, out / f"roc_{d}.png", title=f"{d} detection"))
    return paths


def main() -> None:
    a = parse(__doc__)
    df, _ = load(a.results, a.sweep)
    t = table(df)
    out = Path(a.out)
    if t.is_empty():
        print(f"sweep {a.sweep} has no detector columns (add `detectors:` to the experiment file)")
        return
    t.write_csv(out / "detection.csv")
    (out / "detection.md").write_text(to_markdown(t, digits=3) + "\n")
    for p in plot_roc(df, out):
        print(f"wrote {p}")
    print(f"wrote {out / 'detection.md'} and .csv ({len(t)} rows)")


if __name__ == "__main__":
    main()
