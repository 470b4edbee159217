"""Tests for the validation split every data set offers (``DataSplit.x_val`` / ``y_val``, loader option ``val_size``).

Contract (robustsweep/data/_util.py): ``val_size`` is a count held out of the training part that ``val_size=0``
returns; ``val_size=0`` (the default) gives bit-for-bit the old train/test tensors; the test part never changes; the
hold-out is stratified (every class within +-1 of its exact share) and fixed by the seed.
"""
from __future__ import annotations

import struct
import typing
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from robustsweep.data import DataSplit, load_dataset
from robustsweep.data import torchvision_sets as tvs
from robustsweep.data._util import split_off_validation, stratified_holdout
from robustsweep.registry import DATASETS

# (name, extra options): the two bundled/synthetic sets the brief names, plus two-rings in raw coordinates
CASES = [("digits", {}), ("digits", {"test_size": 0.3}), ("two-rings", {}), ("two-rings", {"scale01": False,
                                                                                           "n_train": 500})]
IDS = ["digits", "digits-test0.3", "two-rings", "two-rings-raw-500"]


def _rows(x: torch.Tensor, y: torch.Tensor) -> list[bytes]:
    """One exact, hashable key per example (float32 bytes plus label), for multiset bookkeeping."""
    xb = x.flatten(1).contiguous().numpy()
    return [r.tobytes() + int(c).to_bytes(2, "little") for r, c in zip(xb, y.tolist())]


def _is_subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    it = iter(whole)
    return all(any(k == w for w in it) for k in part)


# --------------------------------------------------------------------------------------------------- DataSplit


def test_datasplit_defaults_to_an_empty_validation_part():
    d = DataSplit("t", torch.zeros(4, 3, 5, 5), torch.zeros(4, dtype=torch.int64), torch.zeros(2, 3, 5, 5),
                  torch.zeros(2, dtype=torch.int64), num_classes=2)
    assert d.x_val.shape == (0, 3, 5, 5) and d.x_val.dtype == torch.float32
    assert d.y_val.shape == (0,) and d.y_val.dtype == torch.int64
    assert d.n_val == 0 and d.input_shape == (3, 5, 5) and d.mean.shape == (3, 5, 5)


def test_datasplit_checks_the_validation_part():
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64)
    ok = DataSplit("t", x, y, x, y, 2, None, torch.ones(3, 2), torch.ones(3, dtype=torch.int64))
    assert ok.n_val == 3
    with pytest.raises(ValueError, match="both x_val and y_val"):
        DataSplit("t", x, y, x, y, 2, x_val=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="validation inputs and labels differ"):
        DataSplit("t", x, y, x, y, 2, x_val=torch.zeros(2, 2), y_val=torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="x_val has input shape"):
        DataSplit("t", x, y, x, y, 2, x_val=torch.zeros(2, 3), y_val=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="x_val must be float32"):
        DataSplit("t", x, y, x, y, 2, x_val=torch.zeros(2, 2, dtype=torch.float64),
                  y_val=torch.zeros(2, dtype=torch.int64))


# ------------------------------------------------------------------------------------------ every loader has it


def test_every_loader_has_a_typed_val_size_option():
    for name in DATASETS.names():
        params = DATASETS.settable_params(name)
        assert "val_size" in params, name
        assert typing.get_type_hints(DATASETS.get(name).fn)["val_size"] is int, name
        assert params["val_size"].default == (500 if name == "mnist5k" else 0), name


# ------------------------------------------------------------------------------------------- digits, two-rings


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
def test_val_size_zero_is_todays_split(name, opts):
    old = load_dataset(name, seed=0, **opts)
    zero = load_dataset(name, seed=0, val_size=0, **opts)
    for a in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(old, a), getattr(zero, a)), a
        assert getattr(old, a).dtype == getattr(zero, a).dtype
    assert old.n_val == 0 and zero.n_val == 0
    assert old.x_val.shape == (0, *old.input_shape) and old.y_val.dtype == torch.int64


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
@pytest.mark.parametrize("seed", [0, 5])
def test_val_is_a_stratified_part_of_the_old_training_part(name, opts, seed):
    old = load_dataset(name, seed=seed, **opts)
    n_old = len(old.y_train)
    k = n_old // 5 + 3  # not a round share, so the per-class quotas have fractional parts
    new = load_dataset(name, seed=seed, val_size=k, **opts)
    # test part untouched
    assert torch.equal(new.x_test, old.x_test) and torch.equal(new.y_test, old.y_test)
    # sizes
    assert new.n_val == k and len(new.x_val) == k and len(new.y_train) == n_old - k == len(new.x_train)
    assert new.x_val.shape[1:] == old.x_train.shape[1:] and new.x_val.dtype == torch.float32
    assert new.y_val.dtype == torch.int64 and new.input_shape == old.input_shape
    # train + val is exactly the old training part (as a multiset of rows): val comes from it only, and no
    # example is in both parts; the training rows keep their old order
    old_rows, tr_rows, val_rows = _rows(old.x_train, old.y_train), _rows(new.x_train, new.y_train), _rows(
        new.x_val, new.y_val)
    assert Counter(tr_rows) + Counter(val_rows) == Counter(old_rows)
    singles = {r for r, c in Counter(old_rows).items() if c == 1}
    assert not (set(tr_rows) & set(val_rows) & singles)
    assert _is_subsequence(tr_rows, old_rows) and _is_subsequence(val_rows, old_rows)
    # stratified: each class within +-1 of its exact share of the old training part
    counts_old = torch.bincount(old.y_train, minlength=old.num_classes).double()
    counts_val = torch.bincount(new.y_val, minlength=old.num_classes).double()
    assert ((counts_val - k * counts_old / n_old).abs() <= 1).all(), (counts_val, k * counts_old / n_old)
    assert (counts_val > 0).all()


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
def test_val_split_is_seeded(name, opts):
    k = 100
    a, b = load_dataset(name, seed=2, val_size=k, **opts), load_dataset(name, seed=2, val_size=k, **opts)
    for attr in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, attr), getattr(b, attr)), attr
    c = load_dataset(name, seed=3, val_size=k, **opts)
    assert not torch.equal(a.x_val, c.x_val)


def test_digits_val_choice_depends_on_seed_beyond_the_train_test_split():
    """Same training part, different seeds would still hold out different rows: the hold-out has its own stream."""
    from robustsweep.data._util import VAL_STREAM

    y = load_dataset("digits", seed=0).y_train.numpy()
    assert not np.array_equal(stratified_holdout(y, 100, 0, VAL_STREAM), stratified_holdout(y, 100, 1, VAL_STREAM))


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
@pytest.mark.parametrize("bad", [-1, 0.25, 1.5, float("nan"), "10", True, None, 10**9, "all"])
def test_bad_val_size_raises_naming_the_option(name, opts, bad):
    with pytest.raises(ValueError, match="val_size"):
        load_dataset(name, val_size=bad, **opts)


@pytest.mark.parametrize("name, opts", CASES, ids=IDS)
def test_val_size_limits(name, opts):
    n = len(load_dataset(name, seed=0, **opts).y_train)
    with pytest.raises(ValueError, match=f"val_size={n} is too large.*only {n}"):
        load_dataset(name, val_size=n, **opts)
    edge = load_dataset(name, val_size=n - 1, **opts)  # one training example left is still allowed
    assert len(edge.y_train) == 1 and edge.n_val == n - 1
    whole = load_dataset(name, val_size=float(20), **opts)  # a whole-number float (YAML 20.0) is a count
    assert whole.n_val == 20


# ------------------------------------------------------------------------------- staged loaders (fake files)


@pytest.fixture
def no_torchvision(monkeypatch):
    def boom():
        raise AssertionError("torchvision imported although download=False")

    monkeypatch.setattr(tvs, "import_torchvision", boom)


def _write_idx(path: Path, a: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes())


def test_fake_mnist_val_size_with_n_train(tmp_path, no_torchvision):
    """Staged loaders go through finish_split: val is carved out of the n_train subset, test stays the same."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 60), ("t10k", 20)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    old = load_dataset("mnist", root=tmp_path, n_train=40)
    new = load_dataset("mnist", root=tmp_path, n_train=40, val_size=10)
    assert torch.equal(old.x_test, new.x_test) and torch.equal(old.y_test, new.y_test)
    assert torch.bincount(new.y_val, minlength=10).tolist() == [1] * 10
    assert len(new.y_train) == 30 and new.x_val.shape == (10, 1, 28, 28)
    assert Counter(_rows(new.x_train, new.y_train)) + Counter(_rows(new.x_val, new.y_val)) == Counter(
        _rows(old.x_train, old.y_train))
    with pytest.raises(ValueError, match="val_size=40 is too large"):
        load_dataset("mnist", root=tmp_path, n_train=40, val_size=40)
    with pytest.raises(ValueError, match="val_size"):  # bad values fail before any file is read
        load_dataset("mnist", root=tmp_path / "nothing-here", val_size=-3)


def test_fake_coil100_val_size(tmp_path):
    """Folder loaders go through load_file_split: same contract."""
    from PIL import Image

    folder = tmp_path / "coil-100"
    folder.mkdir()
    for k in (1, 2, 3, 4):
        for view, angle in enumerate(range(0, 360, 36)):
            Image.new("RGB", (16, 16), (60 * k, view * 20, 7)).save(folder / f"obj{k}__{angle}.png")
    old = load_dataset("coil-100", root=tmp_path, seed=0, image_size=16)
    new = load_dataset("coil-100", root=tmp_path, seed=0, image_size=16, val_size=8)
    assert torch.equal(old.x_test, new.x_test)
    assert torch.bincount(new.y_val, minlength=4).tolist() == [2, 2, 2, 2] and len(new.y_train) == 24
    assert Counter(_rows(new.x_train, new.y_train)) + Counter(_rows(new.x_val, new.y_val)) == Counter(
        _rows(old.x_train, old.y_train))
    with pytest.raises(ValueError, match="coil-100: val_size=32 is too large"):
        load_dataset("coil-100", root=tmp_path, image_size=16, val_size=32)


# ------------------------------------------------------------------------------------------------- helpers


def test_stratified_holdout_quotas_are_exact_within_one():
    rng = np.random.default_rng(0)
    for trial in range(40):
        k = int(rng.integers(2, 12))
        y = rng.integers(0, k, size=int(rng.integers(k, 400)))
        n = int(rng.integers(1, len(y) + 1))
        idx = stratified_holdout(y, n, seed=trial, stream=2)
        assert len(idx) == n and len(np.unique(idx)) == n and np.all(np.diff(idx) > 0)
        counts, total = np.bincount(y[idx], minlength=k), np.bincount(y, minlength=k)
        assert np.all(np.abs(counts - n * total / len(y)) < 1)


def test_split_off_validation_zero_returns_the_same_tensors():
    x, y = torch.rand(10, 3), torch.arange(10) % 2
    xt, yt, xv, yv = split_off_validation("t", x, y, 0, seed=0)
    assert xt is x and yt is y and xv.shape == (0, 3) and yv.shape == (0,) and yv.dtype == torch.int64
