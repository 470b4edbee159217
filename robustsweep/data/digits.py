"""scikit-learn's bundled 8x8 digits: a real image data set that needs no staging and loads in milliseconds.

Why: it lets the whole pipeline (train a generative classifier, attack it, detect) run in tests and on a laptop
without MNIST on disk.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..registry import DATASETS
from ._util import check_val_size, split_off_validation
from .base import DataSplit


@DATASETS.register("digits", shape=(1, 8, 8), classes=10, staged=False)
def digits(root: Path, seed: int, test_size: float = 0.2, val_size: int = 0,
           classes: list[int] | None = None) -> DataSplit:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), bundled, no download; stratified split by seed.

    ``val_size`` examples (a count) of the training part are held out, stratified, as validation (default none).
    ``classes`` keeps only those digits, relabelled 0, 1, ... in the order given (``[3, 8]``: a binary task, the ci
    stand-in for paper 001's CIFAR-binary).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"digits: test_size must be in (0, 1), got {test_size}")
    val_size = check_val_size("digits", val_size)
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]  # pixel counts 0..16 -> [0, 1], (N, 1, 8, 8)
    y = d.target.astype(np.int64)
    names = [str(i) for i in range(10)]
    if classes is not None:
        keep = list(classes)
        if len(keep) < 2 or len(set(keep)) != len(keep) or not all(isinstance(c, int) and 0 <= c <= 9 for c in keep):
            raise ValueError(f"digits: classes must be two or more distinct digits 0-9, got {classes!r}")
        sel = np.isin(y, keep)
        relabel = np.full(10, -1, dtype=np.int64)
        relabel[keep] = np.arange(len(keep))  # digit keep[i] -> label i
        x, y = x[sel], relabel[y[sel]]
        names = [str(c) for c in keep]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    xtr, ytr, xva, yva = split_off_validation(
        "digits", torch.from_numpy(np.ascontiguousarray(x_tr)), torch.from_numpy(y_tr), val_size, seed
    )
    return DataSplit(
        name="digits",
        x_train=xtr,
        y_train=ytr,
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(y_te),
        num_classes=len(names),
        class_names=names,
        x_val=xva,
        y_val=yva,
    )
