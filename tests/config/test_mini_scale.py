"""The ``mini`` scale (issue 20): one trial of each mini paper experiment runs for real on mnist5k (5,000 real 28x28
MNIST digits) with the paper's own architecture, through the same ``run_trial`` every runner calls, so the
real-MNIST path cannot rot. Shrunk as ``--smoke`` does (one epoch, three attack steps of the same travel) and
further (2 attacked points, 50 detector-fit images, 8 ZOO coordinates): the numbers are not meaningful, the path is.

Why ``run_trial`` directly and not ``robustsweep run``: scheduling is tested elsewhere (tests/runners/test_local_e2e.py);
here the cost is the paper-size models (a deep-Bayes conv logit is K x C = 100 decoder passes), and a Ray start per
paper would double it. The mini contract itself (paper settings kept) is checked for every file in tests/config/test_scales.py.
"""
from __future__ import annotations

import math

import pytest

from robustsweep.config.spec import load_spec
from robustsweep.core.trial import Runtime, run_trial
from robustsweep.store.parquet import finished_ok
from tests.conftest import REPO

MINI = [("p001_whitebox", "gfz"), ("p002_student", "gfz"), ("p003_gmmvae", None)]  # one experiment per paper


@pytest.mark.parametrize(("stem", "model"), MINI, ids=[m[0] for m in MINI])
def test_one_mini_trial_runs_on_real_mnist_with_the_paper_architecture(tmp_path, stem, model):
    spec = load_spec(REPO / "experiments" / f"{stem}.yaml", scale="mini", smoke=True)
    paper = load_spec(REPO / "experiments" / f"{stem}.yaml", scale="paper")
    trials = spec.expand()
    cfg = next(t for t in trials if model is None or t["model"]["name"] == model)
    assert cfg["dataset"]["name"] == "mnist5k"
    assert cfg["model"].get("arch") == paper.model.model_dump().get("arch") == "conv"  # the paper's conv nets
    # the path, not the strength: 2 attacked points, detectors fit on 50 clean images (--smoke already cut the score
    # attacks' queries per step, e.g. ZOO's 128 coordinates, each a 100-decoder-pass logit on a conv deep-Bayes model)
    cfg["eval"].update(n_eval=2, n_fit=50)
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep=spec.sweep_name, threads=2))
    assert finished_ok(tmp_path, spec.sweep_name, cfg["trial_id"]) is not None
    own = {a.get("label") or a["name"]: a["n_eval"] for a in cfg["attacks"] if a.get("n_eval")}  # e.g. ZOO: 1 point
    assert all(r["status"] == "ok" and r["n_eval"] == min(2, own.get(r["attack"], 2)) for r in rows)
    assert all(0.0 <= r["clean_accuracy"] <= 1.0 for r in rows)
    attacks = {a.get("label") or a["name"] for a in cfg["attacks"]}
    assert attacks <= {r["attack"] for r in rows}, "every attack of the paper experiment produced rows"
    for d in cfg.get("detectors", []):
        label = d.get("label") or d["name"]
        fpr = [r[f"det.{label}.fpr"] for r in rows if r["kind"] != "worst_case"]  # worst case: attacker success only
        assert all(v is None or (0.0 <= v <= 1.0 and not math.isnan(v)) for v in fpr)
