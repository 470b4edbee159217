"""Seeded subsets of a split: the same points on every run of a trial."""
from __future__ import annotations

import torch


def seeded_indices(n: int, n_keep: int | None, seed: int) -> torch.Tensor:
    """Which of ``n`` points a seeded subset of ``n_keep`` holds, in its order (all of them in order for None or
    ``n_keep >= n``). Why the indices: the per-example outcomes name each attacked point by its index in the split."""
    if n_keep is None or n_keep >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_keep]


def seeded_subset(x: torch.Tensor, y: torch.Tensor, n_keep: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_keep`` examples drawn by ``seed`` (the same ones on every run), or all of them in order."""
    if n_keep is None or n_keep >= len(x):
        return x, y
    idx = seeded_indices(len(x), n_keep, seed)
    return x[idx], y[idx]
