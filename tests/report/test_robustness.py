"""The robust-accuracy table and the gradient-masking sanity checks every report carries (report/robustness.py).

The masking test trains a model whose input is quantised (zero gradient almost everywhere) beside an honest MLP,
runs both through real trials, and requires the sanity section to flag the quantised one and only it."""
from __future__ import annotations

import json

import polars as pl
import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.core.trial import Runtime, run_trial
from robustsweep.registry import MODELS
from robustsweep.report.aggregate import CONFIG, config_label, label_columns
from robustsweep.report.generic import build_report
from robustsweep.report.robustness import robust_accuracy_table, sanity_checks, sanity_table
from robustsweep.store.parquet import read_sweep
from tests.conftest import register_quantised_mlp


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One sweep: an MLP and the same MLP behind round(4x)/4, FGSM and PGD over an ε grid, APGD-DLR at one ε."""
    register_quantised_mlp("test-quantised-r")
    root = tmp_path_factory.mktemp("rob")
    doc = {"name": "s", "dataset": {"name": "digits"}, "train": {"epochs": 8, "lr": 3e-3}, "eval": {"n_eval": 80},
           "model": {"name": "mlp", "hidden": 64},
           "search": {"model": {"grid": [{"name": "mlp", "hidden": 64}, {"name": "test-quantised-r", "hidden": 64}]}},
           "attacks": [{"name": "fgsm", "eps": [0.05, 0.1, 0.2]},
                       {"name": "pgd", "eps": [0.05, 0.1, 0.2], "steps": 10, "step_size": 0.05},
                       {"name": "apgd", "eps": 0.1, "loss": "dlr", "steps": 10}]}
    try:
        for cfg in spec_from_dict(doc).expand():
            run_trial(cfg, Runtime(results=str(root), sweep="s"))
    finally:
        MODELS.unregister("test-quantised-r")
    rows = read_sweep(root, "s")
    return root, rows.with_columns(config_label(label_columns(rows)))


def _checks(rows: pl.DataFrame, model: str) -> dict:
    return {c.name: c for c in sanity_checks(rows.filter(pl.col("cfg.model.name") == model))}


def test_the_quantised_model_is_flagged_and_the_honest_one_is_not(sweep):
    _, rows = sweep
    honest, masked = _checks(rows, "mlp"), _checks(rows, "test-quantised-r")
    assert honest["gradients"].holds and honest["unbounded"].holds and honest["steps"].holds
    assert honest["monotone"].holds
    assert masked["gradients"].holds is False and "not all zero on 0%" in masked["gradients"].observed
    assert masked["unbounded"].holds is False
    table, checks = sanity_table(rows)
    assert any(c.holds is False for c in checks if c.name.startswith("test-quantised-r"))
    assert "DOES NOT HOLD" in " ".join(table.frame["status"].to_list())


def test_the_robust_accuracy_table_has_the_worst_case_with_intervals(sweep):
    _, rows = sweep
    t = robust_accuracy_table(rows)
    assert t is not None and "L∞ ε=0.1" in t.columns
    worst = [r for r in t.frame.iter_rows(named=True) if "worst case" in r["attack"]]
    assert len(worst) == 2  # one per model
    for r in worst:
        assert "[" in r["L∞ ε=0.1"] and "n=80" in r["L∞ ε=0.1"]
    num = t.numeric.filter(pl.col("column") == "L∞ ε=0.1")
    mlp = {r["row"].split(" / ")[1]: r["mean"] for r in num.iter_rows(named=True) if r["row"].startswith("mlp")}
    assert mlp["worst-case"] <= min(mlp["fgsm"], mlp["pgd"], mlp["apgd"])


def _synthetic(accs: dict[tuple[str, float], float], threat: dict[str, str], params: dict[str, dict] | None = None):
    recs = [{"trial_id": "t", "status": "ok", "kind": "attack", "attack": a, "eps": e, "m.norm": "linf",
             "m.threat": threat[a], "n_eval": 200, "clean_accuracy": 0.9, "adv_accuracy": v,
             "attack_params": json.dumps((params or {}).get(a, {})), CONFIG: "m"} for (a, e), v in accs.items()]
    return pl.DataFrame(recs)


def test_a_rise_with_eps_a_transfer_beating_white_box_and_a_margin_gap_are_flagged():
    rows = _synthetic({("pgd", 0.1): 0.2, ("pgd", 0.3): 0.6, ("transfer", 0.1): 0.05,
                       ("apgd", 0.1): 0.7}, {"pgd": "white-box", "transfer": "transfer", "apgd": "white-box"},
                      {"apgd": {"loss": "dlr"}})
    c = {r.name: r for r in sanity_checks(rows)}
    assert c["monotone"].holds is False and "pgd" in c["monotone"].observed
    assert c["transfer"].holds is False and "transfer" in c["transfer"].observed
    assert c["margin"].holds is False and "apgd" in c["margin"].observed
    ok = _synthetic({("pgd", 0.1): 0.2, ("pgd", 0.3): 0.19, ("transfer", 0.1): 0.5, ("apgd", 0.1): 0.21},
                    {"pgd": "white-box", "transfer": "transfer", "apgd": "white-box"}, {"apgd": {"loss": "dlr"}})
    assert all(r.holds is not False for r in sanity_checks(ok))


def test_the_generic_report_writes_both_sections(sweep, tmp_path):
    root, _ = sweep
    build_report(read_sweep(root, "s"), tmp_path, sweep="s", formats=("md", "csv"))
    md = (tmp_path / "report.md").read_text()
    assert "## Robust accuracy" in md and "## Sanity checks" in md and "worst case (any attack)" in md
    assert (tmp_path / "tables" / "robust-accuracy.csv").exists() and (tmp_path / "tables" / "sanity.csv").exists()
