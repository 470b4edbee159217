"""Accuracy under attack vs the attack's grid value, per model config (mean ± std over seeds)."""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load, parse  # noqa: E402

from robustsweep.report.aggregate import to_markdown  # noqa: E402


def table(df: pl.DataFrame) -> pl.DataFrame:
    return (df.group_by("label", "attack", "param", "value")
              .agg(pl.col("adv_accuracy").mean().alias("acc_mean"), pl.col("adv_accuracy").std().alias("acc_std"),
                   pl.col("clean_accuracy").mean().alias("clean_mean"), pl.col("seed").n_unique().alias("n_seeds"))
              .sort("attack", "label", "value"))


def plot(t: pl.DataFrame, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for attack in t["attack"].unique().sort():
        sub = t.filter(pl.col("attack") == attack)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for label in sub["label"].unique().sort():
            s = sub.filter(pl.col("label") == label).sort("value")
            ax.errorbar(s["value"], s["acc_mean"], yerr=s["acc_std"].fill_null(0), marker="o", capsize=2, label=label)
        ax.set_xlabel(sub["param"][0] or "value")
        ax.set_ylabel("accuracy under attack")
        ax.set_title(attack)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / f"accuracy_{attack}.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths


def main() -> None:
    a = parse(__doc__)
    df, _ = load(a.results, a.sweep)
    t = table(df)
    out = Path(a.out)
    t.write_csv(out / "accuracy_vs_eps.csv")
    (out / "accuracy_vs_eps.md").write_text(to_markdown(t, digits=3) + "\n")
    for p in plot(t, out):
        print(f"wrote {p}")
    print(f"wrote {out / 'accuracy_vs_eps.md'} and .csv ({len(t)} rows)")


if __name__ == "__main__":
    main()
