"""End to end through the CLI and a local Ray: the quickstart at a tiny size, failures, re-run, results, query."""
from __future__ import annotations

import polars as pl
import pytest
import yaml

from robustsweep.cli import main
from robustsweep.store.parquet import read_sweep, trial_status
from tests.conftest import REPO


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


TINY = ["--set", "train.epochs=3", "--set", "eval.n_eval=60", "--set", "attacks.1.steps=3", "--cpus", "2"]


def test_quickstart_tiny_end_to_end(tmp_path, capsys):
    rc = main(["run", str(REPO / "experiments" / "quickstart.yaml"), "--results", str(tmp_path), *TINY])
    out = capsys.readouterr().out
    assert rc == 0, out
    spec = yaml.safe_load((REPO / "experiments" / "quickstart.yaml").read_text())

    def eps_of(a: dict) -> list:
        return a["eps"] if isinstance(a["eps"], list) else [a["eps"]]

    # rows per trial: each attack's ε grid (AutoAttack: a row per component and its own), and a worst case per ε
    # that two or more attacks share
    rows_of = {a["name"]: len(eps_of(a)) * (3 if a["name"] == "autoattack" else 1) for a in spec["attacks"]}
    n_points = sum(rows_of.values())
    all_eps = [e for a in spec["attacks"] for e in eps_of(a)]
    shared = {e for e in all_eps if all_eps.count(e) > 1}
    n_trials = len(spec["search"]["model"]["grid"]) * len(spec["search"]["seed"]["grid"])
    all_rows = read_sweep(tmp_path, "quickstart")
    assert all_rows.filter(pl.col("kind") == "worst_case").height == n_trials * len(shared)
    df = all_rows.filter(pl.col("kind") == "attack")
    assert df["trial_id"].n_unique() == n_trials
    assert len(df) == n_trials * n_points and set(all_rows["status"]) == {"ok"}
    assert set(df["cfg.model.name"]) == {"gfz", "mlp"}
    assert f"[{n_trials:>3}/{n_trials}] done {n_trials}" in out  # progress lines
    assert "| model.name |" in out or "model" in out  # summary table printed

    # results: mean/std over the two seeds, per config and attack point
    assert main(["results", "quickstart", "--results", str(tmp_path), "--csv", str(tmp_path / "t.csv"),
                 "--markdown", str(tmp_path / "t.md")]) == 0
    table = pl.read_csv(tmp_path / "t.csv")
    assert len(table) == (n_trials // 2) * (n_points + len(shared)) and set(table["n_seeds"]) == {2}
    one = df.filter((pl.col("cfg.model.name") == "mlp") & (pl.col("attack") == "fgsm") & (pl.col("value") == 0.1))
    row = table.filter((pl.col("cfg.model.name") == "mlp") & (pl.col("attack") == "fgsm") & (pl.col("value") == 0.1))
    assert row["adv_accuracy_mean"][0] == pytest.approx(one["adv_accuracy"].mean())
    assert row["adv_accuracy_std"][0] == pytest.approx(one["adv_accuracy"].std())
    assert (tmp_path / "t.md").read_text().startswith("| model.name")

    # SQL over the same files
    assert main(["query", "quickstart", "SELECT attack, count(*) AS n FROM results GROUP BY attack ORDER BY attack",
                 "--results", str(tmp_path), "--csv", str(tmp_path / "q.csv")]) == 0
    q = pl.read_csv(tmp_path / "q.csv")
    counts = {r["attack"]: r["n"] for r in q.to_dicts()}
    assert counts["fgsm"] == n_trials * rows_of["fgsm"] and counts["pgd"] == n_trials * rows_of["pgd"]
    assert counts["autoattack"] == counts["autoattack/apgd-ce"] == n_trials and counts["worst-case"] == n_trials * len(shared)

    # running the same spec again runs nothing (every trial already has a result)
    capsys.readouterr()
    assert main(["run", str(REPO / "experiments" / "quickstart.yaml"), "--results", str(tmp_path), *TINY]) == 0
    assert f"{n_trials} already done, 0 to run" in capsys.readouterr().out


def test_failed_trial_is_isolated_and_reported(tmp_path, capsys):
    spec = {
        "name": "mixed",
        "dataset": {"name": "digits"},
        "model": {"name": "mlp", "hidden": 32},
        "train": {"epochs": 3},
        "eval": {"n_eval": 50},
        "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}],
        "search": {"dataset": {"grid": [{"name": "digits"}, {"name": "fashion-mnist"}]}, "seed": {"grid": [0, 1]}},
    }
    p = tmp_path / "mixed.yaml"
    p.write_text(yaml.safe_dump(spec))
    # --no-preflight: the pre-flight would refuse the unstaged data set before anything runs (tested in
    # tests/runners/test_preflight.py); here the point is a trial failing at run time next to trials that succeed
    args = ["run", str(p), "--results", str(tmp_path / "r"), "--data-root", str(tmp_path / "empty"), "--cpus", "2",
            "--no-preflight"]
    assert main(args) == 1
    captured = capsys.readouterr()
    st = trial_status(tmp_path / "r", "mixed")
    assert sorted(s["status"] for s in st.values()) == ["failed", "failed", "ok", "ok"]
    assert all("not available under" in s["error"] for s in st.values() if s["status"] == "failed")
    assert "2 trial(s) failed" in captured.err and "FashionMNIST" in captured.err
    df = read_sweep(tmp_path / "r", "mixed")
    assert len(df.filter(status="ok")) == 4  # 2 trials × 2 eps, intact
    assert (tmp_path / "r" / "mixed" / "logs").is_dir()
    # a second run retries only the two failed trials
    assert main(args) == 1
    assert "2 already done, 2 to run" in capsys.readouterr().out
