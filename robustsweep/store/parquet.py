"""The result store: one Parquet file per finished trial, written atomically, read back with polars.

Layout: ``<results>/<sweep>/trials/<trial_id>.parquet``. A file appears only complete: it is written to a hidden
temp file in the same folder, fsynced, then ``os.replace``d into place (atomic on POSIX, also on NFS for renames
within one directory), and the folder is fsynced so the rename survives a crash. Rerunning a trial (resume)
replaces its file, so the store never holds two versions of one trial.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from robustsweep.store.atomic import atomic_open
from robustsweep.store.schema import to_table

if TYPE_CHECKING:  # polars is imported where frames are built: `status` only needs pyarrow's footer reads
    import polars as pl

TRIALS_DIR = "trials"


def sweep_dir(results: str | Path, sweep: str) -> Path:
    return Path(results).expanduser().resolve() / sweep


def trial_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    return sweep_dir(results, sweep) / TRIALS_DIR / f"{trial_id}.parquet"


def write_atomic(table: pa.Table, dest: Path) -> Path:
    """Write ``table`` to ``dest`` so that readers see either nothing (or the old version) or the whole file."""
    with atomic_open(dest, "wb") as f:
        pq.write_table(table, f, compression="zstd")
    return dest


def write_trial(rows: list[dict[str, Any]], results: str | Path, sweep: str, trial_id: str) -> Path:
    return write_atomic(to_table(rows), trial_path(results, sweep, trial_id))


def trial_files(results: str | Path, sweep: str) -> list[Path]:
    d = sweep_dir(results, sweep) / TRIALS_DIR
    return sorted(d.glob("[!.]*.parquet")) if d.is_dir() else []


def scan_sweep(results: str | Path, sweep: str) -> pl.LazyFrame:
    """All rows of a sweep as a polars LazyFrame (union of the files' columns; absent columns are null)."""
    import polars as pl

    files = trial_files(results, sweep)
    if not files:
        raise FileNotFoundError(
            f"no results for sweep {sweep!r} under {sweep_dir(results, sweep)}; "
            f"run `robustsweep list sweeps --results {results}` or check --results"
        )
    schemas, readable = [], []
    for f in files:
        try:
            schemas.append(pq.read_schema(f))
            readable.append(f)
        except Exception as e:  # not written by us (atomic writes never leave partial files): skip, say so
            warnings.warn(f"skipping unreadable result file {f}: {e}", stacklevel=2)
    if not readable:
        raise FileNotFoundError(f"no readable result files for sweep {sweep!r} under {sweep_dir(results, sweep)}")
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    return pl.scan_parquet(readable, schema=pl.Schema(pl.from_arrow(schema.empty_table()).schema),
                           missing_columns="insert",
                           # an int column in one trial and float in another (e.g. a grid [1, 0.5]) reads as float
                           cast_options=pl.ScanCastOptions(integer_cast="allow-float"))


def read_sweep(results: str | Path, sweep: str) -> pl.DataFrame:
    return scan_sweep(results, sweep).collect()


def trial_status(results: str | Path, sweep: str) -> dict[str, dict[str, Any]]:
    """trial_id -> {status, error} from the Parquet files (the store is the source of truth for resume)."""
    out: dict[str, dict[str, Any]] = {}
    for f in trial_files(results, sweep):
        try:
            t = pq.ParquetFile(f).read(columns=["trial_id", "status", "error"])
        except Exception as e:  # unreadable file: treat the trial as not done, so resume reruns it
            out[f.stem] = {"status": "corrupt", "error": f"unreadable result file {f}: {e}"}
            continue
        if t.num_rows:
            status = "failed" if "failed" in t.column("status").to_pylist() else "ok"
            err = next((e for e in t.column("error").to_pylist() if e), None)
            out[f.stem] = {"status": status, "error": err}
    return out


def finished_ok(results: str | Path, sweep: str, trial_id: str) -> int | None:
    """Number of rows if the trial's Parquet file exists and says ok, else None (missing, failed, unreadable)."""
    path = trial_path(results, sweep, trial_id)
    try:
        statuses = pq.ParquetFile(path).read(columns=["status"]).column("status").to_pylist()
    except Exception:
        return None
    return len(statuses) if statuses and "failed" not in statuses else None
