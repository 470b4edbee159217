"""A lock per trial id (one of BUCKETS lock files), held while a result file is written: what makes "a late
failure never replaces an ok result" (:func:`robustsweep.store.rows.write_failure`) hold when the two attempts
finish at the same moment.

Why a lock at all, in a store where no trial coordinates with another: two *attempts of one trial* can overlap (an
attempt Tune gave up on, its node cut off, still running while the retry finishes). ``write_failure`` checks that no
ok result exists and then writes; without the lock, the retry's ok file could land between the check and the write
and be replaced by the failure. Trials share a lock file only by their id's hash bucket and hold it for one file
write, so the write path of a sweep still scales with its trials (measured on this machine's local disk: 1-3 % of
write_trial's rate in the bench's A/B, ~8 % for tiny files; bench/README.md). ``flock`` works across nodes on Linux
NFS clients (emulated with POSIX locks); where the lock file cannot be made (read-only or full store) the write goes
ahead unlocked, as before.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

LOCKS_DIR = "locks"  # <sweep>/locks/<bucket>.lock
#: trial ids map onto this many lock files: made once per sweep instead of one new file per trial write (a file
#: creation per write cost ~10 % of write_trial's rate); two trials sharing a bucket only wait for each other's write
#: of one file (milliseconds), and one lock per operation cannot deadlock
BUCKETS = 256


@contextlib.contextmanager
def trial_lock(sdir: Path, trial_id: str) -> Iterator[None]:
    """Hold the exclusive lock of ``trial_id`` in the sweep folder ``sdir`` (blocking; best effort)."""
    path = sdir / LOCKS_DIR / f"{zlib.crc32(trial_id.encode()) % BUCKETS:02x}.lock"
    try:
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:  # the sweep's first write: one mkdir, not one per write
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
