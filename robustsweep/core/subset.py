"""Seeded subsets of a split: the same points on every run of a trial."""
from __future__ import annotations

import torch


def seeded_subset(x: torch.Tensor, y: torch.Tensor, n_keep: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_keep`` examples drawn by ``seed`` (the same ones on every run), or all of them in order."""
    n = len(x)
    if n_keep is None or n_keep >= n:
        return x, y
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_keep]
    return x[idx], y[idx]
