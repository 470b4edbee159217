"""Fake sweeps for the store benchmarks: N trials of 12 rows each, written with the project's own ``write_trial``.

The rows copy a real quickstart trial's columns (every ``CORE`` column, the flattened ``cfg.*`` of a GFZ or an MLP
trial -- two schemas in one sweep, as in the quickstart --, a logit detector's ``det.*`` metrics with its ROC
points, one ``m.*`` metric); 1 % of the trials are failed (one row with an error). ``sweep.json`` lists every
trial, so ``status`` / ``resume`` see a complete sweep. Run:
``python -m bench.store_data /tmp/bigres big 10000`` (``--no-fsync`` skips the per-file fsync: the files are the
same, only written faster, which matters for 100,000 trials on a laptop disk).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ATTACKS = (("fgsm", "eps", (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)), ("pgd", "eps", (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)))
MODELS = ({"name": "gfz", "dim_z": 32, "hidden": 256, "K": 10}, {"name": "mlp", "hidden": 256})
VERSIONS = json.dumps({"polars": "2.1.0", "pyarrow": "26.0.1", "python": "3.11.7", "ray": "2.60.0",
                       "robustsweep": "0.1.0", "torch": "2.13.0+cpu"})


def trial_config(i: int) -> dict[str, Any]:
    """The i-th fake trial: alternating GFZ / MLP, seed i; ids are hashes like the real ones (16 hex chars)."""
    model = dict(MODELS[i % len(MODELS)])
    cfg: dict[str, Any] = {
        "dataset": {"name": "digits"}, "model": model,
        "train": {"epochs": 30, "batch_size": 64, "lr": 0.002, "weight_decay": 0.0}, "eval": {"n_eval": 300},
        "attacks": [{"name": a, p: list(vals)} for a, p, vals in ATTACKS],
        "detectors": [{"name": "logit", "target_fpr": 0.05}], "seed": i,
    }
    body = json.dumps(cfg, sort_keys=True).encode()
    cfg["config_hash"] = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]
    cfg["trial_id"] = hashlib.sha256(body).hexdigest()[:16]
    return cfg


def trial_rows(cfg: dict[str, Any], sweep: str, failed: bool = False) -> list[dict[str, Any]]:
    from robustsweep.store.rows import failed_row, identity

    if failed:
        return [failed_row(cfg, sweep, "RuntimeError: fake failure of trial " + cfg["trial_id"])]
    now = dt.datetime.now(dt.timezone.utc)
    base = {**identity(cfg, sweep), "status": "ok", "n_eval": 300, "clean_accuracy": 0.93, "host": "bench",
            "train_time_s": 12.5, "model_cached": False, "trial_time_s": 20.0, "started_at": now,
            "finished_at": now, "versions": VERSIONS, "git_rev": "0" * 40, "schema_version": 1,
            "config_json": json.dumps(cfg, sort_keys=True)}
    rows = []
    seed = int(cfg["seed"])
    for a, p, vals in ATTACKS:
        for v in vals:
            acc = max(0.0, 0.93 - v * (2.0 if a == "pgd" else 1.5) + (seed % 7) * 0.001)
            rows.append({**base, "attack": a, "param": p, "value": v, "eps": v,
                         "attack_params": json.dumps({p: v}), "adv_accuracy": acc,
                         "success_rate": 1 - acc / 0.93, "mean_linf": v or None, "mean_l2": v * 4 or None,
                         "rho": v * 0.5 or None, "n_success": 300 * (0.93 - acc), "attack_time_s": 0.4,
                         "det.logit.tpr": 0.5 + v, "det.logit.fpr": 0.05, "det.logit.auc": 0.7 + v / 2,
                         "det.logit.roc_fpr": [k / 10 for k in range(11)],
                         "det.logit.roc_tpr": [min(1.0, k / 8) for k in range(11)],
                         "m.min_perturbation": 0.1 + v})
    return rows


def _write_range(results: str, sweep: str, start: int, stop: int, fsync: bool, failed_every: int) -> None:
    from robustsweep.store.parquet import write_trial

    if not fsync:  # only the durability of the fake files changes, not their bytes or the write path's code
        os.fsync = lambda fd: None
    for i in range(start, stop):
        cfg = trial_config(i)
        write_trial(trial_rows(cfg, sweep, failed=failed_every > 0 and i % failed_every == failed_every - 1),
                    results, sweep, cfg["trial_id"])


def clone_trials(results: str | Path, sweep: str, start: int, stop: int, template: int = 0) -> None:
    """Trials start..stop as byte copies of trial ``template``'s file plus their own index entry (what
    ``write_trial`` adds): for ``status`` at 100,000 trials, which reads names only, in seconds instead of minutes.
    Their rows carry the template's trial id, so use them for status figures only."""
    import pyarrow.parquet as pq

    from robustsweep.store.parquet import index_trial, sweep_dir, table_status, trial_path

    src = trial_path(results, sweep, trial_config(template)["trial_id"])
    data, table = src.read_bytes(), pq.read_table(src)
    for i in range(start, stop):
        tid = trial_config(i)["trial_id"]
        dest = trial_path(results, sweep, tid)
        with open(dest, "wb") as f:
            f.write(data)
            inode = os.fstat(f.fileno()).st_ino
        index_trial(sweep_dir(results, sweep), tid, inode, table.schema, table_status(table))


def write_sweep_json(results: str | Path, sweep: str, n: int) -> Path:
    """``sweep.json`` with a valid spec and the n fake trials, and its ``trial_ids.json`` sidecar (what
    ``prepare_sweep`` would write)."""
    from robustsweep.config.spec import spec_from_dict
    from robustsweep.store.atomic import atomic_write_bytes
    from robustsweep.store.parquet import sweep_dir
    from robustsweep.sweep.folder import write_trial_list

    spec = spec_from_dict({"name": sweep, "dataset": {"name": "digits"}, "model": dict(MODELS[0]),
                           "attacks": [{"name": a, p: list(vals)} for a, p, vals in ATTACKS[:1]]})
    doc = {"name": sweep, "spec": spec.model_dump(mode="json"), "trials": [trial_config(i) for i in range(n)],
           "created_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    path = sweep_dir(results, sweep) / "sweep.json"
    data = json.dumps(doc).encode()
    atomic_write_bytes(path, data)
    write_trial_list(path.parent, data, doc["trials"])
    return path


def make_sweep(results: str | Path, sweep: str, n: int, *, fsync: bool = True, workers: int = 1,
               failed_every: int = 100, written: int | None = None) -> float:
    """Write sweep.json and n trial files; returns the write rate (files/s). ``written``: only the first that many
    go through ``write_trial``, the rest are clones (:func:`clone_trials`, status figures only)."""
    write_sweep_json(results, sweep, n)
    if written is not None and written < n:
        rate = make_sweep(results, sweep, written, fsync=fsync, workers=workers, failed_every=failed_every)
        write_sweep_json(results, sweep, n)
        clone_trials(results, sweep, written, n)
        return rate
    t0 = time.perf_counter()
    if workers <= 1:
        _write_range(str(results), sweep, 0, n, fsync, failed_every)
    else:
        step = -(-n // workers)
        with ProcessPoolExecutor(workers) as ex:
            futs = [ex.submit(_write_range, str(results), sweep, s, min(n, s + step), fsync, failed_every)
                    for s in range(0, n, step)]
            for f in futs:
                f.result()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results")
    ap.add_argument("sweep")
    ap.add_argument("n", type=int)
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    rate = make_sweep(a.results, a.sweep, a.n, fsync=not a.no_fsync, workers=a.workers)
    print(f"wrote {a.n} trials to {Path(a.results) / a.sweep} at {rate:.0f} files/s")


if __name__ == "__main__":
    main()
