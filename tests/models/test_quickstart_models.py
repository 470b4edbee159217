"""The quickstart's claim: both of its models (GFZ and the discriminative baseline) reach >= 0.95 clean accuracy
on digits with exactly the quickstart's training settings."""
from __future__ import annotations

import pytest

from robustsweep.config.spec import load_spec
from robustsweep.core.trial import load_data, train_model
from robustsweep.ops.train import accuracy
from tests.conftest import REPO

TRIALS = [t for t in load_spec(REPO / "experiments" / "quickstart.yaml").expand() if t["seed"] == 0]
# one GFZ (the smallest dim(z) of the grid) and the baseline
PICK = [min((t for t in TRIALS if t["model"]["name"] == "gfz"), key=lambda t: t["model"]["dim_z"]),
        next(t for t in TRIALS if t["model"]["name"] != "gfz")]


@pytest.mark.parametrize("cfg", PICK, ids=lambda t: t["model"]["name"])
def test_quickstart_model_clean_accuracy(cfg):
    import torch

    data = load_data(cfg["dataset"], cfg["seed"], None)
    model, cached = train_model(cfg, data, torch.device("cpu"), None, lambda m: None)
    assert not cached
    acc = accuracy(model, data.x_test, data.y_test)
    assert acc >= 0.95, f"{cfg['model']} reached only {acc:.3f}"
