"""Tests for the data-set registry (robustsweep/data).

The positive tests write tiny fake data sets in the exact on-disk formats the real loaders read (idx files,
pickled CIFAR batches, SVHN .mat, JPEG/PNG folders) and check pixel-exact round trips, so they prove the readers
would work on a staged cluster folder, not only that they fail politely.
"""
from __future__ import annotations

import gzip
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import robustsweep.data as D
from robustsweep.data import DataNotStagedError, load_dataset
from robustsweep.data import torchvision_sets as tvs
from robustsweep.data._util import stratified_subset
from robustsweep.registry import DATASETS

STAGED = ["mnist", "fashion-mnist", "cifar10", "cifar100", "cifar-binary", "svhn", "imagenette", "tiny-imagenet",
          "coil-100"]


@pytest.fixture
def no_torchvision(monkeypatch):
    """Loaders must not import torchvision (slow; may touch the network) unless download=True."""

    def boom():
        raise AssertionError("torchvision imported although download=False")

    monkeypatch.setattr(tvs, "import_torchvision", boom)


# ------------------------------------------------------------------------------------------------ registry


def test_all_names_registered_with_help():
    names = DATASETS.names()
    for n in ["digits", "two-rings", *STAGED]:
        assert n in names
        assert DATASETS.get(n).help, n
    assert "root" not in DATASETS.settable_params("cifar10") and "seed" not in DATASETS.settable_params("cifar10")


def test_unknown_option_names_key_and_allowed():
    with pytest.raises(TypeError) as e:
        load_dataset("digits", tets_size=0.3)
    assert "tets_size" in str(e.value) and "test_size" in str(e.value)
    with pytest.raises(TypeError, match="n_trian.*allowed: download, n_train, n_test"):
        load_dataset("cifar10", root="/nonexistent", n_trian=10)
    with pytest.raises(KeyError, match="cifar-10"):
        load_dataset("cifar-10")


def test_default_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUSTSWEEP_DATA", str(tmp_path / "env"))
    assert D.default_data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert D.default_data_root() == tmp_path / "env"
    monkeypatch.delenv("ROBUSTSWEEP_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert D.default_data_root() == tmp_path / "home" / ".cache" / "robustsweep" / "data"


# ------------------------------------------------------------------------------------------------- digits


def test_digits_shape_range_dtype():
    t = time.perf_counter()
    d = load_dataset("digits", seed=0)
    load_dataset("digits", seed=1)
    assert time.perf_counter() - t < 5.0  # (first call includes importing scikit-learn)
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    both = torch.cat([d.x_train, d.x_test])
    assert both.min() == 0.0 and both.max() == 1.0
    assert d.num_classes == 10 and d.input_shape == (1, 8, 8)
    from sklearn.datasets import load_digits

    ref = load_digits()
    # the split is a partition of the whole set: same pixel mass, same label histogram
    assert both.sum().item() == pytest.approx(ref.images.sum() / 16.0, rel=1e-6)
    assert torch.bincount(torch.cat([d.y_train, d.y_test])).tolist() == np.bincount(ref.target).tolist()
    assert d.mean.shape == (1, 8, 8) and torch.allclose(d.mean, d.x_train.mean(0))


def test_digits_split_stratified_and_seeded():
    a, b, c = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    per_class = torch.bincount(torch.cat([a.y_train, a.y_test]), minlength=10)
    test_counts = torch.bincount(a.y_test, minlength=10)
    assert ((test_counts - 0.2 * per_class).abs() <= 1).all()
    d = load_dataset("digits", test_size=0.5)
    assert abs(len(d.y_test) - 1797 / 2) <= 1


# ----------------------------------------------------------------------------------------------- two rings


def test_two_rings_balance_and_distance_to_ring():
    raw = load_dataset("two-rings", seed=0, scale01=False)
    assert raw.x_train.shape == (2000, 2) and raw.x_test.shape == (2000, 2) and raw.num_classes == 2
    assert abs(raw.y_train.float().mean().item() - 0.5) < 0.05
    geo = D.two_rings_geometry(scale01=False)
    dist = geo.ring_distance(raw.x_train.numpy())  # (N, 2)
    own = dist[torch.arange(len(dist)), raw.y_train]
    # perpendicular offset of an isotropic Gaussian: E|N(0, s^2)| = s*sqrt(2/pi) ~ 0.8 s
    assert 0.65 * geo.sigma < own.mean().item() < 0.95 * geo.sigma
    other = dist[torch.arange(len(dist)), 1 - raw.y_train]
    assert (own < other).float().mean() > 0.8  # the rings only overlap near their two crossings
    # angles are uniform: the points cover all four quadrants around their centre about equally
    rel = raw.x_train.double() - torch.as_tensor(geo.centers)[raw.y_train]
    quad = (rel[:, 0] > 0).long() * 2 + (rel[:, 1] > 0).long()
    assert torch.bincount(quad, minlength=4).min() > 400


def test_two_rings_scale01_is_the_documented_affine_map():
    raw = load_dataset("two-rings", seed=3, scale01=False)
    unit = load_dataset("two-rings", seed=3)
    geo = D.two_rings_geometry()
    assert unit.x_train.min() >= 0 and unit.x_train.max() <= 1
    assert torch.equal(raw.y_train, unit.y_train)
    np.testing.assert_allclose(geo.to_raw(unit.x_train.numpy()), raw.x_train.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        geo.ring_distance(unit.x_train.numpy()).numpy(),
        geo.scale * D.two_rings_geometry(scale01=False).ring_distance(raw.x_train.numpy()).numpy(), atol=1e-5)
    assert geo.sigma == pytest.approx(0.1 * geo.scale)
    other_seed = load_dataset("two-rings", seed=4)
    assert not torch.equal(other_seed.x_train, unit.x_train)
    assert not torch.equal(unit.x_train, unit.x_test)  # train and test are different draws
    custom = load_dataset("two-rings", n_train=10, n_test=4, centers=[[0, 0], [3, 0]], radii=[1, 2], sigma=0.05,
                          scale01=False)
    assert custom.x_train.shape == (10, 2) and custom.x_test.shape == (4, 2)


# ------------------------------------------------------------------------------------------- not staged


@pytest.mark.parametrize(
    "name, layout",
    [
        ("mnist", "MNIST/raw/ with train-images-idx3-ubyte"),
        ("fashion-mnist", "FashionMNIST/raw/ with train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py/ with data_batch_1"),
        ("cifar100", "cifar-100-python/ with train, test"),
        ("cifar-binary", "cifar-10-batches-py/ with data_batch_1"),
        ("svhn", "svhn/ with train_32x32.mat, test_32x32.mat"),
        ("imagenette", "imagenette2-160/ with train/<wnid>/*.JPEG"),
        ("tiny-imagenet", "tiny-imagenet-200/train/<wnid>/images/*.JPEG"),
        ("coil-100", "coil-100/ with the 7200 files obj1__0.png"),
    ],
)
def test_missing_data_fails_fast_naming_root_and_layout(name, layout, tmp_path, no_torchvision):
    t = time.perf_counter()
    with pytest.raises(DataNotStagedError) as e:
        load_dataset(name, root=tmp_path)
    assert time.perf_counter() - t < 1.0
    msg = str(e.value)
    assert f"under {tmp_path} " in msg
    assert f"{tmp_path}/{layout}" in msg, msg
    assert isinstance(e.value, FileNotFoundError)


def test_failed_download_becomes_not_staged(tmp_path, monkeypatch):
    from urllib.error import URLError

    class FakeTV:
        class datasets:
            @staticmethod
            def CIFAR10(*a, **k):
                raise URLError("no route to host")

    monkeypatch.setattr(tvs, "import_torchvision", lambda: FakeTV)
    with pytest.raises(DataNotStagedError, match="download=True was tried.*no route to host"):
        load_dataset("cifar10", root=tmp_path, download=True)


def test_layout_constants_match_torchvision():
    """Our file names are torchvision 0.28's, so a folder filled by torchvision's download=True is found."""
    from robustsweep._tv_compat import import_torchvision

    tvd = import_torchvision().datasets
    assert tvd.CIFAR10.base_folder == tvs.CIFAR10_FOLDER
    assert [f for f, _ in tvd.CIFAR10.train_list] == tvs.CIFAR10_TRAIN
    assert [f for f, _ in tvd.CIFAR10.test_list] == tvs.CIFAR10_TEST
    assert tvd.CIFAR100.base_folder == tvs.CIFAR100_FOLDER
    assert [f for f, _ in tvd.CIFAR100.train_list + tvd.CIFAR100.test_list] == tvs.CIFAR100_TRAIN + tvs.CIFAR100_TEST
    for cls in (tvd.MNIST, tvd.FashionMNIST):
        assert sorted(f.removesuffix(".gz") for f, _ in cls.resources) == sorted(tvs.MNIST_STEMS)
    assert tvd.FashionMNIST.classes == tvs.FASHION_CLASSES
    assert {k: v[1] for k, v in tvd.SVHN.split_list.items() if k != "extra"} == tvs.SVHN_FILES
    archives = tvd.Imagenette._ARCHIVES
    assert {k: Path(url).stem for k, (url, _) in archives.items()} == tvs.IMAGENETTE_FOLDERS
    assert set(tvd.Imagenette._WNID_TO_CLASS) == set(tvs.IMAGENETTE_CLASSES)


# ------------------------------------------------------------------------------------- fake staged data sets


def _write_idx(path: Path, a: np.ndarray, gz: bool = False) -> None:
    blob = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob)
    path.write_bytes(blob)


@pytest.mark.parametrize("name, folder, gz", [("mnist", "MNIST", False), ("fashion-mnist", "FashionMNIST", True)])
def test_fake_mnist_idx(tmp_path, name, folder, gz, no_torchvision):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    xs = {"train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), "t10k": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)}
    ys = {"train": np.arange(30) % 10, "t10k": np.arange(12) % 10}
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", xs[split], gz)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", ys[split], gz)
    d = load_dataset(name, root=tmp_path)
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (12, 1, 28, 28)
    assert torch.equal(d.x_train[:, 0], torch.from_numpy(xs["train"]).float() / 255)
    assert d.y_test.tolist() == ys["t10k"].tolist() and d.y_train.dtype == torch.int64
    sub = load_dataset(name, root=tmp_path, n_train=10, n_test=5)
    assert torch.bincount(sub.y_train, minlength=10).tolist() == [1] * 10  # 3 per class -> 1 per class
    assert len(sub.y_test) == 5


def test_read_idx_rejects_bad_files(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="header"):
        tvs.read_idx(p)
    p.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="magic"):
        tvs.read_idx(p)


def _write_cifar(root: Path, hundred: bool, n_per_file: int = 20, seed: int = 0) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    folder = root / (tvs.CIFAR100_FOLDER if hundred else tvs.CIFAR10_FOLDER)
    folder.mkdir(parents=True)
    files = tvs.CIFAR100_TRAIN + tvs.CIFAR100_TEST if hundred else tvs.CIFAR10_TRAIN + tvs.CIFAR10_TEST
    k = 100 if hundred else 10
    out = {}
    for i, f in enumerate(files):
        x = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        y = [int(v) for v in (np.arange(n_per_file) + i) % k]
        entry = {"data": x, ("fine_labels" if hundred else "labels"): y, "batch_label": f}
        if hundred:
            entry["coarse_labels"] = [v // 5 for v in y]
        with open(folder / f, "wb") as fh:
            pickle.dump(entry, fh)
        out[f] = (x, np.asarray(y))
    meta = {"fine_label_names": [f"c{i}" for i in range(100)]} if hundred else {"label_names": [f"n{i}" for i in range(10)]}
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as fh:
        pickle.dump(meta, fh)
    return out


def test_fake_cifar10_pickled_batches(tmp_path, no_torchvision):
    parts = _write_cifar(tmp_path, hundred=False)
    d = load_dataset("cifar10", root=tmp_path)
    assert d.x_train.shape == (100, 3, 32, 32) and d.x_test.shape == (20, 3, 32, 32)
    x1, y1 = parts["data_batch_2"]
    # rows are stored channel-major: R plane (1024), G plane, B plane
    assert torch.equal(d.x_train[20:40], torch.from_numpy(x1.reshape(-1, 3, 32, 32)).float() / 255)
    assert d.x_train[20, 1, 0, 0].item() == pytest.approx(x1[0, 1024] / 255)
    assert d.y_train[20:40].tolist() == y1.tolist()
    assert d.class_names == [f"n{i}" for i in range(10)] and d.num_classes == 10
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1 and d.x_train.dtype == torch.float32


def test_fake_cifar_subsets_stratified_seeded_nested(tmp_path, monkeypatch, no_torchvision):
    _write_cifar(tmp_path, hundred=False)
    monkeypatch.setenv("ROBUSTSWEEP_DATA", str(tmp_path))  # root from the environment
    a = load_dataset("cifar10", seed=0, n_train=50, n_test=10)
    b = load_dataset("cifar10", seed=0, n_train=50, n_test=10)
    c = load_dataset("cifar10", seed=1, n_train=50, n_test=10)
    assert torch.bincount(a.y_train, minlength=10).tolist() == [5] * 10
    assert torch.bincount(a.y_test, minlength=10).tolist() == [1] * 10
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    small = load_dataset("cifar10", seed=0, n_train=20)
    rows = {tuple(r.tolist()) for r in a.x_train.flatten(1)[:, :8]}
    assert all(tuple(r.tolist()) in rows for r in small.x_train.flatten(1)[:, :8])  # nested in n
    with pytest.raises(ValueError, match="only 100"):
        load_dataset("cifar10", n_train=101)


def test_stratified_subset_proportional():
    y = np.array([0] * 80 + [1] * 20)
    idx = stratified_subset(y, 10, seed=0)
    assert np.bincount(y[idx]).tolist() == [8, 2] and len(set(idx)) == 10
    assert stratified_subset(y, None, seed=0) is None
    assert not np.array_equal(idx, stratified_subset(y, 10, seed=0, stream=1))


def test_fake_cifar_binary_relabels_airplane_frog(tmp_path, no_torchvision):
    parts = _write_cifar(tmp_path, hundred=False)
    d = load_dataset("cifar-binary", root=tmp_path)
    x_te, y_te = parts["test_batch"]
    keep = np.isin(y_te, [0, 6])
    assert d.num_classes == 2 and d.class_names == ["n0", "n6"]
    assert d.y_test.tolist() == (y_te[keep] == 6).astype(int).tolist()
    assert torch.equal(d.x_test, torch.from_numpy(x_te[keep].reshape(-1, 3, 32, 32)).float() / 255)
    assert len(d.y_train) == 20 and set(d.y_train.tolist()) == {0, 1}


def test_fake_cifar100(tmp_path, no_torchvision):
    parts = _write_cifar(tmp_path, hundred=True, n_per_file=200)
    d = load_dataset("cifar100", root=tmp_path)
    assert d.num_classes == 100 and d.x_train.shape == (200, 3, 32, 32) and d.class_names[3] == "c3"
    assert d.y_test.tolist() == parts["test"][1].tolist()  # fine labels, not coarse


def test_fake_svhn_mat(tmp_path, no_torchvision):
    import scipy.io

    rng = np.random.default_rng(0)
    folder = tmp_path / "svhn"
    folder.mkdir()
    X = rng.integers(0, 256, (32, 32, 3, 15), dtype=np.uint8)
    y = (np.arange(15) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # SVHN labels 1..10, 10 = digit 0
    scipy.io.savemat(folder / "train_32x32.mat", {"X": X, "y": y})
    scipy.io.savemat(folder / "test_32x32.mat", {"X": X[..., :5], "y": y[:5]})
    d = load_dataset("svhn", root=tmp_path)
    assert d.x_train.shape == (15, 3, 32, 32) and d.x_test.shape == (5, 3, 32, 32)
    assert d.x_train[4, 2, 7, 9].item() == pytest.approx(X[7, 9, 2, 4] / 255)  # (H, W, C, N) -> (N, C, H, W)
    assert d.y_train.tolist() == [int(v) % 10 for v in y.ravel()]
    assert 0 in d.y_train.tolist() and 10 not in d.y_train.tolist()


COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def _solid(path: Path, size: tuple[int, int], rgb, mode: str = "RGB") -> None:
    from PIL import Image

    im = Image.new("RGB", size, rgb)
    (im.convert("L") if mode == "L" else im).save(path)


def _check_colours(d, split: str, tol: float) -> None:
    x, y = getattr(d, f"x_{split}"), getattr(d, f"y_{split}")
    centre = x[:, :, x.shape[2] // 2, x.shape[3] // 2]  # (N, 3)
    expect = torch.tensor([COLOURS[int(c)] for c in y], dtype=torch.float32) / 255
    assert (centre - expect).abs().max() < tol


def test_fake_imagenette_jpeg_folders(tmp_path, no_torchvision):
    wnids = sorted(tvs.IMAGENETTE_CLASSES)[:3]
    for split, n in (("train", 4), ("val", 2)):
        for w, rgb in zip(wnids, COLOURS):
            (tmp_path / "imagenette2-160" / split / w).mkdir(parents=True)
            for i in range(n):
                _solid(tmp_path / "imagenette2-160" / split / w / f"{w}_{i}.JPEG", (213, 160), rgb)  # not square
    d = load_dataset("imagenette", root=tmp_path, image_size=24)
    assert d.x_train.shape == (12, 3, 24, 24) and d.x_test.shape == (6, 3, 24, 24)
    assert d.class_names == [tvs.IMAGENETTE_CLASSES[w] for w in wnids]
    _check_colours(d, "train", tol=0.05)
    _check_colours(d, "test", tol=0.05)
    with pytest.raises(ValueError, match="size must be one of"):
        load_dataset("imagenette", root=tmp_path, size="64px")


def test_fake_tiny_imagenet(tmp_path, no_torchvision):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n03", "n01", "n02"]  # wnids.txt is not sorted in the real archive
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tshark\nn03\tray\n")
    for w in wnids:
        (base / "train" / w / "images").mkdir(parents=True)
        rgb = COLOURS[sorted(wnids).index(w)]
        for i in range(3):
            _solid(base / "train" / w / "images" / f"{w}_{i}.JPEG", (64, 64), rgb)
    lines = []
    for j, w in enumerate(wnids * 2):
        _solid(base / "val" / "images" / f"val_{j}.JPEG", (64, 64), COLOURS[sorted(wnids).index(w)])
        lines.append(f"val_{j}.JPEG\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    # a greyscale JPEG (the real set has some): must come back as 3 equal channels
    _solid(base / "train" / "n01" / "images" / "n01_grey.JPEG", (64, 64), (200, 200, 200), mode="L")
    d = load_dataset("tiny-imagenet", root=tmp_path)
    assert d.x_train.shape == (10, 3, 64, 64) and d.x_test.shape == (6, 3, 64, 64)
    assert d.num_classes == 3 and d.class_names == ["goldfish", "shark", "ray"]
    centre = d.x_train[:, :, 32, 32]
    is_grey = (centre - 200 / 255).abs().max(dim=1).values < 0.02  # R = G = B = 200
    assert is_grey.sum() == 1 and d.y_train[is_grey].item() == 0
    expect = torch.tensor([COLOURS[int(c)] for c in d.y_train[~is_grey]], dtype=torch.float32) / 255
    assert (centre[~is_grey] - expect).abs().max() < 0.05
    _check_colours(d, "test", tol=0.05)
    assert load_dataset("tiny-imagenet", root=tmp_path, image_size=32).x_test.shape == (6, 3, 32, 32)


def test_fake_coil100_pngs(tmp_path, no_torchvision):
    from PIL import Image

    folder = tmp_path / "coil-100"
    folder.mkdir()
    for k in (1, 2, 3, 4):
        for view, angle in enumerate(range(0, 360, 36)):  # 10 views per object
            im = Image.new("RGB", (128, 128), COLOURS[k - 1])
            im.paste((view * 20, 7, 7), (0, 0, 4, 4))  # tag the view in a corner, to identify files below
            im.save(folder / f"obj{k}__{angle}.png")
    (folder / "convertGroupppm.pl").write_text("# shipped with the archive; ignored\n")
    d = load_dataset("coil-100", root=tmp_path, seed=0)
    assert d.x_train.shape == (32, 3, 32, 32) and d.x_test.shape == (8, 3, 32, 32)
    assert d.num_classes == 4 and d.class_names == ["obj1", "obj2", "obj3", "obj4"]
    assert torch.bincount(d.y_test, minlength=4).tolist() == [2, 2, 2, 2]
    _check_colours(d, "train", tol=1e-6)  # PNG is lossless
    _check_colours(d, "test", tol=1e-6)
    assert torch.equal(d.x_train, load_dataset("coil-100", root=tmp_path, seed=0).x_train)
    assert load_dataset("coil-100", root=tmp_path, image_size=16).x_train.shape[-1] == 16

    def test_files(seed: int) -> set[tuple[int, int]]:
        n = load_dataset("coil-100", root=tmp_path, seed=seed, image_size=128)  # native size: corner tag exact
        assert n.x_test.shape == (8, 3, 128, 128)
        return {(int(y), round(float(x[0, 0, 0]) * 255 / 20)) for x, y in zip(n.x_test, n.y_test)}

    a, b = test_files(0), test_files(1)
    assert len(a) == 8 and a != b  # the split depends on the seed, and never repeats a file
    with pytest.raises(ValueError, match="only 32"):
        load_dataset("coil-100", root=tmp_path, n_train=33)


def test_digits_classes_keeps_and_relabels_in_the_given_order():
    """``classes: [8, 3]`` keeps the 8s and 3s only, labelled 0 and 1 in that order; each image is an original one."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_dataset("digits", seed=0, classes=[8, 3])
    assert d.num_classes == 2 and d.class_names == ["8", "3"]
    raw = load_digits()
    by_bytes = {(raw.images[i] / 16.0).astype(np.float32).tobytes(): int(raw.target[i]) for i in range(len(raw.images))}
    for x, y in zip(torch.cat([d.x_train, d.x_test]), torch.cat([d.y_train, d.y_test])):
        assert by_bytes[x[0].numpy().tobytes()] == [8, 3][int(y)]
    assert len(d.x_train) + len(d.x_test) == int(np.isin(raw.target, [3, 8]).sum())
    with pytest.raises(ValueError, match="classes"):
        load_dataset("digits", seed=0, classes=[3, 3])
