"""Cross-paper section of paper 004 (p004_cross.yaml): hand-built rows -> known cells, the min-over-detectors column
and check verdicts (no training); and the experiment file expands at both sizes with every detector it attacks."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from robustsweep.report.papers.p004_cross import cross_checks, cross_tables

DETS = ("energy", "energy-auto", "marginal", "logit", "kl")


def _row(model: str, attack: str, value: float, auc: dict[str, float], succ: dict[str, float], **m: float) -> dict:
    r = {"status": "ok", "seed": 0, "cfg.model.name": model, "attack": attack, "value": value,
         "param": "lam" if attack == "he-pgd" else "det_lambda", "adv_accuracy": 0.3, "success_rate": 0.7}
    r |= {f"det.{d}.auc": auc.get(d, 0.5) for d in DETS}
    r |= {f"det.{d}.attacker_success_fpr5": succ.get(d, 0.4) for d in DETS}
    return r | m


def _rows() -> pl.DataFrame:
    rows = []
    for model in ("gfz", "dfz"):
        rows += [
            _row(model, "he-pgd", 0.0, {"energy": 0.2, "marginal": 0.8, "logit": 0.8, "kl": 0.6}, {}),
            _row(model, "he-pgd", 0.1, {"energy": 0.1}, {}),
            # HE-PGD at 1.2: energy evaded, marginal better, logit WORSE (transfers), KL within the margin
            _row(model, "he-pgd", 1.2, {"energy": 0.01, "marginal": 0.99, "logit": 0.6, "kl": 0.59},
                 {"energy": 0.3, "marginal": 0.0, "logit": 0.2, "kl": 0.1}, success_rate=0.2),
            _row(model, "he-pgd", 10.0, {}, {}),
            _row(model, "logit-aware", 1.0, {}, {}),
            _row(model, "logit-aware", 10.0, {}, {"logit": 0.5, "energy-auto": 0.1}),
            _row(model, "energy-aware", 1.0, {}, {}),
            _row(model, "energy-aware", 10.0, {}, {"energy": 0.3, "marginal": 0.29}),
        ]
    tau = {"det.tau.auc": 0.9, "det.tau.tpr": 0.8, "det.tau.fpr": 0.01, "det.tau.attacker_success": 0.25,
           "det.tau.attacker_success_fpr5": 0.2}
    for attack, lams in (("he-pgd", (0.0, 0.1, 1.2, 10.0)), ("tau-aware", (1.0, 10.0)), ("energy-aware", (1.0, 10.0))):
        for lam in lams:
            succ = {"energy-auto": 0.05} if attack == "tau-aware" else {}
            rows.append(_row("gmmvae", attack, lam, {"energy": 0.3 if lam == 0 else 0.1}, succ, **tau))
    return pl.DataFrame(rows)


def _cell(table, row: str, col: str) -> float:
    rec = table.numeric.filter((pl.col("row") == row) & (pl.col("column") == col))
    assert rec.height == 1, (row, col)
    return rec["mean"][0]


def test_cells_and_min_over_detectors():
    auc, succ, tau = cross_tables(_rows())
    assert auc.rows[:4] == ["GFZ · PGD (HE-PGD λ=0)", "GFZ · HE-PGD λ=0.1", "GFZ · HE-PGD λ=1.2", "GFZ · HE-PGD λ=10"]
    assert len(auc.rows) == 24 and not auc.missing and not succ.missing
    assert _cell(auc, "DFZ · HE-PGD λ=1.2", "AUC · marginal") == pytest.approx(0.99)
    assert _cell(succ, "GFZ · HE-PGD λ=1.2", "success · logit") == pytest.approx(0.2)
    assert _cell(succ, "GFZ · HE-PGD λ=1.2", "success · all watching (≤ min)") == pytest.approx(0.0)
    assert _cell(succ, "GFZ · logit-aware PGD λ=10", "success · all watching (≤ min)") == pytest.approx(0.1)


def test_checks_follow_the_rows():
    checks = {c.name: c for c in cross_checks(_rows())}
    for m in ("GFZ", "DFZ"):
        assert checks[f"he-pgd-evades-energy [{m}]"].holds is True
        assert checks[f"he-pgd-as-effective [{m}]"].holds is False  # 0.2 vs 0.7
        assert checks[f"energy-evasion-not-transferred-marginal [{m}]"].holds is True
        assert checks[f"energy-evasion-not-transferred-logit [{m}]"].holds is False  # 0.6 < 0.8 - 0.02
        assert checks[f"energy-evasion-not-transferred-kl [{m}]"].holds is True  # 0.59 >= 0.6 - 0.02
        assert checks[f"logit-aware-stopped-by-energy [{m}]"].holds is True  # 0.1 < 0.5 - 0.02
        assert checks[f"energy-aware-stopped-by-marginal [{m}]"].holds is False  # 0.29 not < 0.3 - 0.02
    assert "0.600 vs PGD AUC 0.800" in checks["energy-evasion-not-transferred-logit [GFZ]"].observed
    assert checks["tau-aware-stopped-by-energy [GMMVAE]"].holds is True  # 0.05 < 0.2 - 0.02
    assert checks["energy-evasion-not-transferred-tau [GMMVAE]"].holds is True  # 0.9 both
    assert "logit-aware-stopped-by-energy [GMMVAE]" not in checks


def test_gmmvae_rows_and_tau_table():
    auc, succ, tau = cross_tables(_rows())
    assert auc.rows[-8:] == ["GMMVAE · PGD (HE-PGD λ=0)", "GMMVAE · HE-PGD λ=0.1", "GMMVAE · HE-PGD λ=1.2",
                             "GMMVAE · HE-PGD λ=10", "GMMVAE · τ-aware PGD λ=1", "GMMVAE · τ-aware PGD λ=10",
                             "GMMVAE · energy-aware PGD λ=1", "GMMVAE · energy-aware PGD λ=10"]
    assert tau.rows == auc.rows[-8:] and not tau.missing
    assert _cell(tau, "GMMVAE · τ-aware PGD λ=10", "success · τ") == pytest.approx(0.25)
    # τ joins the minimum for the GMM-VAE only: 0.05 (energy-auto) < 0.2 (τ) < 0.4 (the rest)
    assert _cell(succ, "GMMVAE · τ-aware PGD λ=1", "success · all watching (≤ min)") == pytest.approx(0.05)
    assert _cell(succ, "GMMVAE · HE-PGD λ=0.1", "success · all watching (≤ min)") == pytest.approx(0.2)


def test_empty_rows_render_dashes():
    auc, succ, tau = cross_tables(pl.DataFrame())
    assert len(auc.rows) == 32 and len(auc.missing) == 32 * 5  # ci grids: 4 models x 8 attack rows
    assert "GMMVAE · τ-aware PGD λ=10" in auc.rows and len(tau.rows) == 8
    assert [c.holds for c in cross_checks(pl.DataFrame())] == [None]


@pytest.mark.parametrize("scale", ["ci", "paper"])
def test_experiment_file_expands_with_its_detectors(scale: str):
    from robustsweep.config.spec import load_spec

    spec = load_spec(Path(__file__).parents[3] / "experiments" / "p004_cross.yaml", scale=scale)
    trials = spec.expand()
    assert {t["model"]["name"] for t in trials} == {"gfz", "gbz", "dfz"}
    labels = {d.get("label", d["name"]) for d in trials[0]["detectors"]}
    assert labels == set(DETS)
    aware = {a["detector_aware"]["detector"] for a in trials[0]["attacks"] if a.get("detector_aware")}
    assert aware == {"logit", "energy"} and aware <= labels


@pytest.mark.parametrize("scale", ["ci", "paper"])
def test_gmmvae_file_expands_with_tau_and_its_aware_attack(scale: str):
    from robustsweep.config.spec import load_spec

    spec = load_spec(Path(__file__).parents[3] / "experiments" / "p004_cross_gmmvae.yaml", scale=scale)
    trials = spec.expand()
    assert {t["model"]["name"] for t in trials} == {"gmmvae"}
    labels = {d.get("label", d["name"]) for d in trials[0]["detectors"]}
    assert labels == {*DETS, "tau"}
    aware = {a["detector_aware"]["detector"] for a in trials[0]["attacks"] if a.get("detector_aware")}
    assert aware == {"tau", "energy"}
