"""Hand-staged image-folder data sets: Tiny-ImageNet (paper 000) and COIL-100.

Neither is downloadable through torchvision, so both must be unpacked under the data root in their standard
distribution layout; a missing folder fails at once with the layout in the message. Files are listed, the
seed-fixed subset is chosen on the *list*, and only then are the chosen images decoded (in parallel). ``val_size``
(a count, default 0) holds a stratified validation part out of the training images (see :mod:`._util`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from ._images import list_images, load_file_split
from ._util import check_val_size
from .base import DataSplit, not_staged

# ---------------------------------------------------------------------------------------------- Tiny-ImageNet

TINY_FOLDER = "tiny-imagenet-200"
TINY_LAYOUT = (
    "the unpacked tiny-imagenet-200.zip: {base}/wnids.txt, {base}/train/<wnid>/images/*.JPEG and "
    "{base}/val/images/*.JPEG with {base}/val/val_annotations.txt (file<TAB>wnid<TAB>box); words.txt is optional"
)


def _tiny_val(base: Path, class_to_idx: dict[str, int]) -> tuple[list[Path], np.ndarray]:
    """The labelled validation split (the official test split has no labels, so val serves as test)."""
    paths: list[Path] = []
    labels: list[int] = []
    for line in (base / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        fname, wnid = parts[0], parts[1]
        if wnid not in class_to_idx:
            raise ValueError(f"tiny-imagenet: {fname} in val_annotations.txt has wnid {wnid} not in wnids.txt")
        paths.append(base / "val" / "images" / fname)
        labels.append(class_to_idx[wnid])
    order = sorted(range(len(paths)), key=lambda i: paths[i].name)
    return [paths[i] for i in order], np.asarray(labels, dtype=np.int64)[order]


def _tiny_names(base: Path, wnids: list[str]) -> list[str]:
    words = base / "words.txt"
    if not words.is_file():
        return wnids
    table = dict(line.split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return [table.get(w, w).split(",")[0].strip() for w in wnids]


def _tiny_staged(root: Path, **opts: object) -> Exception | None:
    """Pre-flight hook (registry meta ``check_staged``): the staging error, or None, from ``stat`` calls only."""
    base = root / TINY_FOLDER
    needed = [base / "wnids.txt", base / "train", base / "val" / "images", base / "val" / "val_annotations.txt"]
    return not_staged("tiny-imagenet", root, TINY_LAYOUT.format(base=base)) if any(not p.exists() for p in needed) else None


@DATASETS.register("tiny-imagenet", shape=(3, "image_size", "image_size"), classes=200, staged=True,
                   check_staged=_tiny_staged)
def tiny_imagenet(root: Path, seed: int, image_size: int = 64, n_train: int | None = None,
                  n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """Tiny-ImageNet 200 classes, 64x64, from <root>/tiny-imagenet-200 (val split used as test; 100k/10k).

    The official val split is our *test* part; ``val_size`` (a count, default 0) holds our validation part out of
    the training images instead.
    """
    check_val_size("tiny-imagenet", val_size)
    base = root / TINY_FOLDER
    needed = [base / "wnids.txt", base / "train", base / "val" / "images", base / "val" / "val_annotations.txt"]
    if any(not p.exists() for p in needed):
        raise not_staged("tiny-imagenet", root, TINY_LAYOUT.format(base=base))
    wnids = sorted(w.strip() for w in (base / "wnids.txt").read_text().split() if w.strip())
    class_to_idx = {w: i for i, w in enumerate(wnids)}  # sorted, as torchvision's ImageFolder would number them
    train_paths, train_y = [], []
    for w, i in class_to_idx.items():
        files = list_images(base / "train" / w / "images") if (base / "train" / w / "images").is_dir() else []
        train_paths += files
        train_y += [i] * len(files)
    return load_file_split(
        "tiny-imagenet", (train_paths, np.asarray(train_y, dtype=np.int64)), _tiny_val(base, class_to_idx),
        seed=seed, n_train=n_train, n_test=n_test, image_size=image_size, num_classes=len(wnids),
        class_names=_tiny_names(base, wnids), val_size=val_size,
    )


# --------------------------------------------------------------------------------------------------- COIL-100

COIL_FOLDER = "coil-100"
COIL_NAME = re.compile(r"^obj(\d+)__(\d+)\.png$", re.IGNORECASE)


def _coil_files(folder: Path) -> tuple[list[Path], np.ndarray, list[int]]:
    """All ``obj<K>__<angle>.png`` files; label = rank of K among the objects present (K=1..100 -> 0..99)."""
    found: list[tuple[int, int, Path]] = []
    for p in list_images(folder):
        m = COIL_NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), p))
    found.sort()
    objects = sorted({k for k, _, _ in found})
    to_label = {k: i for i, k in enumerate(objects)}
    return [p for _, _, p in found], np.asarray([to_label[k] for k, _, _ in found], dtype=np.int64), objects


def _coil_staged(root: Path, **opts: object) -> Exception | None:
    """Pre-flight hook (registry meta ``check_staged``): the staging error, or None (lists the folder, reads nothing)."""
    folder = root / COIL_FOLDER
    if folder.is_dir() and any(COIL_NAME.match(p.name) for p in folder.iterdir()):
        return None
    return not_staged("coil-100", root, f"the folder {folder}/ with the 7200 files obj1__0.png ... obj100__355.png")


@DATASETS.register("coil-100", shape=(3, "image_size", "image_size"), classes=100, staged=True,
                   check_staged=_coil_staged)
def coil_100(root: Path, seed: int, image_size: int = 32, test_size: float = 0.2, n_train: int | None = None,
             n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """COIL-100 (100 objects x 72 views, 128x128) from <root>/coil-100, resized; stratified split by seed."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise ValueError(f"coil-100: test_size must be in (0, 1), got {test_size}")
    check_val_size("coil-100", val_size)
    folder = root / COIL_FOLDER
    what = f"the folder {folder}/ with the 7200 files obj1__0.png ... obj100__355.png (unpacked coil-100.zip)"
    if not folder.is_dir():
        raise not_staged("coil-100", root, what)
    paths, y, objects = _coil_files(folder)
    if not paths:
        raise not_staged("coil-100", root, what)
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    idx_tr, idx_te = np.sort(idx_tr), np.sort(idx_te)
    return load_file_split(
        "coil-100", ([paths[i] for i in idx_tr], y[idx_tr]), ([paths[i] for i in idx_te], y[idx_te]),
        seed=seed, n_train=n_train, n_test=n_test, image_size=image_size, num_classes=len(objects),
        class_names=[f"obj{k}" for k in objects], val_size=val_size,
    )
