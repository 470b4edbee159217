"""Atomic file writes, used by everything that persists state (result files, sweep.json, the model cache).

A reader must see either the old file or the whole new one, never a partial write, even if the writer is killed
(SIGKILL, node loss, pre-emption) mid-write. So: write a hidden temp file in the SAME folder (same file system),
fsync it, ``os.replace`` it over the destination (atomic on POSIX, and on NFS within one directory), then fsync the
folder so the rename itself survives a crash. Temp names start with '.', so ``*.parquet`` globs never match them.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


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
def atomic_open(dest: str | Path, mode: str = "wb") -> Iterator[IO]:
    """``with atomic_open(p) as f: f.write(...)`` — ``p`` appears complete when the block exits, or not at all."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(dest.parent)


def atomic_write_bytes(dest: str | Path, data: bytes) -> None:
    with atomic_open(dest, "wb") as f:
        f.write(data)
