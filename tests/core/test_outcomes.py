"""Per-example outcomes and the worst case over attacks (issue 38, parts 1 and 2).

Every aggregate of a row must be recomputable from the trial's per-example outcomes (same draws, same points), and
the worst case over attacks must be, per example and overall, no better than any single attack.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustsweep.config.eval_options import EvalOptions
from robustsweep.config.spec import spec_from_dict
from robustsweep.core.evaluate import run
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps import Evaluation
from robustsweep.core.steps.outcomes import Outcomes, worst_case_rows
from robustsweep.core.trial import Runtime, run_trial
from robustsweep.detect import fit_detectors
from robustsweep.store import columns as col
from robustsweep.store.outcomes import outcomes_path, scan_outcomes
from robustsweep.store.parquet import read_sweep
from tests.conftest import trained_gfz


def _check_rows_against_outcomes(rows: list[dict], out: pl.DataFrame, dets: list[str]) -> None:
    attack_rows = [r for r in rows if r[col.KIND] == col.ATTACK]
    assert out["point"].n_unique() == len(attack_rows)
    for p, r in enumerate(attack_rows):
        o = out.filter(pl.col("point") == p)
        assert o["attack"][0] == r["attack"] and len(o) == r["n_eval"]
        assert (o["pred_adv"] == o["label"]).mean() == pytest.approx(r["adv_accuracy"])
        correct = o.filter(pl.col("pred_clean") == pl.col("label"))
        assert correct["fooled"].mean() == pytest.approx(r["success_rate"])
        assert o["fooled"].sum() == r["n_success"]
        if r["eps"] is not None:
            assert o["linf"].max() <= r["eps"] + 1e-5
        for d in dets:
            fooled = o.filter(pl.col("fooled"))
            if len(fooled):  # the row's TPR is the rejected fraction of the successful adversarials, same draw
                assert fooled[col.det(d, "reject")].mean() == pytest.approx(r[col.det(d, "tpr")])
            passed = (correct["fooled"] & ~correct[col.det(d, "reject")]).sum()
            assert passed / len(correct) == pytest.approx(r[col.det(d, "attacker_success")])


def test_a_trial_keeps_outcomes_that_reproduce_every_row(tmp_path):
    doc = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 32},
           "train": {"epochs": 5, "lr": 3e-3}, "eval": {"n_eval": 80},
           "attacks": [{"name": "fgsm", "eps": [0.1, 0.3]}, {"name": "pgd", "eps": [0.1], "steps": 3,
                                                               "step_size": 0.05, "n_eval": 40}]}
    (cfg,) = spec_from_dict(doc).expand()
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="t"))
    assert outcomes_path(tmp_path, "t", cfg["trial_id"]).exists()
    out = scan_outcomes(tmp_path, "t").collect()
    assert out["trial_id"].unique().to_list() == [cfg["trial_id"]]
    _check_rows_against_outcomes(rows, out, [])
    # the points are named by their test-split index: labels agree with the data set, no point twice per attack
    from robustsweep.data import load_dataset

    data = load_dataset("digits", seed=cfg["seed"])
    o = out.filter(pl.col("point") == 0)
    assert o["index"].n_unique() == len(o)
    assert (data.y_test[torch.tensor(o["index"].to_numpy())].numpy() == o["label"].to_numpy()).all()
    # an n_eval prefix attacks the first points of the same subset
    assert out.filter(pl.col("point") == 2)["index"].to_list() == o["index"].to_list()[:40]
    # the worst case at linf 0.1: over fgsm and pgd on the 40 points both attacked
    (worst,) = [r for r in rows if r[col.KIND] == col.WORST_CASE]
    assert worst["n_eval"] == 40 and worst["eps"] == 0.1 and worst["m.norm"] == "linf"
    both = out.filter((pl.col("eps") == 0.1) & (pl.col("index").is_in(o["index"].to_list()[:40])))
    robust = both.group_by("index").agg((pl.col("pred_adv") == pl.col("label")).all().alias("r"))
    assert robust["r"].mean() == pytest.approx(worst["adv_accuracy"])
    assert len(read_sweep(tmp_path, "t")) == len(rows)


def test_eval_outcomes_false_keeps_neither_file_nor_worst_case(tmp_path):
    doc = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
           "train": {"epochs": 1}, "eval": {"n_eval": 20, "outcomes": False},
           "attacks": [{"name": "fgsm", "eps": 0.1}, {"name": "pgd", "eps": 0.1, "steps": 2, "step_size": 0.05}]}
    (cfg,) = spec_from_dict(doc).expand()
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="t"))
    assert [r["attack"] for r in rows] == ["fgsm", "pgd"]
    assert not outcomes_path(tmp_path, "t", cfg["trial_id"]).exists()


def test_outcomes_of_a_stochastic_model_with_a_detector_are_the_rows_draws(digits):
    """GFZ draws K fresh importance samples per call: the outcomes must hold the very predictions and detector
    decisions the row's metrics were computed from, not a second draw."""
    torch.manual_seed(0)
    model = trained_gfz(digits, epochs=2, lr=3e-3)
    dets = fit_detectors([{"name": "marginal", "target_fpr": 0.1}], model, digits.x_train[:200],
                         digits.y_train[:200])
    ev = Evaluation(model, EvalOptions(), dets, batch_size=64)
    x, y = digits.x_test[:48], digits.y_test[:48]
    attacks = [{"name": "fgsm", "eps": 0.2}, {"name": "pgd", "eps": 0.2, "steps": 3, "step_size": 0.1, "eot": 2}]
    rows = list(run(ev, x, y, attacks))
    out = pl.DataFrame(Outcomes().artifacts(ev)["outcomes"])
    _check_rows_against_outcomes(rows, out, ["marginal"])
    (worst,) = [r for r in rows if r[col.KIND] == col.WORST_CASE]
    singles = [r for r in rows if r[col.KIND] == col.ATTACK]
    assert worst["adv_accuracy"] <= min(r["adv_accuracy"] for r in singles) + 1e-12
    assert worst["det.marginal.attacker_success"] >= max(r["det.marginal.attacker_success"] for r in singles) - 1e-12


@st.composite
def _records(draw):
    n = draw(st.integers(1, 30))
    n_att = draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    y = rng.integers(0, 3, n)
    pred_clean = np.where(rng.random(n) < 0.7, y, (y + 1) % 3)
    recs = []
    for a in range(n_att):
        m = draw(st.integers(1, n))  # an attack entry may attack a prefix
        pred_adv = np.where(rng.random(m) < 0.5, y[:m], rng.integers(0, 3, m))
        fooled = (pred_clean[:m] == y[:m]) & (pred_adv != y[:m])
        recs.append({"attack": f"a{a}", "goal": None, "norm": "linf", "eps": 0.3, "index": np.arange(m),
                     "pred_adv": pred_adv, "fooled": fooled,
                     "detectors": {"d": {"reject": rng.random(m) < 0.3}}})
    pts = AttackPoints(torch.zeros(n, 1), torch.tensor(y), torch.tensor(pred_clean),
                       {"n_eval": n, "clean_accuracy": float((pred_clean == y).mean())})
    return recs, pts


@settings(max_examples=60, deadline=None)
@given(_records())
def test_worst_case_is_no_better_than_any_attack_per_example_and_overall(case):
    recs, pts = case
    (row,) = worst_case_rows(recs, pts)
    n = row["n_eval"]
    assert n == min(len(r["index"]) for r in recs)
    y, correct = pts.y.numpy()[:n], pts.correct.numpy()[:n]
    robust = np.logical_and.reduce([r["pred_adv"][:n] == y for r in recs])
    for r in recs:  # per example: robust under the worst case implies robust under this attack
        assert not (robust & (r["pred_adv"][:n] != y)).any()
        assert row["adv_accuracy"] <= (r["pred_adv"][:n] == y).mean() + 1e-12
        if correct.any():
            assert row["success_rate"] >= r["fooled"][:n][correct].mean() - 1e-12
            single = (r["fooled"][:n] & ~r["detectors"]["d"]["reject"][:n])[correct].mean()
            assert row["det.d.attacker_success"] >= single - 1e-12
    assert row["adv_accuracy"] == pytest.approx(robust.mean())


def test_one_attack_per_budget_adds_no_worst_case_row():
    rec = {"attack": "a", "goal": None, "norm": "linf", "eps": 0.3, "index": np.arange(2),
           "pred_adv": np.array([0, 1]), "fooled": np.array([False, True]), "detectors": {}}
    pts = AttackPoints(torch.zeros(2, 1), torch.tensor([0, 0]), torch.tensor([0, 0]), {"n_eval": 2})
    assert worst_case_rows([rec, {**rec, "eps": 0.1}], pts) == []
    assert worst_case_rows([rec, {**rec, "norm": "l2", "attack": "b"}], pts) == []


def test_query_reads_the_outcomes_table(tmp_path):
    from robustsweep.report.aggregate import query

    doc = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
           "train": {"epochs": 1}, "eval": {"n_eval": 30},
           "attacks": [{"name": "fgsm", "eps": 0.2}, {"name": "pgd", "eps": 0.2, "steps": 2, "step_size": 0.1}]}
    (cfg,) = spec_from_dict(doc).expand()
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="t"))
    (worst,) = [r for r in rows if r[col.KIND] == col.WORST_CASE]
    df = query(tmp_path, "t", 'SELECT "index", min(CASE WHEN pred_adv = label THEN 1 ELSE 0 END) AS robust '
                              "FROM outcomes WHERE eps = 0.2 GROUP BY \"index\"")
    assert df.height == 30 and df["robust"].mean() == pytest.approx(worst["adv_accuracy"])
    assert query(tmp_path, "t", "SELECT count(*) AS n FROM results")["n"][0] == len(rows)
