"""Detection rates per detector × attack × grid value (TPR on successful adversarials, FPR on clean) and ROC plots."""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load, parse  # noqa: E402

from robustsweep.report.aggregate import to_markdown  # noqa: E402


def detectors(df: pl.DataFrame) -> list[str]:
    return sorted({c.split(".")[1] for c in df.columns if c.startswith("det.") and c.endswith(".tpr")})


def table(df: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for d in detectors(df):
        cols = {k: f"det.{d}.{k}" for k in ("tpr", "fpr", "auc") if f"det.{d}.{k}" in df.columns}
        parts.append(df.group_by("label", "attack", "value").agg(
            [pl.lit(d).alias("detector")] + [pl.col(c).mean().alias(k) for k, c in cols.items()]))
    return pl.concat(parts, how="diagonal_relaxed").sort("detector", "attack", "label", "value") if parts else pl.DataFrame()


def plot_roc(df: pl.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for d in detectors(df):
        fpr_c, tpr_c = f"det.{d}.roc_fpr", f"det.{d}.roc_tpr"
        if fpr_c not in df.columns:
            continue
        fig, ax = plt.subplots(figsize=(4, 4))
        first = df.filter(pl.col(fpr_c).is_not_null()).group_by("label", "attack", "value").first()
        for r in first.sort("label", "attack", "value").iter_rows(named=True):
            ax.plot(r[fpr_c], r[tpr_c], lw=1, label=f"{r['label']} {r['attack']} {r['value']}")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("FPR (clean)")
        ax.set_ylabel("TPR (adversarial)")
        ax.set_title(f"{d} detection")
        ax.legend(fontsize=5)
        fig.tight_layout()
        p = out / f"roc_{d}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
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
