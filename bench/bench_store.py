"""Store figures on a fake sweep (``bench/store_data.py``: N trials x 12 rows written with ``write_trial``).

- ``legacy_ratio``: the pre-index read path (every file's footer for the schema, every file again for status;
  reimplemented below as the baseline) over the current one, same files, same process;
- ``cache_ratio``: reads without the read cache (``<sweep>/readcache/``) over reads through a warm one, before any
  compaction (``cache_cold_s``: the one read that writes it);
- ``compact_ratio``: the current read path (warm read cache) before ``compact`` over after it;
- ``cli_s``: wall time of the real commands (``robustsweep status | results | query`` in a subprocess, Python
  start-up and imports included) before and after compaction -- the issue's targets are on these; ``cli_cold_s``:
  ``results`` when no read cache exists yet;
- ``results_peak_mb``: peak RSS of ``robustsweep results`` against a process that only imports the same modules;
- ``write``: files/s of ``write_trial`` (the index entry included) over a bare ``pq.write_table`` + atomic rename;
- ``delta`` (when the ``deltalake`` package is installed): the same trials as one Delta Lake commit each, query
  time before and after ``optimize.compact`` + ``vacuum``, against our store.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SQL = ('SELECT "cfg.model.name" AS model, attack, value, avg(adv_accuracy) AS acc FROM results '
       "WHERE status = 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
ROOT = Path(__file__).resolve().parents[1]


def legacy_scan(results: str, sweep: str):
    """The read path before issue 15: one footer read per file for the schema, then a polars scan."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((Path(results) / sweep / "trials").glob("[!.]*.parquet"))
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    return pl.scan_parquet(files, schema=pl.Schema(pl.from_arrow(schema.empty_table()).schema),
                           missing_columns="insert", cast_options=pl.ScanCastOptions(integer_cast="allow-float"))


def legacy_status(results: str, sweep: str) -> dict[str, str]:
    import pyarrow.parquet as pq

    out = {}
    for f in sorted((Path(results) / sweep / "trials").glob("[!.]*.parquet")):
        t = pq.ParquetFile(f).read(columns=["trial_id", "status", "error"])
        out[f.stem] = "failed" if "failed" in t.column("status").to_pylist() else "ok"
    return out


def _best(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def _reads(results: str, sweep: str, repeat: int) -> dict[str, float]:
    from robustsweep.report.aggregate import query
    from robustsweep.store.parquet import read_sweep, trial_status

    return {"status": _best(lambda: trial_status(results, sweep), repeat),
            "results": _best(lambda: read_sweep(results, sweep), repeat),
            "query": _best(lambda: query(results, sweep, SQL), repeat)}


def _cli(results: str, sweep: str, only: tuple[str, ...] = ("status", "results", "query")) -> dict[str, float]:
    cmds = {"status": ["status", sweep], "results": ["results", sweep], "query": ["query", sweep, SQL]}
    out = {}
    for name, args in ((k, v) for k, v in cmds.items() if k in only):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "robustsweep", *args, "--results", results], check=True,
                       stdout=subprocess.DEVNULL, cwd=ROOT)
        out[name] = time.perf_counter() - t
    return out


def _peak_mb(code: str) -> float:
    """VmHWM of a fresh interpreter running ``code`` (ru_maxrss would carry the forking parent's peak)."""
    tail = "\nprint([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    r = subprocess.run([sys.executable, "-c", code + tail], check=True, capture_output=True, text=True, cwd=ROOT)
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def _write_rates(d: Path, n: int) -> dict[str, float]:
    import pyarrow.parquet as pq

    from bench.store_data import trial_config, trial_rows
    from robustsweep.store.atomic import atomic_open
    from robustsweep.store.parquet import write_trial
    from robustsweep.store.schema import to_table

    # interleaved file by file, so the disk's moods (fsync latency, a growing folder, page cache) hit both sides
    # alike: run one after the other, the same code measured 1.10 and 0.64 on this machine
    t_ours = t_bare = 0.0
    for i in range(n):
        c = trial_config(i)
        t = time.perf_counter()
        write_trial(trial_rows(c, "w"), d, "w", c["trial_id"])
        t_ours += time.perf_counter() - t
        t = time.perf_counter()
        with atomic_open(d / "bare" / f"{c['trial_id']}.parquet") as f:
            pq.write_table(to_table(trial_rows(c, "w")), f, compression="zstd")
        t_bare += time.perf_counter() - t
    ours, bare = n / t_ours, n / t_bare
    return {"write_trial_files_s": ours, "bare_files_s": bare, "ratio": ours / bare}


def _delta(d: Path, results: str, sweep: str, n: int) -> dict[str, Any]:
    """The same n trials appended to a Delta table one commit per trial (how independent trials would write)."""
    try:
        import deltalake
    except ImportError:
        return {"skipped": "deltalake not installed"}
    import polars as pl
    import pyarrow.parquet as pq

    files = sorted((Path(results) / sweep / "trials").glob("[!.]*.parquet"))[:n]
    tables = [pq.read_table(f) for f in files]
    from robustsweep.store.schema import unify

    schema = unify([t.schema for t in tables])
    tables = [t.select([c for c in schema.names if c in t.column_names]) for t in tables]
    path = str(d / "delta")
    t0 = time.perf_counter()
    for tb in tables:
        deltalake.write_deltalake(path, tb, mode="append", schema_mode="merge")
    rate = len(tables) / (time.perf_counter() - t0)

    def q() -> None:
        lf = pl.scan_delta(path)
        pl.SQLContext(frames={"results": lf}).execute(SQL).collect()

    before = _best(q, 3)
    t0 = time.perf_counter()
    dt = deltalake.DeltaTable(path)
    dt.optimize.compact()
    dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    optimize_s = time.perf_counter() - t0
    return {"trials": len(tables), "append_files_s": rate, "query_s": before, "optimize_s": optimize_s,
            "query_after_optimize_s": _best(q, 3)}


def run(size: str = "full", n: int | None = None) -> dict[str, Any]:
    from bench.store_data import make_sweep
    from robustsweep.store.compact import compact

    n = n or (80 if size == "tiny" else 10_000)  # tiny: above readcache.REFRESH_AT
    repeat = 1 if size == "tiny" else 3
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        results, sweep = str(d / "r"), "big"
        out: dict[str, Any] = {"trials": n, "rows_per_trial": 12}
        out["generate_files_s"] = make_sweep(results, sweep, n, fsync=False, workers=2 if n >= 5000 else 1)
        out["write"] = _write_rates(d / "w", 10 if size == "tiny" else 300)
        legacy = {"status": _best(lambda: legacy_status(results, sweep), 1),
                  "results": _best(lambda: legacy_scan(results, sweep).collect(), 1)}
        from robustsweep.store import readcache

        cache_dir = Path(results) / sweep / readcache.CACHE_DIR
        keep, readcache.REFRESH_AT = readcache.REFRESH_AT, 10**9
        try:  # the read path without the read cache (never written at this threshold)
            uncached = _reads(results, sweep, repeat)
        finally:
            readcache.REFRESH_AT = keep
        out["legacy_s"] = legacy
        out["legacy_ratio"] = {k: legacy[k] / uncached[k] for k in legacy}
        t = time.perf_counter()
        _reads(results, sweep, 1)  # the first read writes the cache
        out["cache_cold_s"] = time.perf_counter() - t
        before = _reads(results, sweep, repeat)
        out["uncached_s"] = uncached
        out["cache_ratio"] = {k: uncached[k] / before[k] for k in before}
        out["cli_before_s"] = _cli(results, sweep)
        shutil.rmtree(cache_dir)
        out["cli_cold_s"] = _cli(results, sweep, ("results",))  # the command that writes the cache
        out["results_peak_mb"] = _peak_mb(f"from robustsweep.cli import main; main(['results', {sweep!r}, "
                                          f"'--results', {results!r}])")
        out["import_peak_mb"] = _peak_mb("import polars, pyarrow.parquet; from robustsweep.cli import main; "
                                         "import robustsweep.report.aggregate")
        out["results_peak_ratio"] = out["results_peak_mb"] / out["import_peak_mb"]
        out["delta"] = _delta(d, results, sweep, 20 if size == "tiny" else 1000)
        t = time.perf_counter()
        r = compact(results, sweep)
        out["compact_s"] = time.perf_counter() - t
        out["compact_parts"] = r.parts
        after = _reads(results, sweep, repeat)
        out["before_s"], out["after_s"] = before, after
        out["compact_ratio"] = {k: before[k] / after[k] for k in before}
        out["cli_after_s"] = _cli(results, sweep)
    return out


def status_only(n: int) -> dict[str, Any]:
    """``robustsweep status`` at n trials (100,000 for the issue's target), without compaction; 2,000 trials
    written by ``write_trial``, the rest cloned (status reads names only). ``cli_status_no_sidecar_s``: the first
    ``status`` of a sweep written before ``trial_ids.json`` existed (it parses ``sweep.json`` and writes the sidecar)."""
    from bench.store_data import make_sweep

    with tempfile.TemporaryDirectory() as tmp:
        results = str(Path(tmp) / "r")
        make_sweep(results, "big", n, fsync=False, workers=2, written=min(n, 2000))
        runs = [_cli(results, "big", only=("status",))["status"] for _ in range(3)]
        from robustsweep.store.parquet import trial_status
        from robustsweep.sweep.folder import TRIAL_LIST_FILE
        from robustsweep.sweep.status import sweep_status

        fn = _best(lambda: trial_status(results, "big"), 3)
        full = _best(lambda: sweep_status(results, "big"), 3)
        (Path(results) / "big" / TRIAL_LIST_FILE).unlink()
        first = _cli(results, "big", only=("status",))["status"]
    return {"trials": n, "cli_status_s": statistics.median(runs), "trial_status_s": fn, "sweep_status_s": full,
            "cli_status_no_sidecar_s": first, "cpu_count": os.cpu_count()}
