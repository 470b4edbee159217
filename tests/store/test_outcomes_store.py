"""The per-example outcome files: compact enough (10,000 examples × 50 attack points ≤ 20 MB), atomic, and read
only for trials the row store holds as ok."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from robustsweep.store import columns as col
from robustsweep.store.outcomes import outcomes_path, scan_outcomes, write_outcomes
from robustsweep.store.parquet import write_trial
from robustsweep.store.rows import failed_row


def _columns(n_ex: int, n_points: int, seed: int = 0) -> dict:
    """Outcomes shaped like a real trial's: PGD-like perturbations at the budget for most points, some classes
    flipped, two detectors with float scores."""
    rng = np.random.default_rng(seed)
    n = n_ex * n_points
    eps = np.repeat(np.linspace(0.0, 0.3, n_points), n_ex)
    label = np.tile(rng.integers(0, 10, n_ex), n_points)
    pred_adv = np.where(rng.random(n) < 0.6, label, rng.integers(0, 10, n))
    linf = np.where(rng.random(n) < 0.9, eps, eps * rng.random(n)).astype(np.float32)
    out = {"point": np.repeat(np.arange(n_points, dtype=np.int32), n_ex), "attack": ["pgd"] * n,
           "param": ["eps"] * n, "value": eps.tolist(), "eps": eps.tolist(), "norm": ["linf"] * n,
           "index": np.tile(rng.permutation(10_000)[:n_ex], n_points), "label": label,
           "pred_clean": label, "pred_adv": pred_adv, "fooled": pred_adv != label, "linf": linf,
           "l2": (linf * rng.uniform(5, 20, n)).astype(np.float32), "target": np.full(n, -1)}
    for d in ("marginal", "kl"):
        out[col.det(d, "score")] = rng.normal(size=n).astype(np.float32)
        out[col.det(d, "reject")] = (rng.random(n) < 0.2).tolist()
    return out


def _ok_row(tid: str) -> dict:
    return {"sweep": "s", "trial_id": tid, "config_hash": tid, "seed": 0, "status": "ok", "attack": "pgd"}


def test_ten_thousand_examples_times_fifty_points_fit_in_twenty_megabytes(tmp_path):
    path = write_outcomes(_columns(10_000, 50), tmp_path, "s", "t1")
    size_mb = path.stat().st_size / 2**20
    assert size_mb <= 20, f"{size_mb:.1f} MB"
    write_trial([_ok_row("t1")], tmp_path, "s", "t1")
    out = scan_outcomes(tmp_path, "s").collect()
    assert out.height == 500_000 and out["trial_id"].unique().to_list() == ["t1"]
    assert out.schema["index"] == pl.Int32 and out.schema["label"] == pl.Int16 and out["target"].null_count() == out.height


def test_only_ok_trials_are_read_and_a_missing_store_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="no per-example outcomes"):
        scan_outcomes(tmp_path, "s")
    write_outcomes(_columns(5, 2), tmp_path, "s", "good")
    write_outcomes(_columns(5, 2), tmp_path, "s", "later-failed")
    write_trial([_ok_row("good")], tmp_path, "s", "good")
    write_trial([failed_row({"trial_id": "later-failed", "config_hash": "x", "seed": 0}, "s", "boom")], tmp_path, "s",
                "later-failed")
    assert scan_outcomes(tmp_path, "s").collect()["trial_id"].unique().to_list() == ["good"]
    # atomic: no temp file left beside the outcomes
    assert [p.name for p in outcomes_path(tmp_path, "s", "good").parent.iterdir() if p.name.startswith(".")] == []
