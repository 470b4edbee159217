"""Paper 001 appendix A.1 report pieces (report/papers/p001_a1.py) on hand-built rows: tables and named checks."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from robustsweep.report.papers import PaperContext
from robustsweep.report.papers.p001_a1 import ADAPTIVE, build_a1


def _rows(curve: list[tuple[float, float, float]]) -> pl.DataFrame:
    """Two models x three detectors x (one draw, EOT), the same (λ, detection, accuracy) curve everywhere."""
    out = []
    for m in ("gfz", "dfz"):
        for d in ("marginal", "logit", "kl"):
            for suffix in ("", "-eot"):
                for lam, tpr, acc in curve:
                    r = {"status": "ok", "attack": f"a1-{d}{suffix}", "param": "det_lambda", "value": lam,
                         "cfg.model.name": m, "seed": 0, "trial_id": m, "config_hash": m, "adv_accuracy": acc}
                    r |= {f"det.{k}.tpr": tpr for k in ("marginal", "logit", "kl")}
                    r |= {f"det.{k}.attacker_success": 0.5 * (1 - tpr) for k in ("marginal", "logit", "kl")}
                    out.append(r)
    return pl.DataFrame(out)


def _section(rows: pl.DataFrame | None, tmp_path: Path):
    ctx = PaperContext({} if rows is None else {ADAPTIVE: rows}, tmp_path, "ci")
    (section,) = build_a1(ctx)
    return section


def test_tables_hold_the_rows_by_lambda_and_the_trade_off_claims_hold(tmp_path):
    s = _section(_rows([(0.0, 0.9, 0.1), (1.0, 0.6, 0.2), (10.0, 0.3, 0.4)]), tmp_path)
    det, acc, succ = s.tables
    assert det.columns == ["λ=0", "λ=1", "λ=10"]
    assert det.frame.filter(pl.col("model / detector (EOT)") == "GFZ logit (EOT)").row(0)[1:] == (
        "0.900", "0.600", "0.300")
    assert acc.frame.filter(pl.col("model / detector (EOT)") == "DFZ kl (one draw)").row(0)[3] == "0.400"
    assert succ.frame.filter(pl.col("model / detector (EOT)") == "GFZ marginal (one draw)").row(0)[1] == "0.050"
    assert all(c.holds is True for c in s.checks), [(c.name, c.observed) for c in s.checks]
    assert {c.name for c in s.checks} >= {"a1-logit-lowers-detection", "a1-logit-raises-accuracy", "a1-logit-tandem"}


def test_an_attack_breaking_both_in_tandem_fails_the_claim(tmp_path):
    s = _section(_rows([(0.0, 0.9, 0.3), (1.0, 0.5, 0.1), (10.0, 0.3, 0.2)]), tmp_path)
    by = {c.name: c for c in s.checks}
    assert by["a1-kl-lowers-detection"].holds is True
    assert by["a1-kl-raises-accuracy"].holds is False
    assert by["a1-kl-tandem"].holds is False and "λ=1: detection 0.500, accuracy 0.100" in by["a1-kl-tandem"].observed


def test_not_run_yet_gives_the_layout_with_empty_cells_and_unevaluated_checks(tmp_path):
    s = _section(None, tmp_path)
    assert all(t.frame.height == 7 * 3 * 2 for t in s.tables)  # every model x detector x EOT row, "—" cells
    assert all(c.holds is None for c in s.checks)
