"""Paper 001 appendix A.3 builder (report/papers/p001_a3.py) on hand-built rows with known cells: the layout
(sources × victims), the eps it reads, the heatmap, the claim checks both ways, and an experiment not yet run."""
from __future__ import annotations

import json

import polars as pl
import pytest

from robustsweep.report.papers import PaperContext, load_papers, p001_a3

MODELS = ["gfz", "gby", "dfx", "dbx", "mlp"]
GEN = {"gfz", "gby"}


def known(src: str, vic: str) -> float:
    """Victim accuracy of a cell: diagonal 0.05, gen→gen 0.3, gen→disc 0.8, disc→gen 0.7, else 0.4."""
    if src == vic:
        return 0.05
    if src in GEN:
        return 0.3 if vic in GEN else 0.8
    return 0.7 if vic in GEN else 0.4


def make_rows(flip: bool = False) -> pl.DataFrame:
    """Two seeds (seed 1 adds 0.02), every (source, victim) at eps 0.1 (+0.5: must be ignored) and 0.15; a plain
    PGD row (no source: not part of the matrix) and one failed trial. ``flip`` swaps gen→gen with gen→disc."""
    rows = []
    for seed in (0, 1):
        for vic in MODELS:
            for src in MODELS:
                acc = known(src, vic)
                if flip and src in GEN and src != vic:
                    acc = 0.8 if vic in GEN else 0.3
                # the diagonal of gfz is written as source None (the victim itself), the others as sections
                section = None if (src == vic == "gfz") else {"name": src, "hidden": 7}
                for eps, extra in ((0.1, 0.5), (0.15, 0.0)):
                    rows.append({"status": "ok", "seed": seed, "trial_id": f"{vic}-{seed}", "cfg.model.name": vic,
                                 "attack": f"from-{src}", "param": "eps", "value": eps, "eps": eps,
                                 "attack_params": json.dumps({"eps": eps, "source": section, "steps": 10}),
                                 "adv_accuracy": min(1.0, acc + extra) + 0.02 * seed, "clean_accuracy": 0.95})
            rows.append({"status": "ok", "seed": seed, "trial_id": f"{vic}-{seed}", "cfg.model.name": vic,
                         "attack": "pgd", "param": "eps", "value": 0.15, "eps": 0.15,
                         "attack_params": json.dumps({"eps": 0.15}), "adv_accuracy": 0.0, "clean_accuracy": 0.95})
    rows.append({"status": "failed", "seed": 2, "trial_id": "dfx-2", "cfg.model.name": None, "attack": None,
                 "param": None, "value": None, "eps": None, "attack_params": None, "adv_accuracy": None,
                 "clean_accuracy": None, "error": "RuntimeError: boom"})
    return pl.DataFrame(rows, infer_schema_length=None)


def build(tmp_path, rows: pl.DataFrame | None):
    ctx = PaperContext({} if rows is None else {p001_a3.A3: rows}, tmp_path, "ci")
    (section,) = p001_a3.build_a3(ctx)
    return section, {c.name: c for c in section.checks}


def cell(table, row: str, col: str) -> float:
    return table.numeric.filter((pl.col("row") == row) & (pl.col("column") == col))["mean"].item()


def test_matrix_layout_and_cells(tmp_path):
    section, _ = build(tmp_path, make_rows())
    (t,) = section.tables
    assert t.id in p001_a3.A3_TABLES
    order = ["GFZ", "GBY", "DFX", "DBX", "MLP"]  # paper order for deep Bayes, then the baselines
    assert t.rows == order and t.columns == order
    for src in MODELS:
        for vic in MODELS:  # eps 0.15 only (the eps-0.1 rows are 0.5 higher), mean of seeds 0 and +0.02
            assert cell(t, src.upper(), vic.upper()) == pytest.approx(known(src, vic) + 0.01), (src, vic)
    assert "0.15" in t.title
    assert not t.missing and t.failed.height == 1  # the failed trial is listed, not silently dropped


def test_heatmap_written(tmp_path):
    section, _ = build(tmp_path, make_rows())
    (path, caption), = section.figures
    assert path == tmp_path / "figures" / "a3_transfer_heatmap.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert path.stem in p001_a3.A3_FIGURES and "victim accuracy" in caption


def test_claims_hold_on_rows_that_show_them(tmp_path):
    _, checks = build(tmp_path, make_rows())
    gd = checks["a3-transfer-gen-to-gen-beats-gen-to-disc"]
    dg = checks["a3-transfer-gen-to-gen-beats-disc-to-gen"]
    assert gd.holds is True and dg.holds is True
    assert "0.310" in gd.observed and "0.810" in gd.observed  # off-diagonal gen→gen, gen→disc (seed mean)
    assert "0.710" in dg.observed
    assert checks["a3-white-box-strongest"].holds is True


def test_claims_fail_on_rows_that_contradict_them(tmp_path):
    _, checks = build(tmp_path, make_rows(flip=True))
    assert checks["a3-transfer-gen-to-gen-beats-gen-to-disc"].holds is False
    assert checks["a3-transfer-gen-to-gen-beats-disc-to-gen"].holds is False  # gen→gen 0.8 vs disc→gen 0.7


def test_experiment_not_run_renders_empty_without_verdicts(tmp_path):
    section, checks = build(tmp_path, None)
    assert not section.figures
    assert all(c.holds is None for c in checks.values())


def test_module_is_not_a_paper_entry_and_discovery_ignores_it():
    papers = load_papers()
    assert all(p.build is not p001_a3.build_a3 for p in papers.values())
    assert sorted(papers) == sorted(set(papers))  # discovery ran without registering anything twice
