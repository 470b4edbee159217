"""Helpers shared by the loaders: deterministic stratified subsets, uint8 -> [0, 1] floats, guarded downloads.

Why here: every loader offers ``n_train`` / ``n_test`` for quick sweeps, and they must all pick the *same* kind of
subset (class-balanced, fixed by the seed, nested in n) so results across data sets are comparable.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .base import DataNotStagedError, DataSplit, not_staged

# How long one network read may stall during an explicit ``download=True`` before we give up. torchvision's
# urlopen calls pass no timeout, so without this a compute node with a black-holed proxy would hang forever.
DOWNLOAD_SOCKET_TIMEOUT_S = 60.0


def stratified_subset(y: np.ndarray, n: int | None, seed: int, stream: int = 0) -> np.ndarray | None:
    """Indices of a class-proportional subset of size ``n`` (sorted), or ``None`` for "everything".

    Each class is shuffled by the seed; an element of rank r in a class of size m gets the key (r + u) / m with
    u ~ U(0, 1), and the n smallest keys win. So every class gets ~n * m / N members, the choice is fixed by
    ``(seed, stream)``, and the subset for a smaller n is contained in the one for a larger n (nested).
    ``stream`` separates e.g. the train and test draws of one seed.
    """
    if n is None:
        return None
    y = np.asarray(y)
    if n < 1:
        raise ValueError(f"subset size must be >= 1, got {n}")
    if n > len(y):
        raise ValueError(f"asked for a subset of {n} but only {len(y)} examples are available")
    rng = np.random.default_rng([seed, stream])
    keys = np.empty(len(y), dtype=np.float64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        m = len(idx)
        ranks = rng.permutation(m)
        keys[idx] = (ranks + rng.random(m)) / m
    chosen = np.argsort(keys, kind="stable")[:n]
    return np.sort(chosen)


def take(a, idx: np.ndarray | None):
    """``a[idx]`` for numpy arrays and tensors, or ``a`` itself when idx is None."""
    if idx is None:
        return a
    if isinstance(a, torch.Tensor):
        return a[torch.from_numpy(idx)]
    return a[idx]


def uint8_to_float01(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 array (any shape) -> float32 tensor in [0, 1], without a Python loop."""
    t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
    if t.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {t.dtype}")
    return t.to(torch.float32).div_(255.0)


def labels_tensor(y) -> torch.Tensor:
    return torch.as_tensor(np.asarray(y), dtype=torch.int64)


def missing(paths: list[Path]) -> list[Path]:
    """Which of ``paths`` do not exist (cheap stat calls only: the fail-fast check before anything slow)."""
    return [p for p in paths if not p.exists()]


def try_download(name: str, root: Path, what: str, fn: Callable[[], object]) -> None:
    """Run a torchvision download; any failure (no internet, proxy, bad checksum) becomes a DataNotStagedError.

    Only called when the user asked for ``download=True``. A socket timeout is set for the duration so a node
    without internet fails in about a minute instead of hanging.
    """
    root.mkdir(parents=True, exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT_S)
    try:
        fn()
    except DataNotStagedError:
        raise
    except Exception as e:  # noqa: BLE001 — urllib/ssl/tarfile/checksum errors all mean "not staged"
        err = not_staged(name, root, what)
        raise DataNotStagedError(f"{err}\n(download=True was tried and failed: {type(e).__name__}: {e})") from e
    finally:
        socket.setdefaulttimeout(old)


def finish_split(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    seed: int,
    n_train: int | None,
    n_test: int | None,
    num_classes: int,
    class_names: list[str] | None,
    channels_last: bool = False,
) -> DataSplit:
    """Subset (stratified, by seed), then uint8 -> float32 [0, 1], (N, C, H, W)."""

    def prep(x: np.ndarray, y: np.ndarray, n: int | None, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            idx = stratified_subset(y, n, seed, stream)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        x, y = take(x, idx), take(y, idx)
        t = uint8_to_float01(x)
        if t.ndim == 3:  # greyscale (N, H, W)
            t = t.unsqueeze(1)
        elif channels_last:
            t = t.permute(0, 3, 1, 2).contiguous()
        return t, labels_tensor(y)

    xtr, ytr = prep(x_train, y_train, n_train, 0)
    xte, yte = prep(x_test, y_test, n_test, 1)
    return DataSplit(name, xtr, ytr, xte, yte, num_classes=num_classes, class_names=class_names)
