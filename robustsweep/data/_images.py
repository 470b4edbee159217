"""Decode a list of image files into one uint8 array, in parallel.

Why: folder data sets (Tiny-ImageNet, COIL-100, Imagenette) have no pre-packed arrays, and a per-item
``Dataset.__getitem__`` loop through transforms is slow. Pillow releases the GIL while decoding and resizing, so a
thread pool filling a pre-allocated array is several times faster than a plain loop with no extra processes.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._util import TEST_STREAM, TRAIN_STREAM, check_val_fits, finish_split, stratified_subset
from .base import DataSplit

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp", ".tif", ".tiff")


def _load_one(path: Path, size: int | None) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        if size is not None and im.format == "JPEG":
            im.draft("RGB", (size, size))  # let libjpeg decode at 1/2, 1/4, 1/8 scale when that is still >= size
        im = im.convert("RGB")  # Tiny-ImageNet has some greyscale JPEGs; PNGs may carry alpha
        if size is not None and im.size != (size, size):
            # centre crop to a square, then resize (antialiased): keeps the aspect ratio of non-square photos
            im = ImageOps.fit(im, (size, size), method=Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def load_images(paths: Sequence[Path], size: int | None, workers: int | None = None) -> np.ndarray:
    """Images at ``paths`` as a uint8 array (N, H, W, 3). ``size=None`` keeps the native size (all must match)."""
    if not paths:
        raise ValueError("no image files to load")
    first = _load_one(paths[0], size)
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first

    def fill(i: int) -> None:
        a = _load_one(paths[i], size)
        if a.shape != first.shape:
            raise ValueError(
                f"{paths[i]} decodes to {a.shape}, but {paths[0]} to {first.shape}; pass image_size to resize them"
            )
        out[i] = a

    workers = workers or min(16, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, range(1, len(paths))))  # list() re-raises the first worker exception
    return out


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (so the order, and any seed-based split, is stable)."""
    with os.scandir(folder) as it:
        return sorted(
            (Path(e.path) for e in it if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)), key=lambda p: p.name
        )


def class_folder_samples(split_dir: Path, class_to_idx: dict[str, int]) -> tuple[list[Path], np.ndarray]:
    """(paths, labels) of ``split_dir/<class>/*.<image>``, ordered by class then file name."""
    paths: list[Path] = []
    labels: list[int] = []
    for cls, i in sorted(class_to_idx.items(), key=lambda kv: kv[1]):
        d = split_dir / cls
        if not d.is_dir():
            continue
        files = list_images(d)
        paths += files
        labels += [i] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def load_file_split(
    name: str, train: tuple[list[Path], np.ndarray], test: tuple[list[Path], np.ndarray], *, seed: int,
    n_train: int | None, n_test: int | None, image_size: int | None, num_classes: int, class_names: list[str] | None,
    val_size: int = 0,
) -> DataSplit:
    """Pick the stratified subsets on the *file list*, then decode only the chosen images; ``val_size`` of the
    training images are then held out as validation (see :mod:`._util`)."""
    n_train_part = len(train[1]) if n_train is None else min(n_train, len(train[1]))
    val_size = check_val_fits(name, val_size, n_train_part)  # before decoding anything

    def prep(paths: list[Path], y: np.ndarray, n: int | None, stream: int) -> tuple[np.ndarray, np.ndarray]:
        if not paths:
            raise ValueError(f"{name}: found no images for one of the splits")
        try:
            idx = stratified_subset(y, n, seed, stream)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        if idx is not None:
            paths, y = [paths[i] for i in idx], y[idx]
        return load_images(paths, image_size), y

    x_tr, y_tr = prep(*train, n_train, TRAIN_STREAM)
    x_te, y_te = prep(*test, n_test, TEST_STREAM)
    # subsets already taken: finish_split only converts and holds out the validation part
    return finish_split(name, x_tr, y_tr, x_te, y_te, seed=seed, n_train=None, n_test=None, num_classes=num_classes,
                        class_names=class_names, channels_last=True, val_size=val_size)
