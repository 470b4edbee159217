"""Atomic file writes, used by everything that persists state (result files, sweep.json, the model cache).

A reader must see either the old file or the whole new one, never a partial write, even if the writer is killed
(SIGKILL, node loss, pre-emption) mid-write. So: write a hidden temp file in the SAME folder (same file system),
fsync it, ``os.replace`` it over the destination (atomic on POSIX, and on NFS within one directory), then fsync the
folder so the rename itself survives a crash. Temp names start with '.', so ``*.parquet`` globs never match them.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from robustsweep.errors import ClusterError
from robustsweep.store.paths import ensure_inside

#: errors that mean "this folder cannot take the file" rather than a bug: told as one line, no traceback
DISK_ERRNOS = {errno.ENOSPC: "is full", errno.EDQUOT: "is over its disk quota", errno.EROFS: "is read-only",
               errno.EACCES: "is not writable (permission denied)", errno.EPERM: "is not writable (not permitted)"}


class DiskError(OSError, ClusterError):
    """The results (or cache) folder cannot take a file: full, over quota, read-only, not writable. Exit 2; no partial
    file is left (the temp file is removed, an existing destination keeps its old content). Still an ``OSError``, so
    code that handles I/O errors keeps handling it."""

    def __str__(self) -> str:
        return str(self.strerror)


def disk_error(e: OSError, folder: Path) -> OSError:
    """``e`` as a :class:`DiskError` with one actionable line when it is a disk problem, else ``e`` unchanged.
    pyarrow's I/O errors may carry no errno, only the C library's text: recognised by that text."""
    code = e.errno if e.errno in DISK_ERRNOS else next(
        (c for c in DISK_ERRNOS if os.strerror(c) in str(e)), None)
    if isinstance(e, DiskError) or code is None:
        return e
    return DiskError(code, f"cannot write in {folder}: the folder {DISK_ERRNOS[code]} ({os.strerror(code)}); free "
                           f"space or pick a writable --results / --cache-dir, then resume; no partial file was left")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # not possible on every file system
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_open(dest: str | Path, mode: str = "wb", *, inside: str | Path | None = None) -> Iterator[IO]:
    """``with atomic_open(p) as f: f.write(...)`` — ``p`` appears complete when the block exits, or not at all.

    ``inside``: the folder ``p`` must resolve into (:func:`robustsweep.store.paths.ensure_inside`), checked before
    anything is created. A full or read-only disk raises :class:`DiskError` (temp file removed, old ``p`` intact).
    """
    dest = Path(dest) if inside is None else ensure_inside(dest, inside, "file")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        raise disk_error(e, dest.parent) from e
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and (de := disk_error(e, dest.parent)) is not e:
            raise de from e
        raise
    _fsync_dir(dest.parent)


def atomic_write_bytes(dest: str | Path, data: bytes, *, inside: str | Path | None = None) -> None:
    with atomic_open(dest, "wb", inside=inside) as f:
        f.write(data)
