"""Binomial intervals (report/intervals.py) against scipy's Wilson interval, on every rate's own denominator."""
from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from robustsweep.report.aggregate import aggregate
from robustsweep.report.intervals import THIN, denominator, fmt_interval, pooled, wilson


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy(kn):
    k, n = kn
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)
    assert lo <= k / n <= hi


def test_the_issue_example_a_cell_of_03_on_10_points():
    lo, hi = wilson(3, 10)
    assert (round(lo, 2), round(hi, 2)) == (0.11, 0.6)
    assert fmt_interval(0.3, lo, hi, 10) == "0.300 [0.108, 0.603] n=10†"  # thin: fewer than 30 points
    assert THIN == 30


ROWS = pl.DataFrame({
    "seed": [0, 1], "n_eval": [10, 30], "clean_accuracy": [0.8, 0.9], "adv_accuracy": [0.3, 0.5],
    "success_rate": [0.625, 0.444444], "det.d.tpr": [0.5, 0.25], "det.d.n_pos": [4.0, 12.0],
    "det.d.attacker_success": [0.25, 0.5], "det.c.tpr": [0.4, 0.4], "det.c.tpr_pooled": [0.5, 0.5],
    "det.c.n_pos": [4.0, 12.0], "mean_l2": [1.0, 2.0], "cfg": ["a", "a"],
})


def test_each_rate_counts_its_own_points():
    def points(metric: str) -> list:  # one cell per seed: each row's own points
        return pooled(ROWS, ["seed"], metric)["points"].to_list()

    assert points("adv_accuracy") == [10, 30]
    assert points("success_rate") == [8, 27]  # the initially-correct points
    assert points("det.d.tpr") == [4, 12]  # the successful adversarials
    assert points("det.d.attacker_success") == [8, 27]
    assert points("det.c.tpr") == []  # class-averaged: no binomial count
    assert pooled(ROWS, ["seed"], "mean_l2").is_empty() and denominator("mean_l2", ROWS.columns) is None
    lo, hi = wilson(3, 10)
    first = pooled(ROWS, ["seed"], "adv_accuracy").row(0, named=True)
    assert first["lo"] == pytest.approx(lo) and first["hi"] == pytest.approx(hi)


def test_seeds_pool_their_counts():
    cell = pooled(ROWS, ["cfg"], "adv_accuracy").row(0, named=True)
    assert cell["points"] == 40 and cell["rate"] == pytest.approx(18 / 40)
    lo, hi = wilson(18, 40)
    assert (cell["lo"], cell["hi"]) == (pytest.approx(lo), pytest.approx(hi)) and cell["thin"] is False


def test_results_table_carries_the_intervals():
    rows = ROWS.with_columns(pl.lit("ok").alias("status"), pl.lit("pgd").alias("attack"), pl.lit("eps").alias("param"),
                             pl.lit(0.1).alias("value"), pl.lit("t").alias("trial_id"))
    agg = aggregate(rows, ("adv_accuracy", "mean_l2"), keys=[])
    assert agg["adv_accuracy_points"][0] == 40 and agg["adv_accuracy_lo"][0] < 0.45 < agg["adv_accuracy_hi"][0]
    assert "mean_l2_lo" not in agg.columns


def test_paper_cells_carry_intervals_and_the_verdict_uses_them():
    from robustsweep.report.tables import compare, interval_verdict, pivot_table

    rows = pl.DataFrame({"status": ["ok"] * 3, "seed": [0, 0, 0], "model": ["a", "b", "c"], "col": ["x"] * 3,
                         "n_eval": [400, 400, 10], "clean_accuracy": [0.9] * 3, "adv_accuracy": [0.5, 0.9, 0.5]})
    t = pivot_table(rows, row_key="model", col_key="col", metric="adv_accuracy", id="t")
    lo, hi = wilson(200, 400)
    assert t.frame["x"][0] == f"0.500 [{lo:.3f}, {hi:.3f}]" and t.frame["x"][2].endswith("†")  # 10 points: thin
    cmp = compare(t, {("a", "x"): 0.52, ("b", "x"): 0.5, ("c", "x"): 0.9}, tolerance=0.01)
    assert cmp.frame["verdict"].to_list() == ["consistent", "inconsistent", "too thin"]
    assert "1 consistent, 1 inconsistent, 1 too thin" in cmp.verdict
    # a distance has no binomial interval: judged by tolerance only
    assert interval_verdict(1.0, 0.1, 1.05, None, None, None) == "no interval"
    assert interval_verdict(1.0, 0.1, None, None, None, None) is None
