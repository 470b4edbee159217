"""The result store: one Parquet file per finished trial, written atomically, read back with polars.

Layout of ``<results>/<sweep>/``:

- ``trials/<trial_id>.parquet``: one file per trial. It appears only complete: written to a hidden temp file in the
  same folder, fsynced, then ``os.replace``d into place (atomic on POSIX, also on NFS for renames within one
  directory). Rerunning a trial (resume) replaces its file, so the store never holds two versions of one trial.
- ``index/<trial_id>.<inode>.<schema>.<status>``: an empty file whose *name* says what the trial file with that
  inode holds (``ok`` / ``failed`` / ``empty``) and which schema it has (``index/schema-<schema>.arrow``). Written
  by the trial right after its own file, never touched by another trial (no coordination between writers); one
  directory listing answers ``status`` for 100,000 trials. An entry whose inode is not the trial file's current
  one is stale and ignored (the file was rewritten); a trial file without a valid entry is read the slow way (and
  the entry added then), so stores written before the index existed still read correctly.
- ``trials/compacted-<gen>-<k>.parquet`` + ``compacted.json``: what ``robustsweep compact`` merged (ok trials
  only), see :mod:`robustsweep.store.compact`. The manifest is the commit point: a part it does not list is not
  part of the sweep, and a trial file it lists (same inode) is a copy about to be deleted.

Readers take a :class:`Snapshot` (manifest, listing, manifest again: a compaction committed in between makes them
list again), so they see the sweep before or after a compaction, never both or half; a scan whose files vanish
under it (deleted by a compaction that committed after the snapshot) takes a new snapshot and scans again.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustsweep.store import readcache
from robustsweep.store.atomic import atomic_open, atomic_write_bytes
from robustsweep.store.listing import TrialFiles, drop_index_entries, index_entries, trial_listing
from robustsweep.store.manifest import MANIFEST, Manifest, _manifest_key, read_manifest  # noqa: F401 -- re-exported
from robustsweep.store.paths import check_name

if TYPE_CHECKING:  # pyarrow and polars are imported where tables are built: `status` only needs file names
    import polars as pl
    import pyarrow as pa

TRIALS_DIR = "trials"
INDEX_DIR = "index"
PART_PREFIX = "compacted-"


def sweep_dir(results: str | Path, sweep: str) -> Path:
    """``<results>/<sweep>``, after checking that ``sweep`` names one folder inside ``results``: every command
    (``compact``, ``results``, ``query``, ``report``, the writers) reaches a sweep's folder through here, so a name such
    as ``../other`` from the command line is a usage error before anything is read, merged or written."""
    return Path(results).expanduser().resolve() / check_name(sweep, "sweep name")


def trial_log_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    """A trial's own log (every attempt and retry appends to it): the one place that names it."""
    return sweep_dir(results, sweep) / "logs" / f"{trial_id}.log"


def trial_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    return sweep_dir(results, sweep) / TRIALS_DIR / f"{trial_id}.parquet"


def _write(table: pa.Table, dest: Path) -> int:
    """Atomic write of ``table`` to ``dest``; returns the inode the file has once in place."""
    import pyarrow.parquet as pq

    with atomic_open(dest, "wb") as f:
        pq.write_table(table, f, compression="zstd")
        return os.fstat(f.fileno()).st_ino


def write_atomic(table: pa.Table, dest: Path) -> Path:
    """Write ``table`` to ``dest`` so that readers see either nothing (or the old version) or the whole file."""
    _write(table, dest)
    return dest


def schema_id(schema: pa.Schema) -> str:
    return hashlib.sha1(schema.remove_metadata().serialize().to_pybytes()).hexdigest()[:12]


def table_status(table: pa.Table) -> str:
    """What a trial file says: ``failed`` if any row failed, ``ok`` if it has rows, else ``empty``."""
    if not table.num_rows:
        return "empty"
    return "failed" if "failed" in table.column("status").to_pylist() else "ok"


def index_trial(sdir: Path, trial_id: str, inode: int, schema: pa.Schema, status: str, error: str | None = None
                ) -> None:
    """Record (best effort) what the trial file with ``inode`` holds; a crash before this only costs a slow read.
    An ok entry is an empty file; a failed one holds the error text (so ``status`` never opens a Parquet file)."""
    try:
        idx = sdir / INDEX_DIR
        sid = schema_id(schema)
        schema_file = idx / f"schema-{sid}.arrow"
        if not schema_file.exists():  # content-addressed: concurrent writers write the same bytes
            atomic_write_bytes(schema_file, schema.remove_metadata().serialize().to_pybytes())
        entry = idx / f"{trial_id}.{inode}.{sid}.{status}"
        if status == "failed":
            atomic_write_bytes(entry, (error or "").encode())
        else:
            os.close(os.open(entry, os.O_CREAT | os.O_WRONLY, 0o644))
    except OSError:  # read-only store, full disk: readers fall back to reading the file
        pass


def _first_error(table: pa.Table) -> str | None:
    return next((e for e in table.column("error").to_pylist() if e), None) if "error" in table.column_names else None


def write_trial(rows: list[dict[str, Any]], results: str | Path, sweep: str, trial_id: str, *, locked: bool = False
                ) -> Path:
    """Write a trial's rows as its one file, under the trial's lock (store/locks.py; ``locked``: the caller holds
    it already)."""
    from robustsweep.store.locks import trial_lock
    from robustsweep.store.paths import ensure_inside
    from robustsweep.store.schema import to_table

    table = to_table(rows)
    dest = trial_path(results, sweep, trial_id)
    ensure_inside(dest, results, "trial file")  # a trial id / sweep name never writes outside --results
    with contextlib.nullcontext() if locked else trial_lock(sweep_dir(results, sweep), trial_id):
        inode = _write(table, dest)
        index_trial(sweep_dir(results, sweep), trial_id, inode, table.schema, table_status(table), _first_error(table))
    return dest


def trial_files(results: str | Path, sweep: str) -> list[Path]:
    """Every Parquet file of the sweep visible to a plain glob (trial files and compacted parts)."""
    d = sweep_dir(results, sweep) / TRIALS_DIR
    return sorted(d.glob("[!.]*.parquet")) if d.is_dir() else []


# ------------------------------------------------------------------------------------------------ snapshot
@dataclass
class Snapshot:
    """One consistent view of a sweep's store: which files to read and what each trial's status is."""
    dir: Path
    manifest: Manifest
    files: TrialFiles | dict[str, Path]  # trial id -> its own file, read besides the parts
    inodes: dict[str, int]
    status: dict[str, str]  # of the own files: ok | failed | empty | unknown (no valid index entry)
    schema_ids: dict[str, str]
    overridden: set[str]  # compacted trials whose newer own (ok) file replaces their compacted rows

    @property
    def parts(self) -> list[Path]:
        return [self.dir / TRIALS_DIR / p["name"] for p in self.manifest.parts]

    def arrow_schema(self) -> pa.Schema:
        """The unified schema, from the manifest and the index's schema files; only files without an index
        entry have their footer read (an unreadable one is dropped from the snapshot with a warning)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from robustsweep.store.schema import unify

        schemas = [self.manifest.schema] if self.manifest.schema_b64 else []
        for sid in sorted(set(self.schema_ids.values())):
            try:
                schemas.append(pa.ipc.read_schema(pa.py_buffer((self.dir / INDEX_DIR / f"schema-{sid}.arrow")
                                                               .read_bytes())))
            except (OSError, pa.ArrowInvalid):
                self.schema_ids = {t: s for t, s in self.schema_ids.items() if s != sid}
        for tid in [t for t in self.files if t not in self.schema_ids]:
            try:
                schemas.append(pq.read_schema(self.files[tid]))
            except Exception as e:  # not written by us (atomic writes never leave partial files): skip, say so
                warnings.warn(f"skipping unreadable result file {self.files.pop(tid)}: {e}", stacklevel=3)
        return unify(schemas)


def snapshot(results: str | Path, sweep: str) -> Snapshot:
    """List the store between two looks at the manifest; list again if a compaction committed in between."""
    sdir = sweep_dir(results, sweep)
    for _ in range(100):
        man, key = read_manifest(sdir)
        listing = trial_listing(sdir / TRIALS_DIR, PART_PREFIX)
        index = index_entries(sdir / INDEX_DIR)
        if _manifest_key(sdir) == key:
            break
    else:
        raise RuntimeError(f"the store of sweep {sweep!r} changed 100 times while being listed")
    snap = Snapshot(sdir, man, TrialFiles(sdir / TRIALS_DIR), {}, {}, {}, set())
    add, inodes, status, schema_ids = snap.files.add, snap.inodes, snap.status, snap.schema_ids  # 100,000 times
    for tid in sorted(listing):
        ino = listing[tid]
        entry = index.get(f"{tid}.{ino}")  # an entry for another inode is stale: the file was rewritten since
        if entry is None and f"{tid}.{ino}" in index:  # two entries disagree (inode reused): read the file instead
            drop_index_entries(sdir / INDEX_DIR, f"{tid}.{ino}")
        if tid in man.trials:
            if man.trials[tid][0] == ino:
                continue  # the copy a committed compaction merged and is about to delete
            if (entry[1] if entry else _read_status(sdir / TRIALS_DIR / f"{tid}.parquet")[0]) != "ok":
                continue  # an ok compacted result wins over a failed or unreadable later file
            snap.overridden.add(tid)
        add(tid)
        inodes[tid] = ino
        if entry:
            schema_ids[tid], status[tid] = entry
        else:
            status[tid] = "unknown"
    return snap


def _read_status(path: Path, inode: int | None = None) -> tuple[str, str | None]:
    """(status, error) of one trial file read the slow way; ``corrupt`` if unreadable. Adds its index entry."""
    import pyarrow.parquet as pq

    try:
        with open(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            t = pf.read(columns=["trial_id", "status", "error"])
            status = table_status(t)
            if inode is not None and os.fstat(fh.fileno()).st_ino == inode:  # still the file we listed
                index_trial(path.parent.parent, path.stem, inode, pf.schema_arrow, status, _first_error(t))
    except Exception as e:  # unreadable file: treat the trial as not done, so resume reruns it
        return "corrupt", f"unreadable result file {path}: {e}"
    return status, _first_error(t)


# --------------------------------------------------------------------------------------------------- reads
def _scan_files(files: list[Path], schema: pl.Schema) -> pl.LazyFrame:
    import polars as pl

    return pl.scan_parquet(files, schema=schema, missing_columns="insert", extra_columns="ignore",
                           # an int column in one trial and float in another (e.g. a grid [1, 0.5]) reads as float
                           cast_options=pl.ScanCastOptions(integer_cast="allow-float"))


def _scan(snap: Snapshot, schema: pl.Schema, cached: pl.LazyFrame | None = None,
          covered: list[str] | None = None) -> pl.LazyFrame:
    """The snapshot's rows: the compacted parts (less the trials a newer own file overrides), ``cached`` (the rows of
    the own files of the ``covered`` trials, from the read cache) and the other own files one by one."""
    import polars as pl

    frames = []
    if snap.parts:
        lf = _scan_files(snap.parts, schema)
        frames.append(lf.filter(~pl.col("trial_id").is_in(sorted(snap.overridden))) if snap.overridden else lf)
    if cached is not None and covered:
        frames.append(cached)
        done = set(covered)
        files = [p for t, p in snap.files.items() if t not in done]
    else:
        files = list(snap.files.values())
    if files:
        frames.append(_scan_files(files, schema))
    if not frames:
        return pl.LazyFrame(schema=schema)
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def _cached_scan(snap: Snapshot, schema: pl.Schema) -> pl.LazyFrame:
    """:func:`_scan` through the read cache (:mod:`robustsweep.store.readcache`), refreshed first when
    ``REFRESH_AT`` or more own files are not in it; a sweep with fewer own files than that reads them directly.
    A refresh reads every own file's rows once: they answer this read from memory and become the new cache (or
    only answer it, where the cache cannot be written)."""
    import polars as pl

    if len(snap.files) < readcache.REFRESH_AT:
        return _scan(snap, schema)
    own = readcache.own_keys(snap.dir / TRIALS_DIR, snap.files)  # keys before reads: see readcache.refresh
    cache = readcache.load(snap.dir)
    covered = cache.covered(own)
    old = (_scan_files([cache.file], schema).filter(pl.col("trial_id").is_in(covered))
           if cache.file is not None and covered else None)
    if len(own) - len(covered) < readcache.REFRESH_AT:
        return _scan(snap, schema, old, covered)
    done = set(covered)
    fresh = _scan_files([snap.files[t] for t in own if t not in done], schema)
    rows = (fresh if old is None else pl.concat([old, fresh], how="vertical")).collect()
    readcache.refresh(cache, own, rows)
    return _scan(snap, schema, rows.lazy(), list(own))


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The polars schema of an Arrow schema. Built from ``pa.nulls`` arrays: ``schema.empty_table()`` and
    ``pa.array([])`` import pandas (~0.8 s of every ``results`` / ``query`` command)."""
    import polars as pl
    import pyarrow as pa

    empty = pa.Table.from_arrays([pa.nulls(0, type=f.type) for f in schema], schema=schema)
    return pl.Schema(pl.from_arrow(empty).schema)


def _vanished(e: BaseException) -> bool:
    return isinstance(e, FileNotFoundError) or "No such file" in str(e) or "not found" in str(e).lower()


def scan_sweep(results: str | Path, sweep: str) -> pl.LazyFrame:
    """All rows of a sweep as a polars LazyFrame (union of the files' columns; absent columns are null).

    The unified schema is computed once, from the index (no footer reads); projections and filters reach the
    Parquet scan. If a compaction deletes files this scan planned to read, it re-plans from a new snapshot.
    """
    from polars.io.plugins import register_io_source

    snap = snapshot(results, sweep)
    arrow_schema = snap.arrow_schema()
    if not snap.files and not snap.parts:
        raise FileNotFoundError(
            f"no results for sweep {sweep!r} under {sweep_dir(results, sweep)}; "
            f"run `robustsweep list sweeps --results {results}` or check --results"
        )
    schema = polars_schema(arrow_schema)

    def source(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               batch_size: int | None):
        s, cached = snap, True
        for attempt in range(6):
            lf = _cached_scan(s, schema) if cached else _scan(s, schema)
            if predicate is not None:
                lf = lf.filter(predicate)
            if with_columns is not None:
                lf = lf.select(with_columns)
            if n_rows is not None:
                lf = lf.head(n_rows)
            try:
                df = lf.collect()
                break
            except Exception as e:
                if attempt == 5 or not (_vanished(e) or cached):
                    raise
                if _vanished(e):
                    s = snapshot(results, sweep)
                else:  # a damaged cache, or one that does not read with today's schema: read without it
                    cached = False
                    readcache.discard(s.dir)
        yield df

    return register_io_source(source, schema=schema)


def read_sweep(results: str | Path, sweep: str) -> pl.DataFrame:
    return scan_sweep(results, sweep).collect()


def warm_read_cache(results: str | Path, sweep: str) -> bool:
    """Refresh the read cache now if a reader would (best effort; whether it read anything), so that the first
    ``results`` / ``query`` after a run reads one file instead of a footer per trial (6 s -> under 1 s at 10,000
    trials). Called where a run is known to have ended: after a Tune run, and by the array task that leaves no
    trial without a file. Never raises: a read-only or damaged store only stays cold."""
    try:
        snap = snapshot(results, sweep)
        if len(snap.files) < readcache.REFRESH_AT:
            return False
        _cached_scan(snap, polars_schema(snap.arrow_schema()))  # refreshes (reads, writes) when it is due
        return True
    except Exception:  # noqa: BLE001 -- a cache is an optimisation; the run's result files are what count
        return False


def trial_status(results: str | Path, sweep: str) -> dict[str, dict[str, Any]]:
    """trial_id -> {status, error} (the store is the source of truth for resume): compacted trials from the
    manifest, the others from the index's file names; only failed trials and files without an index entry
    are opened."""
    snap = snapshot(results, sweep)
    out: dict[str, dict[str, Any]] = {tid: {"status": "ok", "error": None} for tid in snap.manifest.trials}
    states = snap.status
    for tid in snap.files:
        st = states[tid]
        if st == "ok":
            out[tid] = {"status": "ok", "error": None}
        elif st == "failed" and (err := _entry_error(snap, tid)) is not None:
            out[tid] = {"status": "failed", "error": err or None}
        elif st != "empty":
            status, err = _read_status(snap.files[tid], snap.inodes[tid] if st == "unknown" else None)
            if status != "empty":
                out[tid] = {"status": status, "error": err}
    return out


def _entry_error(snap: Snapshot, tid: str) -> str | None:
    """The error text a failed trial's index entry holds ('' if none), None if the entry cannot be read."""
    name = f"{tid}.{snap.inodes[tid]}.{snap.schema_ids[tid]}.failed"
    try:
        return (snap.dir / INDEX_DIR / name).read_text()
    except OSError:
        return None


def finished_ok(results: str | Path, sweep: str, trial_id: str) -> int | None:
    """Number of rows if the trial's result says ok (its own file, else a compacted part), else None."""
    import pyarrow.parquet as pq

    path = trial_path(results, sweep, trial_id)
    try:
        statuses = pq.ParquetFile(path).read(columns=["status"]).column("status").to_pylist()
        if statuses and "failed" not in statuses:
            return len(statuses)
    except Exception:
        pass
    # read after the file: a compaction deletes a file only once the manifest that holds it is committed
    rec = read_manifest(sweep_dir(results, sweep))[0].trials.get(trial_id)
    return rec[1] if rec else None
