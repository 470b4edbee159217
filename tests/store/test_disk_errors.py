"""Issue 16, part 6: a full or read-only results folder is one clear error (exit 2) and leaves no partial file.

Real file systems where the machine allows it (a 64 KiB tmpfs, a read-only tmpfs: root only, skipped elsewhere);
a fault-injected writer everywhere.
"""
from __future__ import annotations

import errno
import os

import pytest

from robustsweep.store import atomic
from robustsweep.store.atomic import DiskError, atomic_write_bytes
from tests.runners.test_preflight import tmpfs


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_full_disk_leaves_old_file_and_no_partial(tmp_path):
    with tmpfs(tmp_path / "small", "size=64k") as small:
        dest = small / "sweep" / "trials" / "t.parquet"
        atomic_write_bytes(dest, b"old")
        with pytest.raises(DiskError) as e:
            atomic_write_bytes(dest, os.urandom(256 * 1024))
        assert "is full" in str(e.value) and str(dest.parent) in str(e.value) and e.value.exit_code == 2
        assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
        assert dest.read_bytes() == b"old" and names(dest.parent) == ["t.parquet"]  # no temp file left


def test_read_only_folder_is_one_clear_error(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        with pytest.raises(DiskError, match="is read-only"):
            atomic_write_bytes(ro / "x.json", b"{}")
        with pytest.raises(DiskError, match="is read-only"):
            atomic_write_bytes(ro / "sub" / "x.json", b"{}")  # creating the folder fails the same way
        assert names(ro) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "is full"), (errno.EDQUOT, "over its disk quota"),
                                         (errno.EROFS, "is read-only")])
def test_fault_injected_writer(tmp_path, monkeypatch, code, words):
    """Anywhere (no mount needed): the fsync of the temp file fails as a full / read-only disk would."""
    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    atomic_write_bytes(tmp_path / "t.parquet", b"old")
    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(DiskError, match=words):
        atomic_write_bytes(tmp_path / "t.parquet", b"new")
    assert (tmp_path / "t.parquet").read_bytes() == b"old" and names(tmp_path) == ["t.parquet"]


def test_other_errors_pass_through_unchanged(tmp_path, monkeypatch):
    """Only disk trouble is translated; a bug in the writer still shows as itself."""
    with pytest.raises(KeyError):
        with atomic.atomic_open(tmp_path / "x") as f:
            f.write(b"partial")
            raise KeyError("a bug while writing")
    assert names(tmp_path) == []

    def bad_fd(fd):
        raise OSError(errno.EBADF, "bad file descriptor")

    monkeypatch.setattr(atomic.os, "fsync", bad_fd)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(tmp_path / "y", b"1")
    assert not isinstance(e.value, DiskError) and names(tmp_path) == []
