"""One lock per trial id, held while a result file is written: what makes "a late failure never replaces an ok
result" (:func:`robustsweep.store.rows.write_failure`) hold when the two attempts finish at the same moment.

Why a lock at all, in a store where no trial coordinates with another: two *attempts of one trial* can overlap (an
attempt Tune gave up on, its node cut off, still running while the retry finishes). ``write_failure`` checks that no
ok result exists and then writes; without the lock, the retry's ok file could land between the check and the write
and be replaced by the failure. Attempts of different trials never share a lock, so the write path of a sweep still
scales with its trials. ``flock`` works across nodes on Linux NFS clients (emulated with POSIX locks); where the
lock file cannot be made (read-only or full store) the write goes ahead unlocked, as before.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCKS_DIR = "locks"  # <sweep>/locks/<trial_id>.lock


@contextlib.contextmanager
def trial_lock(sdir: Path, trial_id: str) -> Iterator[None]:
    """Hold the exclusive lock of ``trial_id`` in the sweep folder ``sdir`` (blocking; best effort)."""
    try:
        (sdir / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
        fd = os.open(sdir / LOCKS_DIR / f"{trial_id}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
