"""Report primitives on hand-built rows: seed statistics, paper-layout tables, writers, compare, checks."""
from __future__ import annotations

import math
import subprocess
import sys

import polars as pl
import pytest

from robustsweep.report.checks import Check, CheckResult, compare_means, compare_to_value, monotone
from robustsweep.report.reference import Reference
from robustsweep.report.stats import bootstrap_ci, fmt_cell, mean_std_ci
from robustsweep.report.tables import compare, pivot_table, to_csv, to_latex, to_markdown

ROW_ORDER = ["gfz", "gbz", "dfx", "abc"]  # 'abc' has no rows at all
LABELS = {"gfz": "GFZ", "gbz": "GBZ", "dfx": "DFX", "abc": "ABC"}
COL_LABELS = {0.1: "PGD eps=0.1", 0.2: "PGD eps=0.2"}


def _row(model: str, seed: int, eps: float | None, acc: float | None, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sweep": "s", "trial_id": f"{model}-{seed}", "config_hash": model, "seed": seed, "status": "ok",
        "error": None, "attack": "pgd", "param": "eps", "value": eps, "eps": eps, "clean_accuracy": 0.9,
        "adv_accuracy": acc, "cfg.model.name": model,
    }
    return base | kw


def make_rows() -> pl.DataFrame:
    """GBZ: 3 seeds everywhere; DFX: seed 2 failed (2 seeds per cell); GFZ: one seed at eps=0.1 only."""
    rows = [
        _row("gbz", 0, 0.1, 0.5), _row("gbz", 1, 0.1, 0.6), _row("gbz", 2, 0.1, 0.7),
        _row("gbz", 0, 0.2, 0.3), _row("gbz", 1, 0.2, 0.4), _row("gbz", 2, 0.2, 0.5),
        _row("dfx", 0, 0.1, 0.2), _row("dfx", 1, 0.1, 0.4),
        _row("dfx", 0, 0.2, 0.1), _row("dfx", 1, 0.2, 0.2),
        _row("dfx", 2, None, None, status="failed", error="RuntimeError: boom", attack=None, param=None,
             clean_accuracy=None),
        _row("gfz", 0, 0.1, 0.9),
    ]
    # clean-only rows (attack 'none') that the filter must drop
    rows += [_row(m, 0, None, None, attack="none", param=None) for m in ("gbz", "dfx", "gfz")]
    return pl.DataFrame(rows, infer_schema_length=None)


def build(**kw: object):
    args = dict(row_key="cfg.model.name", col_key="eps", metric="adv_accuracy", row_order=ROW_ORDER,
                col_order=[0.1, 0.2], row_labels=LABELS, col_labels=COL_LABELS, filter=pl.col("attack") == "pgd",
                id="fig3", title="Adversarial accuracy", row_header="model_name")
    return pivot_table(make_rows(), **(args | kw))


# ------------------------------------------------------------------------------------------------------ stats


def test_mean_std_ci_and_bootstrap_determinism():
    mean, std, lo, hi, n = mean_std_ci([0.5, 0.6, 0.7])
    assert n == 3 and mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert lo <= mean <= hi and 0.5 <= lo and hi <= 0.7
    assert bootstrap_ci([0.1, 0.5, 0.2, 0.9], seed=3) == bootstrap_ci([0.1, 0.5, 0.2, 0.9], seed=3)
    assert bootstrap_ci([0.1, 0.5, 0.2, 0.9], seed=3) != bootstrap_ci([0.1, 0.5, 0.2, 0.9], seed=4)
    assert mean_std_ci([0.4]) == (0.4, None, 0.4, 0.4, 1)
    assert mean_std_ci([None, float("nan")]) == (None, None, None, None, 0)


def test_fmt_cell():
    assert fmt_cell(0.9123, 0.0131) == "0.912 ± 0.013"
    assert fmt_cell(0.9123, None) == "0.912"
    assert fmt_cell(0.9123, float("nan"), digits=2) == "0.91"
    assert fmt_cell(None, None) == "—"


# ------------------------------------------------------------------------------------------------------ tables


def test_pivot_cells_order_missing_and_failed():
    t = build()
    assert t.frame.columns == ["model_name", "PGD eps=0.1", "PGD eps=0.2"]
    assert t.rows == ["GFZ", "GBZ", "DFX", "ABC"] and t.frame["model_name"].to_list() == t.rows
    cell = {(r["model_name"], c): r[c] for r in t.frame.iter_rows(named=True) for c in t.columns}
    assert cell[("GBZ", "PGD eps=0.1")] == "0.600 ± 0.100"  # 3 seeds: mean 0.6, sample std 0.1
    assert cell[("GBZ", "PGD eps=0.2")] == "0.400 ± 0.100"
    assert cell[("DFX", "PGD eps=0.1")] == "0.300 ± 0.141 (n=2)"  # seed 2 failed -> visible n
    assert cell[("DFX", "PGD eps=0.2")] == "0.150 ± 0.071 (n=2)"
    assert cell[("GFZ", "PGD eps=0.1")] == "0.900 (n=1)"
    assert cell[("GFZ", "PGD eps=0.2")] == "—" and cell[("ABC", "PGD eps=0.1")] == "—"
    assert t.missing == [("GFZ", "PGD eps=0.2"), ("ABC", "PGD eps=0.1"), ("ABC", "PGD eps=0.2")]
    assert t.failed.height == 1 and t.failed["trial_id"].to_list() == ["dfx-2"]
    assert "RuntimeError" in t.failed["error"][0]
    num = {(r["row"], r["column"]): r for r in t.numeric.iter_rows(named=True)}
    g = num[("GBZ", "PGD eps=0.1")]
    assert g["n"] == 3 and g["mean"] == pytest.approx(0.6) and g["std"] == pytest.approx(0.1)
    assert g["ci_lo"] <= g["mean"] <= g["ci_hi"]
    assert num[("DFX", "PGD eps=0.2")]["n"] == 2 and num[("ABC", "PGD eps=0.2")]["n"] == 0
    assert any("failed trial" in n for n in t.notes) and any("not produced" in n for n in t.notes)


def test_pivot_without_order_sorts_and_expression_keys():
    t = pivot_table(make_rows().filter(pl.col("attack") == "pgd"), row_key=pl.col("cfg.model.name").str.to_uppercase(),
                    col_key=pl.format("PGD eps={}", pl.col("eps")), metric="adv_accuracy", mark_short=False)
    assert t.rows == ["DFX", "GBZ", "GFZ"] and t.columns == ["PGD eps=0.1", "PGD eps=0.2"]
    assert t.frame.row(0) == ("DFX", "0.300 ± 0.141", "0.150 ± 0.071")
    assert t.failed.height == 0  # the caller's own pre-filter removed the failed row before the builder saw it


def test_pivot_rejects_uncontrolled_axis():
    rows = make_rows().with_columns(pl.lit("digits").alias("cfg.dataset.name"))
    dup = rows.filter(pl.col("cfg.model.name") == "gbz").with_columns(pl.lit("mnist").alias("cfg.dataset.name"))
    both = pl.concat([rows, dup])
    with pytest.raises(ValueError, match="cfg.dataset.name"):
        pivot_table(both, row_key="cfg.model.name", col_key="eps", metric="adv_accuracy",
                    filter=pl.col("attack") == "pgd")
    t = pivot_table(both, row_key="cfg.model.name", col_key="eps", metric="adv_accuracy",
                    filter=pl.col("attack") == "pgd", duplicates="mean")
    assert t.frame.filter(pl.col("cfg.model.name") == "gbz")["0.1"].item() == "0.600 ± 0.100"


def test_writers(tmp_path):
    t = build(caption="Accuracy under 100% PGD & co #1")
    md = to_markdown(t)
    assert "| model_name | PGD eps=0.1 | PGD eps=0.2 |" in md and "| GBZ | 0.600 ± 0.100 | 0.400 ± 0.100 |" in md
    tex = to_latex(t)
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in tex
    assert r"model\_name" in tex and "model_name" not in tex.replace(r"model\_name", "")
    assert r"0.600 $\pm$ 0.100" in tex and r"100\% PGD \& co \#1" not in tex  # title wins over caption
    assert r"\label{tab:fig3}" in tex
    path = to_csv(t, tmp_path / "fig3.csv")
    back = pl.read_csv(path)
    assert {"table", "row", "column", "mean", "std", "ci_lo", "ci_hi", "n"} <= set(back.columns)
    assert back.height == 8 and back.filter(pl.col("n") == 0).height == 3


def test_latex_escapes_caption_when_no_title():
    t = build(title="", caption="a_b 100% & #")
    assert r"\caption{a\_b 100\% \& \#}" in to_latex(t)


def test_compare_tolerance_and_verdict():
    t = build()
    refs = [
        Reference(table="fig3", row="GBZ", column="PGD eps=0.1", value=0.62, tolerance=0.05),  # |−0.02| inside
        Reference(table="fig3", row="GBZ", column="PGD eps=0.2", value=0.60, tolerance=0.05),  # |−0.2| outside
        Reference(table="fig3", row="ABC", column="PGD eps=0.1", value=0.50),  # never run
        Reference(table="other", row="x", column="y", value=1.0),  # other table: ignored
    ]
    c = compare(t, refs)
    assert c.frame.columns[:7] == ["row", "column", "paper", "ours", "delta", "tolerance", "within_tolerance"]
    assert c.frame["within_tolerance"].to_list() == [True, False, None]
    assert c.frame["delta"][0] == pytest.approx(-0.02)
    assert c.verdict == "1/3 cells within tolerance (1 not run)"
    c2 = compare(t, {("GBZ", "PGD eps=0.1"): 0.6, ("DFX", "PGD eps=0.1"): 0.5}, tolerance=0.1)
    assert c2.verdict == "1/2 cells within tolerance"
    with pytest.raises(ValueError, match="row 'XYZ'"):
        compare(t, {("XYZ", "PGD eps=0.1"): 0.6})


# ------------------------------------------------------------------------------------------------------ checks


def test_compare_means_holds_with_numbers_and_missing_is_none():
    rows = make_rows()
    at = (pl.col("attack") == "pgd") & (pl.col("eps") == 0.1)
    r = compare_means(rows, at & (pl.col("cfg.model.name") == "gbz"), at & (pl.col("cfg.model.name") == "dfx"),
                      "adv_accuracy", ">", label_a="GBZ", label_b="DFX", at="PGD eps=0.1")
    assert r.holds is True
    assert r.observed == "adv_accuracy: GBZ 0.600 (n=3) vs DFX 0.300 (n=2) at PGD eps=0.1"
    assert compare_means(rows, at & (pl.col("cfg.model.name") == "gbz"), at & (pl.col("cfg.model.name") == "dfx"),
                         "adv_accuracy", ">", margin=0.5).holds is False
    missing = compare_means(rows, at & (pl.col("cfg.model.name") == "abc"), at, "adv_accuracy", label_a="ABC")
    assert missing.holds is None and "ABC no rows" in missing.observed


def test_check_run_names_and_errors_become_none():
    rows = make_rows()
    chk = Check("gbz-robust", "GBZ beats DFX", "001", lambda r: compare_means(
        r, pl.col("cfg.model.name") == "gbz", pl.col("cfg.model.name") == "dfx", "adv_accuracy"))
    res = chk.run(rows)
    assert isinstance(res, CheckResult) and res.name == "gbz-robust" and res.claim == "GBZ beats DFX"
    assert res.holds is True and res.status == "holds"
    broken = Check("x", "needs a column", "001", lambda r: compare_to_value(r, None, "m.not_there", ">", 0.5))
    out = broken.run(rows)
    assert out.holds is None and out.status == "not evaluated" and "m.not_there" in out.observed


def test_monotone_and_threshold():
    rows = make_rows().filter(pl.col("attack") == "pgd")
    dec = monotone(rows, "eps", "adv_accuracy", filter=pl.col("cfg.model.name") == "gbz", label="GBZ")
    assert dec.holds is True and dec.observed == "GBZ adv_accuracy vs eps 0.1→0.2: 0.600→0.400"
    assert monotone(rows, "eps", "adv_accuracy", filter=pl.col("cfg.model.name") == "gfz").holds is None
    assert compare_to_value(rows, None, "clean_accuracy", ">=", 0.9).holds is True


def test_report_modules_do_not_import_torch_or_ray():
    code = ("import sys, robustsweep.report.tables, robustsweep.report.figures, robustsweep.report.html, "
            "robustsweep.report.checks, robustsweep.report.reference, robustsweep.report.stats; "
            "bad = [m for m in ('torch', 'ray') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_nan_metric_is_not_a_value():
    rows = make_rows().with_columns(
        pl.when(pl.col("trial_id") == "gbz-2").then(float("nan")).otherwise(pl.col("adv_accuracy"))
        .alias("adv_accuracy"))
    t = pivot_table(rows, row_key="cfg.model.name", col_key="eps", metric="adv_accuracy",
                    filter=pl.col("attack") == "pgd")
    g = t.numeric.filter((pl.col("row") == "gbz") & (pl.col("column") == "0.1")).row(0, named=True)
    assert g["n"] == 2 and math.isclose(g["mean"], 0.55)
