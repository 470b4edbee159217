"""A reader's cache of a sweep's own trial files: ``results`` / ``query`` / reports read one file for the trials it
covers instead of one footer per trial (10,000 twelve-row files cost seconds of per-file overhead; see
``bench/README.md``), without waiting for ``robustsweep compact``.

Why a cache and not an automatic compaction: it never moves or deletes a trial file, so it needs no lock, no
manifest commit and no crash protocol -- writers (hundreds of array tasks) never see it, and deleting
``<sweep>/readcache/`` at any time loses nothing.

Layout: ``<sweep>/readcache/<token>.parquet`` (the rows of the trial files it covers, written with the unified
schema of the time) and ``current.json`` (``{"file": "<token>.parquet", "keys": {trial_id: [inode, mtime_ns,
size]}}``, replaced atomically). A cached trial counts only while its own file still has the same inode, mtime and
size: a rewrite (resume reruns a failed trial) makes a new file through ``os.replace``, so the key changes and that
trial is read from its file again; a trial that left its file (compacted into a part) is simply not covered.

Readers refresh the cache when ``REFRESH_AT`` or more own files are not covered: the new cache is the old one's
still-valid rows plus the newly read files, under a new token, so a concurrent reader of the old token is never
shown a half-written file (one whose old file vanishes under it re-plans, as after a compaction). A results folder
the reader cannot write to simply goes without the cache.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from robustsweep.store.atomic import atomic_open, atomic_write_bytes

if TYPE_CHECKING:
    import polars as pl

CACHE_DIR = "readcache"
CURRENT = "current.json"
REFRESH_AT = 64  # uncovered own files that make a reader rewrite the cache (fewer are cheap to read as files)
KEEP_OLD_S = 120.0  # a replaced cache file is deleted once this old: readers that planned on it have finished

Key = tuple[int, int, int]  # inode, mtime_ns, size


@dataclass
class Cache:
    """The cache as one reader found it: its file (None: no usable cache) and the key of each trial it holds."""
    dir: Path
    file: Path | None = None
    keys: dict[str, Key] = field(default_factory=dict)

    def covered(self, own: dict[str, Key]) -> list[str]:
        """The trial ids whose current own file is exactly the one cached."""
        return [t for t, k in own.items() if self.keys.get(t) == k]


def own_keys(folder: Path, tids) -> dict[str, Key]:
    """(inode, mtime_ns, size) of ``<folder>/<id>.parquet`` for each id (one ``stat`` each; a vanished file is left
    out, and its trial is then read, or found missing, the usual way)."""
    out: dict[str, Key] = {}
    for t in tids:
        try:
            st = os.stat(folder / f"{t}.parquet")
        except FileNotFoundError:
            continue
        out[t] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def load(sdir: Path) -> Cache:
    """The current cache of the sweep folder ``sdir`` (an empty one if there is none or it cannot be read)."""
    d = sdir / CACHE_DIR
    try:
        doc = json.loads((d / CURRENT).read_bytes())
        f = d / doc["file"]
        if not f.is_file() or os.sep in doc["file"]:
            return Cache(d)
        return Cache(d, f, {t: tuple(k) for t, k in doc["keys"].items()})  # type: ignore[misc]
    except (OSError, ValueError, KeyError, TypeError):
        return Cache(d)


def refresh(cache: Cache, own: dict[str, Key], rows: pl.DataFrame) -> Cache:
    """Write ``rows`` (the old cache's rows of the trials it still covers plus the rows of the other own files, read
    with one schema) as a new cache, make it current and return it; the old cache if the folder cannot be written
    (a read-only results folder, a full disk). ``own``: the key of every trial the rows were read from, taken
    *before* they were read -- a file replaced in between then has a newer key than the one cached, and its trial is
    read from the file again, never from stale rows."""
    try:
        token = f"{time.time_ns():x}-{secrets.token_hex(4)}"
        path = cache.dir / f"{token}.parquet"
        with atomic_open(path, "wb", inside=cache.dir.parent) as fh:
            rows.write_parquet(fh)
        keys = {t: list(k) for t, k in own.items()}
        atomic_write_bytes(cache.dir / CURRENT, json.dumps({"format": 1, "file": path.name, "keys": keys}).encode(),
                           inside=cache.dir.parent)
    except OSError:
        return cache
    _drop_old(cache.dir, keep=path.name)
    return Cache(cache.dir, path, {t: tuple(k) for t, k in keys.items()})  # type: ignore[misc]


def _drop_old(d: Path, keep: str) -> None:
    """Delete replaced cache files older than ``KEEP_OLD_S`` (and temp files a killed reader left that long)."""
    now = time.time()
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        if e.name in (keep, CURRENT) or not e.name.endswith((".parquet", ".tmp")):
            continue
        try:
            if now - e.stat().st_mtime > KEEP_OLD_S:
                os.unlink(e.path)
        except OSError:
            pass


def discard(sdir: Path) -> None:
    """Forget a cache that could not be read (the next reader that needs one writes a new one)."""
    try:
        os.unlink(sdir / CACHE_DIR / CURRENT)
    except OSError:
        pass
