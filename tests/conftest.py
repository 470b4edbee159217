"""Shared fixtures. Tests run on CPU with few threads so the suite fits 2 cores."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
torch.set_num_threads(1)  # tiny models gain nothing from more; avoids OpenMP spin under load

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def digits():
    from robustsweep.data import load_dataset

    return load_dataset("digits", seed=0)
