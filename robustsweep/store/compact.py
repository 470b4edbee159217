"""``robustsweep compact SWEEP``: merge the sweep's ok trial files into a few large Parquet parts, atomically.

Why: a query over 10,000 twelve-row files pays ~0.3-0.5 ms of per-file overhead each (footer, row groups,
threads), however fast the columns decode; one part of 120,000 rows reads in milliseconds.

Protocol (one compaction at a time per sweep, an ``flock`` on ``<sweep>/.compact.lock``):

1. recover from an interrupted compaction (below);
2. write the new parts under hidden names (``.pending-compacted-<gen>-<k>.parquet``, each atomically, fsynced):
   the ok trial files not compacted yet, plus the existing parts smaller than ``part_rows`` (so repeated
   compactions do not pile up small parts);
3. rename them to ``trials/compacted-<gen>-<k>.parquet`` (a plain ``*.parquet`` glob sees them from here);
4. commit: ``compacted.json`` replaced atomically, listing the new parts and, per merged trial, the inode of the
   file it came from -- readers switch from "before" to "after" exactly here;
5. delete the merged trial files (only if still the same inode: a newer write is never lost), the parts the
   manifest no longer lists, and the index entries of the merged trials.

A SIGKILL anywhere leaves a consistent store: before 4 the manifest is the old one and every trial file is still
there (the new parts are not listed, so readers ignore them and the next compaction deletes them); after 4 the
manifest holds every merged trial (the leftover copies are skipped by readers, deleted by the next compaction).
Failed trials are never compacted (resume replaces their files); a compacted trial is ok, so resume never runs it.
Only ok results are ever merged, and resume never reruns an ok trial, so a trial file written after a compaction
(resume) is always a new trial, read together with the parts.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from robustsweep.store.atomic import atomic_write_bytes
from robustsweep.store.parquet import (
    INDEX_DIR,
    PART_PREFIX,
    TRIALS_DIR,
    Manifest,
    Snapshot,
    read_manifest,
    snapshot,
    sweep_dir,
    write_atomic,
)
from robustsweep.store.parquet import MANIFEST as MANIFEST_FILE

PART_ROWS = 1_000_000  # rows per part: large enough that the per-file cost vanishes, small enough to rewrite
FAULT_ENV = "ROBUSTSWEEP_COMPACT_FAULT"  # tests: "<point>=kill" or "<point>=<seconds>" (comma-separated, * = all)
POINTS = ("recovered", "parts-written", "parts-visible", "committed", "delete", "done")


def _fault(point: str) -> None:
    """Fault injection for the crash tests: SIGKILL ourselves, or pause, at a named point of the protocol."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.partition("=")
        if name in (point, "*"):
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(float(action or 0))


@dataclass
class CompactResult:
    generation: int
    merged_trials: int  # trial files merged by this run (0: nothing to do)
    parts: int
    rows: int
    deleted_files: int

    @property
    def noop(self) -> bool:
        return self.merged_trials == 0


@contextlib.contextmanager
def _lock(sdir: Path) -> Iterator[None]:
    """One compaction per sweep; released by the kernel when the process dies (SIGKILL included)."""
    sdir.mkdir(parents=True, exist_ok=True)
    with open(sdir / ".compact.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _unlink_if(path: Path, inode: int | None = None) -> bool:
    try:
        if inode is not None and os.stat(path).st_ino != inode:
            return False  # rewritten since it was merged: keep the newer file
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def _cleanup(sdir: Path, man: Manifest) -> int:
    """Delete what the committed manifest made obsolete: merged trial files, unlisted parts, temp parts and the
    index entries of compacted trials. Idempotent, so it is both step 5 and the recovery of a killed run."""
    trials_dir, n = sdir / TRIALS_DIR, 0
    listed = {p["name"] for p in man.parts}
    with os.scandir(trials_dir) as it:
        names = sorted(e.name for e in it)
    for name in names:
        if name.startswith((".pending-" + PART_PREFIX, "..pending-" + PART_PREFIX)) or (
                name.startswith(PART_PREFIX) and name not in listed):
            n += _unlink_if(trials_dir / name)
        elif name.endswith(".parquet") and name[:-8] in man.trials:
            n += _unlink_if(trials_dir / name, man.trials[name[:-8]][0])
            _fault("delete")
    idx = sdir / INDEX_DIR
    if idx.is_dir():
        with os.scandir(idx) as it:
            stale = [e.name for e in it if e.name.split(".", 1)[0] in man.trials
                     and not (trials_dir / f"{e.name.split('.', 1)[0]}.parquet").exists()]
        for name in stale:
            _unlink_if(idx / name)
    for tmp in sdir.glob(f".{MANIFEST_FILE}.*.tmp"):  # a commit killed mid-write (atomic_open's temp file)
        _unlink_if(tmp)
    return n


def _ok_files(snap: Snapshot) -> dict[str, Path]:
    """The snapshot's own files that say ok (index entry, else read): the ones compaction may merge."""
    from robustsweep.store.parquet import _read_status

    out = {}
    for tid, path in snap.files.items():
        st = snap.status[tid]
        if st == "unknown":
            st = _read_status(path, snap.inodes[tid])[0]
        if st == "ok" and tid not in snap.overridden:
            out[tid] = path
    return out


def compact(results: str | Path, sweep: str, part_rows: int = PART_ROWS) -> CompactResult:
    """Merge the ok trial files of ``sweep`` into parts and swap them in atomically (see the module doc)."""

    from robustsweep.store.parquet import _scan, polars_schema

    sdir = sweep_dir(results, sweep)
    if not (sdir / TRIALS_DIR).is_dir():
        raise FileNotFoundError(f"no results for sweep {sweep!r} under {sdir}")
    with _lock(sdir):
        deleted = _cleanup(sdir, read_manifest(sdir)[0])
        _fault("recovered")
        snap = snapshot(results, sweep)
        man = snap.manifest
        new = _ok_files(snap)
        if not new:
            return CompactResult(man.generation, 0, len(man.parts), sum(p["rows"] for p in man.parts), deleted)
        keep = [p for p in man.parts if p["rows"] >= part_rows]
        redo = [p for p in man.parts if p["rows"] < part_rows]
        schema = snap.arrow_schema()
        new = {t: p for t, p in new.items() if t in snap.files}  # arrow_schema drops unreadable files
        pl_schema = polars_schema(schema)
        # rows in trial order: the parts being rewritten (already sorted), then the new files (sorted by id)
        src = Snapshot(sdir, Manifest(man.generation, redo, man.schema_b64, {}), new, {}, {}, {}, set())
        frame = _scan(src, pl_schema).collect()
        table = frame.to_arrow().cast(schema)
        gen = man.generation + 1
        trials_dir, pending = sdir / TRIALS_DIR, []
        for k, start in enumerate(range(0, max(table.num_rows, 1), part_rows)):
            name = f"{PART_PREFIX}{gen:06d}-{k:03d}.parquet"
            write_atomic(table.slice(start, part_rows), trials_dir / f".pending-{name}")
            pending.append({"name": name, "rows": min(part_rows, table.num_rows - start)})
        _fault("parts-written")
        for p in pending:
            os.replace(trials_dir / f".pending-{p['name']}", trials_dir / p["name"])
        _fault("parts-visible")
        rows_of = dict(zip(*frame.group_by("trial_id").len().to_dict(as_series=False).values()))
        trials = dict(man.trials) | {t: [snap.inodes[t], int(rows_of.get(t, 0))] for t in new}
        new_man = Manifest(gen, keep + pending, Manifest.encode_schema(schema), trials)  # schema: already unified with the old one
        atomic_write_bytes(sdir / MANIFEST_FILE, new_man.to_bytes())
        _fault("committed")
        deleted += _cleanup(sdir, new_man)
        _fault("done")
        return CompactResult(gen, len(new), len(new_man.parts), sum(p["rows"] for p in new_man.parts), deleted)
