"""Accuracy under attack vs the attack's grid value, per model config (mean ± std over seeds).

A thin example over ``robustsweep.report``: aggregation is :func:`robustsweep.report.aggregate.aggregate`, the figure
is :func:`robustsweep.report.figures.line_with_band`. ``robustsweep report SWEEP`` writes the same and more.
"""
from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load, parse  # noqa: E402

from robustsweep.report.aggregate import aggregate, to_markdown  # noqa: E402
from robustsweep.report.figures import line_with_band  # noqa: E402


def table(df: pl.DataFrame) -> pl.DataFrame:
    """Mean/std over seeds per label (the varying config) × attack × grid value, by the report's aggregate."""
    keyed = df.with_columns(pl.col("label").alias("cfg.label")).select(
        "cfg.label", "seed", "status", "attack", "param", "value", "adv_accuracy", "clean_accuracy")
    return aggregate(keyed, ("adv_accuracy", "clean_accuracy")).rename({"cfg.label": "label"})


def plot(df: pl.DataFrame, out: Path) -> list[Path]:
    paths = []
    for attack in df["attack"].unique().sort():
        sub = df.filter(pl.col("attack") == attack)
        paths.append(line_with_band(sub, "value", "adv_accuracy", "label", out / f"accuracy_{attack}.png",
                                    title=attack, xlabel=sub["param"][0] or "value", ylabel="accuracy under attack"))
    return paths


def main() -> None:
    a = parse(__doc__)
    df, _ = load(a.results, a.sweep)
    t = table(df)
    out = Path(a.out)
    t.write_csv(out / "accuracy_vs_eps.csv")
    (out / "accuracy_vs_eps.md").write_text(to_markdown(t, digits=3) + "\n")
    for p in plot(df, out):
        print(f"wrote {p}")
    print(f"wrote {out / 'accuracy_vs_eps.md'} and .csv ({len(t)} rows)")


if __name__ == "__main__":
    main()
