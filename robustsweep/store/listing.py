"""The two directory listings a store snapshot is made of, kept cheap for 100,000 trials (``status`` reads nothing
else): the trial files (names and inodes, one ``os.scandir`` of ``trials/``) and the index entries (names only, one
``os.listdir`` of ``index/``). No Parquet file is opened and no per-trial ``Path`` is built until one is needed."""
from __future__ import annotations

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


def index_entries(folder: Path) -> dict[str, tuple[str, str]]:
    """``"<trial_id>.<inode>"`` -> (schema id, status) of every index entry ``<trial_id>.<inode>.<schema>.<status>``
    in ``folder`` (the first listed, should one file have two). Other names (schema files, temp files) give keys
    that no ``<trial_id>.<inode>`` of a listed trial file matches."""
    out: dict[str, tuple[str, str]] = {}
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return out
    for name in names:
        parts = name.rsplit(".", 2)
        if len(parts) == 3 and parts[0] not in out:
            out[parts[0]] = (parts[1], parts[2])
    return out
