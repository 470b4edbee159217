"""The two directory listings a store snapshot is made of, kept cheap for 100,000 trials (``status`` reads nothing
else): the trial files (names and inodes, one ``os.scandir`` of ``trials/``) and the index entries (names only, one
``os.listdir`` of ``index/``). No Parquet file is opened and no per-trial ``Path`` is built until one is needed."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path


class TrialFiles(Mapping[str, Path]):
    """trial id -> its own file ``<folder>/<id>.parquet``, the Path built when asked for (building one per trial was
    most of ``trial_status`` at 100,000 trials, which opens none of them). Iterates in the order ids were added."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._ids: dict[str, None] = {}  # an ordered set

    def __getitem__(self, tid: str) -> Path:
        if tid not in self._ids:
            raise KeyError(tid)
        return self.folder / f"{tid}.parquet"

    def __contains__(self, tid: object) -> bool:
        return tid in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, tid: str) -> None:
        self._ids[tid] = None

    def pop(self, tid: str) -> Path:  # type: ignore[override]
        path = self[tid]
        del self._ids[tid]
        return path


def trial_listing(folder: Path, part_prefix: str) -> dict[str, int]:
    """trial id -> inode of every ``<id>.parquet`` in ``folder`` (not hidden temp files, not compacted parts)."""
    try:
        with os.scandir(folder) as it:
            return {e.name[:-8]: e.inode() for e in it
                    if e.name.endswith(".parquet") and not e.name.startswith((".", part_prefix))}
    except FileNotFoundError:
        return {}


def index_entries(folder: Path) -> dict[str, tuple[str, str] | None]:
    """``"<trial_id>.<inode>"`` -> (schema id, status) of every index entry ``<trial_id>.<inode>.<schema>.<status>``
    in ``folder``. Other names (schema files, temp files) give keys that no ``<trial_id>.<inode>`` of a listed trial
    file matches.

    None where two entries of one key disagree: a trial file was deleted and its rerun's file got the freed inode
    (ext4 reuses them), so the old file's entry still names the new file. Neither can be trusted (an ``ok`` entry
    over a failed rerun would make ``resume`` skip it), so the reader reads that file instead."""
    out: dict[str, tuple[str, str] | None] = {}
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return out
    for name in names:
        parts = name.rsplit(".", 2)
        if len(parts) != 3:
            continue
        value = (parts[1], parts[2])
        if parts[0] not in out:
            out[parts[0]] = value
        elif out[parts[0]] != value:
            out[parts[0]] = None
    return out


def drop_index_entries(folder: Path, key: str) -> None:
    """Remove every index entry of ``key`` (``<trial_id>.<inode>``): the conflicting ones of :func:`index_entries`.
    The next slow read of that file writes the one true entry again."""
    for p in folder.glob(f"{glob_escape(key)}.*.*"):
        with contextlib.suppress(OSError):
            p.unlink()


def glob_escape(s: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in s)
