"""The compact pivot summary (config rows × grid values per attack, mean ± std over seeds) on hand-built rows.

Rows: configs gfz dim_z=8 (A) and gfz dim_z=32 (B), seeds 0-2, PGD at eps 0.1 and 0.2. A's seed 2 failed; B's
seed 2 has no eps=0.2 row (a missing seed in one cell). Values are chosen so every cell is known by hand.
"""
from __future__ import annotations

import json

import polars as pl
import pytest

from robustsweep import cli
from robustsweep.config.spec import spec_from_dict
from robustsweep.report.aggregate import CONFIG, config_label, format_pivot, label_columns, pivot_summary
from robustsweep.report.generic import attack_tables
from robustsweep.runners.base import RunSummary
from robustsweep.store.parquet import write_trial
from robustsweep.sweep.folder import prepare_sweep

SPEC = {"name": "piv", "dataset": {"name": "digits"}, "model": {"name": "gfz"},
        "attacks": [{"name": "pgd", "eps": [0.1, 0.2]}], "detectors": [{"name": "logit"}],
        "search": {"model.dim_z": {"grid": [8, 32]}, "seed": {"grid": [0, 1, 2]}}}
BASE = {8: 0.6, 32: 0.8}  # adv_accuracy = BASE - eps + 0.1 * seed
CLEAN = {8: 0.90, 32: 0.95}  # clean_accuracy = CLEAN + 0.02 * seed (A) / 0.01 * seed (B)
EXPECTED = {  # the pivot's cells, worked out by hand (std: sample std over seeds)
    "gfz dim_z=8": {"clean": "0.910 ± 0.014 (n=2)", "eps=0.1": "0.550 ± 0.071 (n=2)",
                    "eps=0.2": "0.450 ± 0.071 (n=2)"},
    "gfz dim_z=32": {"clean": "0.960 ± 0.010", "eps=0.1": "0.800 ± 0.100", "eps=0.2": "0.650 ± 0.071 (n=2)"},
}


def trial_rows(t: dict, sweep: str) -> list[dict]:
    """The rows one trial of SPEC writes (or its single failed row), with provenance and detector columns."""
    dz, seed = t["model"]["dim_z"], t["seed"]
    common = {"sweep": sweep, "trial_id": t["trial_id"], "config_hash": t["config_hash"], "seed": seed,
              "cfg.model.name": "gfz", "cfg.model.dim_z": dz, "cfg.seed": seed, "config_json": json.dumps(t),
              "versions": json.dumps({"polars": pl.__version__, "robustsweep": "0.1.0"}), "git_rev": "abc1234"}
    if dz == 8 and seed == 2:
        return [common | {"status": "failed", "error": "TrainingDiverged: loss is nan at epoch 3"}]
    clean = CLEAN[dz] + (0.02 if dz == 8 else 0.01) * seed
    out = []
    for eps in (0.1, 0.2):
        if dz == 32 and seed == 2 and eps == 0.2:
            continue
        adv = BASE[dz] - eps + 0.1 * seed
        out.append(common | {"status": "ok", "attack": "pgd", "param": "eps", "value": eps, "eps": eps,
                             "clean_accuracy": clean, "adv_accuracy": adv, "success_rate": 1 - adv / clean,
                             "det.logit.tpr": 0.5 + eps, "det.logit.fpr": 0.05, "det.logit.auc": 0.7 + eps,
                             "det.logit.roc_fpr": [0.0, 0.5, 1.0], "det.logit.roc_tpr": [0.0, 0.6 + eps, 1.0]})
    return out


def make_rows() -> pl.DataFrame:
    trials = spec_from_dict(SPEC).expand()
    return pl.DataFrame([r for t in trials for r in trial_rows(t, "piv")], infer_schema_length=None)


@pytest.fixture
def stored_sweep(tmp_path):
    """SPEC's sweep folder with every trial's Parquet file written directly (no training)."""
    sw = prepare_sweep(spec_from_dict(SPEC), tmp_path / "results")
    for t in sw.trials:
        write_trial(trial_rows(t, sw.name), sw.results, sw.name, t["trial_id"])
    return sw


def _cells(frame: pl.DataFrame) -> dict[str, dict[str, str]]:
    return {r[CONFIG]: {k: v for k, v in r.items() if k != CONFIG} for r in frame.iter_rows(named=True)}


def test_pivot_cells_are_known_mean_std_with_short_cells_marked():
    blocks = pivot_summary(make_rows())
    assert [a for a, _ in blocks] == ["pgd"]
    frame = blocks[0][1]
    assert frame.columns == [CONFIG, "clean", "eps=0.1", "eps=0.2"]
    assert frame[CONFIG].to_list() == ["gfz dim_z=8", "gfz dim_z=32"]  # numeric order of dim_z, not text order
    assert _cells(frame) == EXPECTED


def test_pivot_of_another_metric_and_text_layout():
    (attack, frame), = pivot_summary(make_rows(), "det.logit.tpr")
    assert _cells(frame)["gfz dim_z=32"]["eps=0.2"] == "0.700 ± 0.000 (n=2)"
    text = format_pivot(pivot_summary(make_rows()))
    lines = text.splitlines()
    assert lines[0] == "pgd: adv_accuracy (mean ± std over seeds)"
    assert lines[1].startswith(f"| {CONFIG} ") and "eps=0.1" in lines[1]
    assert len({len(ln) for ln in lines[1:]}) == 1  # aligned columns
    assert format_pivot([]) == "(no successful trials yet)"


def test_config_labels_name_values_bare_and_skip_nulls():
    df = pl.DataFrame({"cfg.model.name": ["gfz", "mlp", "gfz"], "cfg.model.dim_z": [8, None, 8],
                       "cfg.train.lr": [0.001, 0.001, 0.01], "cfg.opt.lr": [None, None, 1.0], "cfg.seed": [0, 1, 2]})
    labels = df.select(config_label(label_columns(df)))[CONFIG].to_list()
    assert labels == ["gfz dim_z=8 train.lr=0.001", "mlp train.lr=0.001", "gfz dim_z=8 train.lr=0.01 opt.lr=1.0"]
    one = pl.DataFrame({"cfg.model.name": ["gfz", "gfz"], "cfg.seed": [0, 1]})
    assert one.select(config_label(label_columns(one)))[CONFIG].to_list() == ["gfz", "gfz"]


def test_report_tables_show_the_same_cells_as_the_summary():
    rows = make_rows()
    rows = rows.with_columns(config_label(label_columns(rows)))
    tables = {t.id: t for t in attack_tables(rows, "pgd")}
    assert list(tables) == ["pgd-adv_accuracy", "pgd-success_rate", "pgd-det-logit-tpr"]
    adv = tables["pgd-adv_accuracy"]
    assert _cells(adv.frame) == EXPECTED
    assert adv.failed["trial_id"].len() == 1  # the failed trial is listed, not counted
    n = {(r["row"], r["column"]): r["n"] for r in adv.numeric.iter_rows(named=True)}
    assert n[("gfz dim_z=32", "eps=0.1")] == 3 and n[("gfz dim_z=32", "eps=0.2")] == 2


def test_finish_prints_the_pivot_and_still_the_failures(stored_sweep, capsys):
    rc = cli.finish(stored_sweep.results, stored_sweep.name,
                    RunSummary(total=6, ok=5, failed=1, errors={"t1": "TrainingDiverged: nan"}))
    out, err = capsys.readouterr()
    assert rc == 1
    assert "5/6 trials ok" in out and "pgd: adv_accuracy" in out
    assert "| gfz dim_z=32 |" in out and "0.800 ± 0.100" in out and "0.550 ± 0.071 (n=2)" in out
    assert len(out.splitlines()) < 12  # compact: one line per config, not one per config × value
    assert "FAILED t1: TrainingDiverged" in err
