"""Paper 002's report builder on hand-built rows: the paper's layout (classifiers as rows, attacks as columns, FGS
read at one ε), the claims' verdicts and the builder on an experiment that has not run. No training."""
from __future__ import annotations

import polars as pl
import pytest

from robustsweep.report.papers import PaperContext, load_papers, p002

ATTACKS = ["fgsm", "deepfool", "truncated-deepfool", "cw", "zoo"]


def make_rows() -> pl.DataFrame:
    """Two seeds x DFZ/GFZ x five attacks, FGS at two ε. Values are chosen so every cell is known:
    success = 0.1 * (attack index + 1) + 0.05 * [gfz]; rho = 0.5 for FGS, 0.1 DeepFool, 0.05 truncated, + 0.01 GFZ;
    attack time = attack index + 1 (+ 1 on GFZ), FGS ε=0.2 time 0.1; seed 1 adds 0.02 to success."""
    rows = []
    for seed in (0, 1):
        for m in ("dfz", "gfz"):
            g = m == "gfz"
            for i, a in enumerate(ATTACKS):
                for eps in ((0.1, 0.2) if a == "fgsm" else (None,)):
                    rho = {"fgsm": 0.5, "deepfool": 0.1, "truncated-deepfool": 0.05}.get(a, 0.3) + 0.01 * g
                    rows.append({
                        "status": "ok", "seed": seed, "cfg.model.name": m, "attack": a, "eps": eps,
                        "clean_accuracy": 0.9 - 0.1 * g, "m.val_accuracy": 0.85 - 0.1 * g + 0.02 * seed,
                        "success_rate": 0.1 * (i + 1) + 0.05 * g + 0.02 * seed + (0.3 if eps == 0.1 else 0.0),
                        "rho": rho, "m.rho_all": 0.8 * rho, "attack_time_s": 0.1 if a == "fgsm" else float(i + 1 + g),
                        "det.logit.tpr": (0.9 if a == "fgsm" else 0.2) + 0.05 * g,
                        "det.logit.auc": 0.8 + 0.1 * g,
                        "det.logit.roc_fpr": [0.0, 0.5, 1.0], "det.logit.roc_tpr": [0.0, 0.8, 1.0],
                        "n_eval": 100, "m.eval_batch_size": 40, "m.device": "test cpu (1 threads)",
                    })
    return pl.DataFrame(rows)


def build(tmp_path, rows: pl.DataFrame | None) -> tuple[dict, dict]:
    exps = {} if rows is None else {p002.EXPERIMENT: rows}
    sections = load_papers()["002"].build(PaperContext(exps, tmp_path, "ci"))
    tables = {t.id: t for s in sections for t in s.tables}
    checks = {c.name: c for s in sections for c in s.checks}
    return tables, checks


def cell(table, row: str, col: str) -> float:
    return table.numeric.filter((pl.col("row") == row) & (pl.col("column") == col))["mean"].item()


def test_tables_in_the_papers_layout(tmp_path):
    tables, _ = build(tmp_path, make_rows())
    assert set(tables) == set(p002.TABLES)
    t3 = tables["table3"]
    assert t3.rows == ["DFZ", "GFZ"] and t3.columns == ["DeepFool", "Fast Gradient Sign"]
    assert t3.frame.columns[0] == "Classifier/Attack"
    assert cell(t3, "DFZ", "Fast Gradient Sign") == pytest.approx(0.11)  # ε = 0.2 only, mean of seeds 0.10/0.12
    assert cell(t3, "GFZ", "DeepFool") == pytest.approx(0.26)
    assert tables["table2"].columns == ["Fast Gradient Sign", "DeepFool", "Truncated-DeepFool", "Wagner Carlini",
                                        "ZOO"]
    assert cell(tables["table2"], "GFZ", "ZOO") == pytest.approx(6.0)
    assert cell(tables["table2_per_example"], "GFZ", "ZOO") == pytest.approx(6.0 / 100)
    assert cell(tables["table2_per_batch"], "GFZ", "ZOO") == pytest.approx(6.0 / 3)  # ceil(100 / 40) = 3 batches
    assert "test cpu (1 threads), batch size 40, 100 attacked images" in tables["table2_per_batch"].caption
    # Table 4 reads rho over every attacked sample (the paper's 1/n_samples); the store's rho is the other table
    assert cell(tables["table4"], "DFZ", "DeepFool") == pytest.approx(0.08)
    assert cell(tables["table4_successes"], "DFZ", "DeepFool") == pytest.approx(0.1)
    assert "1/n_samples" in tables["table4"].caption
    for tid in ("table2", "table2_per_example", "table3_all", "table4_all", "table5_all"):  # Truncated-DeepFool columns
        assert "prints no algorithm" in tables[tid].caption, tid
    assert cell(tables["table1"], "GFZ", "Accuracy (test set)") == pytest.approx(0.8)
    assert cell(tables["table1"], "DFZ", "Accuracy (validation set)") == pytest.approx(0.86)  # seeds 0.85 / 0.87
    assert tables["table1"].columns == ["Accuracy (test set)", "Accuracy (validation set)"]
    assert cell(tables["table4"], "GFZ", "DeepFool") == pytest.approx(0.8 * 0.11)  # m.rho_all (the paper's averaging)
    assert cell(tables["table5"], "DFZ", "Fast Gradient Sign") == pytest.approx(0.9)
    assert all(not t.missing for t in tables.values())


def test_claims_verdicts(tmp_path):
    _, checks = build(tmp_path, make_rows())
    assert checks["dfz_more_accurate"].holds is True
    assert checks["fgs_fastest"].holds is True and checks["zoo_slowest"].holds is True
    assert checks["gfz_attacks_slower"].holds is False  # FGS takes 0.1 s on both
    assert checks["gfz_lower_success"].holds is False  # GFZ is 0.05 higher everywhere
    assert checks["gfz_larger_rho"].holds is True and checks["deepfool_smaller_than_fgs"].holds is True
    assert checks["truncated_smaller"].holds is True
    assert checks["gfz_detects_more"].holds is True and checks["fgs_mostly_detected"].holds is True
    assert checks["deepfool_harder_to_detect"].holds is True and checks["gfz_larger_auc"].holds is True
    assert "ZOO 6 s" in checks["zoo_slowest"].observed


def test_not_run_keeps_the_layout(tmp_path):
    tables, checks = build(tmp_path, None)
    assert tables["table5"].missing == [("DFZ", "DeepFool"), ("DFZ", "Fast Gradient Sign"), ("GFZ", "DeepFool"),
                                        ("GFZ", "Fast Gradient Sign")]
    assert all(c.holds is None for c in checks.values())
