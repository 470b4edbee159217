"""Helpers shared by the loaders: deterministic stratified subsets, validation hold-outs, uint8 -> [0, 1] floats,
guarded downloads.

Why here: every loader offers ``n_train`` / ``n_test`` for quick sweeps and ``val_size`` for a validation split, and
they must all pick the *same* kind of subset (class-balanced, fixed by the seed, nested in n) so results across data
sets are comparable.

``val_size`` convention (all loaders): a *count* of examples, not a fraction, held out of the training part the
loader would return with ``val_size=0`` (after any ``n_train`` subset; never out of the test part). So
train(val_size=k) + val(val_size=k) is exactly train(val_size=0) as a set, the test part never changes with
``val_size``, and ``val_size=0`` (the default everywhere except ``mnist5k``) returns bit-for-bit the tensors of the
loaders before validation splits existed. A count rather than a fraction: calibration (detector thresholds, Table-1
style evaluations) needs a known number of examples, it matches ``n_train`` / ``n_test``, and it means the same
thing whatever the size of the training part.
"""
from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .base import DataNotStagedError, DataSplit, not_staged

# How long one network read may stall during an explicit ``download=True`` before we give up. torchvision's
# urlopen calls pass no timeout, so without this a compute node with a black-holed proxy would hang forever.
DOWNLOAD_SOCKET_TIMEOUT_S = 60.0

# Random streams of one seed: 0 = the n_train subset, 1 = the n_test subset (or mnist5k's test hold-out),
# 2 = the validation hold-out. Separate streams keep the three draws independent of each other.
TRAIN_STREAM, TEST_STREAM, VAL_STREAM = 0, 1, 2


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


def stratified_holdout(y: np.ndarray, n: int, seed: int, stream: int) -> np.ndarray:
    """Sorted indices of ``n`` examples whose class counts are the exact quotas ``n * m_c / N`` rounded.

    Unlike :func:`stratified_subset` (whose counts can miss a quota by a little more than 1), every class c of size
    ``m_c`` gives ``floor`` or ``ceil`` of ``n * m_c / N`` rows: the floors first, then the ``n - sum(floors)``
    left-over rows to the classes with the largest fractional parts (largest-remainder rounding; ties broken by the
    seed). Which rows of a class are taken is a seed-fixed permutation of that class. Used for hold-outs
    (validation; mnist5k's test part), where calibration wants the class balance exact.
    """
    y = np.asarray(y)
    if not 1 <= n <= len(y):
        raise ValueError(f"hold-out size must be in [1, {len(y)}], got {n}")
    rng = np.random.default_rng([seed, stream])
    classes, counts = np.unique(y, return_counts=True)
    quota = n * counts / len(y)
    take_n = np.floor(quota).astype(np.int64)
    left = n - int(take_n.sum())
    if left:
        # largest fractional part first; random tie-break (lexsort: last key is the primary one)
        order = np.lexsort((rng.random(len(classes)), -(quota - take_n)))
        take_n[order[:left]] += 1
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take_n)]
    return np.sort(np.concatenate(chosen))


def check_size(name: str, option: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum``; a ValueError naming ``name`` and ``option`` otherwise.

    A whole-number float (``500.0``, as YAML or a ``--set`` may give) is accepted; a fractional one is refused
    because sizes here are counts of examples, not fractions. Called before any data is read, so a typo fails fast.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: {option} must be a whole number of examples, got {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ValueError(
            f"{name}: {option} is a number of examples, not a fraction; got {value!r} (e.g. {option}=500)"
        )
    n = int(value)
    if n < minimum:
        raise ValueError(f"{name}: {option} must be >= {minimum}, got {n}")
    return n


def check_val_size(name: str, val_size: object) -> int:
    """Validate the ``val_size`` option (a count >= 0); see the module docstring for what it means."""
    return check_size(name, "val_size", val_size, minimum=0)


def check_val_fits(name: str, val_size: object, n_train_part: int) -> int:
    """:func:`check_val_size`, and that ``val_size`` leaves at least one of the ``n_train_part`` training examples."""
    val_size = check_val_size(name, val_size)
    if val_size > 0 and val_size >= n_train_part:
        raise ValueError(
            f"{name}: val_size={val_size} is too large: it is held out of the training part, which has only "
            f"{n_train_part} examples here (val_size must be < {n_train_part} so that some training data remain)"
        )
    return val_size


def split_off_validation(
    name: str, x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hold ``val_size`` examples of the training tensors out as validation: ``(x_train, y_train, x_val, y_val)``.

    The validation rows are :func:`stratified_holdout` of ``y`` on its own random stream: every class of ``m``
    rows gives ``val_size * m / N`` of them rounded down or up, the choice is fixed by the seed, and both parts keep
    the rows' original order. ``val_size=0`` returns ``x`` and ``y`` themselves plus empty
    validation tensors, so the training data are untouched.
    """
    val_size = check_val_fits(name, val_size, len(y))
    if val_size == 0:
        return x, y, x.new_zeros((0, *x.shape[1:])), torch.zeros(0, dtype=torch.int64)
    n = len(y)
    val_idx = stratified_holdout(y.numpy(), val_size, seed, VAL_STREAM)
    keep = np.ones(n, dtype=bool)
    keep[val_idx] = False
    train_idx = np.flatnonzero(keep)
    return take(x, train_idx), take(y, train_idx), take(x, val_idx), take(y, val_idx)


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
    except Exception as e:  # urllib/ssl/tarfile/checksum errors all mean "not staged"
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
    val_size: int = 0,
) -> DataSplit:
    """Subset (stratified, by seed), then uint8 -> float32 [0, 1], (N, C, H, W); then hold ``val_size`` training
    examples out as validation (:func:`split_off_validation`)."""
    val_size = check_val_fits(name, val_size, len(y_train) if n_train is None else min(n_train, len(y_train)))

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

    xtr, ytr = prep(x_train, y_train, n_train, TRAIN_STREAM)
    xte, yte = prep(x_test, y_test, n_test, TEST_STREAM)
    xtr, ytr, xva, yva = split_off_validation(name, xtr, ytr, val_size, seed)
    return DataSplit(name, xtr, ytr, xte, yte, num_classes=num_classes, class_names=class_names, x_val=xva, y_val=yva)
