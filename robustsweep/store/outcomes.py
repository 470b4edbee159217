"""Per-example outcomes: one Parquet file per trial beside its rows, ``<sweep>/outcomes/<trial_id>.parquet``.

One entry per (attack point, attacked example) -- README "Per-example outcomes" lists the columns. Why a file of its
own and not columns of the rows: 10,000 examples × 50 attack points is 500,000 entries, which as list columns would
make every ``status`` / ``results`` read of the rows pay for them; kept apart, the row store stays as fast as before
and an analyst reads the outcomes only when asked (``query --outcomes``). The file is written atomically before the
trial's own file (the trial file is the commit point: a trial that reads as finished has its outcomes; a rerun
replaces both). Compact types (int32 indices, int16 classes, float32 sizes and scores, dictionary-encoded names) and
zstd keep 10,000 × 50 entries of one trial well under 20 MB (``tests/store/test_outcomes.py`` measures it).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustsweep.store.paths import ensure_inside

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

OUTCOMES_DIR = "outcomes"

# column -> arrow type; det.<d>.score (float32) and det.<d>.reject (bool) are added per detector
FIXED = {
    "trial_id": "dict", "point": "int32", "attack": "dict", "param": "dict", "value": "float64", "eps": "float64",
    "norm": "dict", "index": "int32", "label": "int16", "pred_clean": "int16", "pred_adv": "int16", "fooled": "bool",
    "linf": "float32", "l2": "float32", "target": "int16",
}


def outcomes_path(results: str | Path, sweep: str, trial_id: str) -> Path:
    from robustsweep.store.parquet import sweep_dir

    return sweep_dir(results, sweep) / OUTCOMES_DIR / f"{trial_id}.parquet"


def to_table(columns: dict[str, Any], trial_id: str) -> pa.Table:
    """The outcome columns (numpy arrays / lists, :func:`robustsweep.core.steps.outcomes.outcome_columns`) as an
    Arrow table of the compact types above; ``target`` -1 (an untargeted attack) becomes null."""
    import numpy as np
    import pyarrow as pa

    n = len(columns["point"])
    types = {"int32": pa.int32(), "int16": pa.int16(), "float32": pa.float32(), "float64": pa.float64(),
             "bool": pa.bool_()}
    arrays, names = [], []
    for name, kind in FIXED.items():
        v = [trial_id] * n if name == "trial_id" else columns[name]
        if kind == "dict":
            arr = pa.array(v, pa.string()).dictionary_encode()
        elif name == "target":
            t = np.asarray(v)
            arr = pa.array(t.astype(np.int16), pa.int16(), mask=t < 0)
        else:
            arr = pa.array(np.asarray(v) if kind != "float64" else v, types[kind], from_pandas=True)
        arrays.append(arr)
        names.append(name)
    for name in sorted(k for k in columns if k.startswith("det.")):
        kind = pa.float32() if name.endswith(".score") else pa.bool_()
        arrays.append(pa.array(columns[name], kind, from_pandas=True))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def write_outcomes(columns: dict[str, Any], results: str | Path, sweep: str, trial_id: str) -> Path:
    """Write a trial's outcomes atomically (a reader sees the old file or the whole new one); returns its path."""
    import pyarrow.parquet as pq

    from robustsweep.store.atomic import atomic_open

    dest = ensure_inside(outcomes_path(results, sweep, trial_id), results, "outcomes file")
    with atomic_open(dest, "wb") as f:
        pq.write_table(to_table(columns, trial_id), f, compression="zstd")
    return dest


def outcome_files(results: str | Path, sweep: str) -> list[Path]:
    from robustsweep.store.parquet import sweep_dir

    d = sweep_dir(results, sweep) / OUTCOMES_DIR
    return sorted(d.glob("[!.]*.parquet")) if d.is_dir() else []


def scan_outcomes(results: str | Path, sweep: str) -> pl.LazyFrame:
    """Every trial's outcomes as one LazyFrame (absent detector columns are null). Only trials whose rows the
    store holds as ok are read: an outcomes file left by a trial that later failed is not part of the sweep."""
    import polars as pl

    from robustsweep.store.parquet import scan_sweep

    files = outcome_files(results, sweep)
    if not files:
        from robustsweep.store.parquet import sweep_dir

        raise FileNotFoundError(f"no per-example outcomes for sweep {sweep!r} under "
                                f"{sweep_dir(results, sweep) / OUTCOMES_DIR} (trials keep them with eval.outcomes, "
                                f"the default, since this store version; rerun the trials to get them)")
    ok = set(scan_sweep(results, sweep).filter(pl.col("status") == "ok").select("trial_id").unique()
             .collect()["trial_id"].to_list())
    keep = [f for f in files if f.stem in ok]
    if not keep:
        raise FileNotFoundError(f"sweep {sweep!r}: no finished trial has per-example outcomes")
    return pl.concat([pl.scan_parquet(f) for f in keep], how="diagonal_relaxed")
