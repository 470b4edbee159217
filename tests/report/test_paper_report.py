"""The paper layer (report/paper.py, report/papers/): a throw-away paper over hand-built rows gives known cells,
the reference file is validated, --compare marks a value outside tolerance, a crashing builder loses nothing."""
from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from robustsweep import cli
from robustsweep.report.checks import compare_means, compare_to_value, monotone
from robustsweep.report.html import Section
from robustsweep.report.paper import build_paper_report
from robustsweep.report.papers import PAPERS, Paper, PaperContext, get_paper, load_papers
from robustsweep.report.tables import UNDEFINED, pivot_table
from tests.report.test_pivot import make_rows, stored_sweep  # noqa: F401 - the fixture

DZ = pl.col("cfg.model.dim_z")


def _build(ctx: PaperContext) -> list[Section]:
    rows = ctx.rows("piv")
    t = pivot_table(rows, row_key="cfg.model.dim_z", col_key="value", metric="adv_accuracy", row_order=[8, 32],
                    col_order=[0.1, 0.2], row_labels={8: "small", 32: "large"}, col_labels={0.1: "ε=0.1", 0.2: "ε=0.2"},
                    filter=pl.col("attack") == "pgd", id="tab", title="accuracy", row_header="model")
    ok = pl.col("status") == "ok"
    check = compare_means(rows, ok & (DZ == 32), ok & (DZ == 8), "adv_accuracy", ">", name="bigger-wins",
                          claim="the larger latent is more robust")
    return [Section("Table", tables=[t], checks=[check])]


def _paper(tmp_path, refs: list[dict], build=_build) -> Paper:
    ref = tmp_path / "ref.yaml"
    ref.write_text(yaml.safe_dump({"paper": "900", "values": refs}))
    return Paper(id="900", name="toy", title="A toy paper", source="toy.txt", experiments=[], build=build,
                 tables={"tab": "Table 1: accuracy"}, reference=ref)


REFS = [{"table": "tab", "row": "large", "column": "ε=0.1", "value": 0.8, "tolerance": 0.01},  # ours 0.800
        {"table": "tab", "row": "small", "column": "ε=0.2", "value": 0.70, "tolerance": 0.05}]  # ours 0.450


def test_paper_report_known_cells_comparison_and_claims(tmp_path):
    rep = build_paper_report(_paper(tmp_path, REFS), {"piv": make_rows()}, tmp_path / "out", scale="paper")
    (t,) = rep.tables
    assert t.frame.row(0) == ("small", "0.550 ± 0.071 (n=2)", "0.450 ± 0.071 (n=2)")
    cmp = {(r["row"], r["column"]): r for r in t.comparison.frame.iter_rows(named=True)}
    assert cmp[("large", "ε=0.1")]["within_tolerance"] is True
    assert cmp[("small", "ε=0.2")]["within_tolerance"] is False
    assert cmp[("small", "ε=0.2")]["delta"] == pytest.approx(0.45 - 0.70)
    assert t.comparison.verdict == "1/2 cells within tolerance"
    (c,) = rep.checks
    assert c.holds is True and c.observed == "adv_accuracy: A 0.767 (n=3) vs B 0.500 (n=2)"  # seed means by hand
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["tables"]["tab"]["missing_cells"] == [] and summary["checks"][0]["status"] == "holds"
    assert pl.read_csv(tmp_path / "out" / "tables" / "tab.compare.csv")["within_tolerance"].to_list() == [True, False]
    assert {"ci_lo", "ci_hi"} <= set(pl.read_csv(tmp_path / "out" / "tables" / "tab.csv").columns)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "1/2 cells within tolerance" in html and "bigger-wins" in html and "Summary: paper vs ours" in html


def test_ci_scale_shows_paper_numbers_for_orientation_only(tmp_path):
    rep = build_paper_report(_paper(tmp_path, REFS), {"piv": make_rows()}, tmp_path / "out", scale="ci")
    assert rep.tables[0].comparison.verdict.startswith("ci scale: the paper's full-size numbers, shown for orientation")
    rep = build_paper_report(_paper(tmp_path, REFS), {"piv": make_rows()}, tmp_path / "o2", scale="paper",
                             compare=False)
    assert rep.tables[0].comparison is None


@pytest.mark.parametrize("bad, match", [
    ({"table": "tab", "row": "large", "column": "ε=0.5", "value": 0.1}, "column 'ε=0.5' does not exist"),
    ({"table": "tab", "row": "huge", "column": "ε=0.1", "value": 0.1}, "row 'huge' does not exist"),
    ({"table": "fig9", "row": "large", "column": "ε=0.1", "value": 0.1}, "does not produce"),
])
def test_reference_to_a_missing_table_row_or_column_is_an_error(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        build_paper_report(_paper(tmp_path, [bad]), {"piv": make_rows()}, tmp_path / "out", scale="paper")


def test_a_crashing_builder_is_reported_and_loses_nothing(tmp_path):
    def broken(ctx):
        raise KeyError("det.kl.tpr")
    rep = build_paper_report(_paper(tmp_path, [], broken), {"piv": make_rows()}, tmp_path / "out", scale="ci")
    assert "KeyError" in rep.error and rep.absent_tables == ["tab"]
    assert "det.kl.tpr" in (tmp_path / "out" / "report.md").read_text()


def test_absent_experiment_renders_the_layout_with_empty_cells(tmp_path):
    rep = build_paper_report(_paper(tmp_path, []), {"piv": make_rows().clear()}, tmp_path / "out", scale="ci")
    (t,) = rep.tables
    assert t.rows == ["small", "large"] and len(t.missing) == 4 and rep.error is None


def test_cells_that_ran_without_a_value_are_na_not_missing():
    rows = make_rows().with_columns(pl.when(pl.col("cfg.model.dim_z") == 8).then(None)
                                    .otherwise(pl.col("det.logit.tpr")).alias("det.logit.tpr"))
    t = pivot_table(rows, row_key="cfg.model.dim_z", col_key="value", metric="det.logit.tpr", row_order=[8, 32, 64],
                    filter=pl.col("attack") == "pgd")
    assert t.undefined == [("8", "0.1"), ("8", "0.2")] and t.frame.row(0)[1] == UNDEFINED
    assert t.missing == [("64", "0.1"), ("64", "0.2")]  # never ran: "—"


def test_claims_on_a_metric_the_rows_lack_are_not_evaluated():
    rows, ok = make_rows(), pl.col("status") == "ok"
    c = compare_means(rows, ok & (DZ == 32), ok & (DZ == 8), "m.never_written", ">")
    assert c.holds is None and "no rows" in c.observed
    assert monotone(rows, "value", "m.never_written").holds is None
    assert compare_to_value(rows, ok, "m.never_written", ">", 0.5).holds is None


def test_registry_lookup_by_id_or_name():
    papers = load_papers()
    assert set(papers) >= {"001"}
    assert get_paper("1") is papers["001"] and get_paper("deep-bayes") is papers["001"]
    with pytest.raises(Exception, match="unknown paper 'nope'"):
        get_paper("nope")


def test_report_cli_paper_and_compare(stored_sweep, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setitem(PAPERS, "900", _paper(tmp_path, REFS))
    out = tmp_path / "r"
    argv = ["report", "piv", "--out", str(out), "--paper", "900", "--compare", "--results", str(stored_sweep.results)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "tab: 2×2 — 1/2 cells within tolerance" in printed and "claim bigger-wins: holds" in printed
    assert (out / "piv" / "report.html").is_file()  # the generic report too
    assert (out / "900-toy-paper" / "tables" / "tab.compare.csv").is_file()
    assert cli.main(["report", "piv", "--compare", "--results", str(stored_sweep.results), "--out", str(out)]) == 2
