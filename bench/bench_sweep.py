"""Sweep overhead: the useful-work fraction ``sum(trial_time_s) / (wall x concurrency)`` of a sweep run through
the local Ray Tune backend (Ray start, scheduling, actor set-up, result files included in the wall time), against
the same trials run by a plain serial loop of ``run_trial`` in this process (fraction = sum / wall, concurrency 1).
Figure: ``ratio = fraction_ray / fraction_serial`` (1.0: the scheduler costs nothing beyond a bare loop).
``full`` runs ``experiments/quickstart.yaml`` (6 trials); ``tiny`` two one-epoch MLP trials.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "bench-tiny", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
        "train": {"epochs": 1}, "eval": {"n_eval": 20}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
        "search": {"seed": {"grid": [0, 1]}}, "resources": {"cpus_per_trial": 1}}


def _trial_times(results: str, sweep: str) -> float:
    import polars as pl

    from robustsweep.store.parquet import read_sweep

    df = read_sweep(results, sweep)
    return float(df.group_by("trial_id").agg(pl.col("trial_time_s").first())["trial_time_s"].sum())


def run(size: str = "full", device: str = "cpu", cpus: int | None = None, backend: str = "ray") -> dict[str, Any]:
    """``backend="inline"``: the sweep side runs each trial through ``run_logged`` (store check, running marker,
    log) in this process instead of Ray Tune -- no Ray start, for the smoke test."""
    import os

    from robustsweep.config.spec import load_spec, spec_from_dict
    from robustsweep.core.runtime import runtime_for
    from robustsweep.core.trial import run_logged, run_trial
    from robustsweep.runners.tune import LocalBackend
    from robustsweep.sweep.folder import prepare_sweep

    spec = spec_from_dict(TINY) if size == "tiny" else load_spec(ROOT / "experiments" / "quickstart.yaml")
    cpus = cpus or os.cpu_count() or 1
    out: dict[str, Any] = {"sweep": spec.name, "cpus": cpus, "backend": backend}
    with tempfile.TemporaryDirectory() as d:
        sw = prepare_sweep(spec, Path(d) / "ray")
        rt = runtime_for(sw, cache_dir=str(Path(d) / "cache-ray"), device=device)
        t0 = time.perf_counter()
        if backend == "ray":
            LocalBackend(cpus=cpus).run(sw, sw.trials, rt)
            concurrency = min(len(sw.trials), int(cpus // max(spec.resources.cpus_per_trial, 1e-9)) or 1)
        else:
            for t in sw.trials:
                run_logged(t, rt)
            concurrency = 1
        wall = time.perf_counter() - t0
        busy = _trial_times(str(sw.results), sw.name)
        serial = prepare_sweep(spec, Path(d) / "serial")
        rt_s = runtime_for(serial, cache_dir=str(Path(d) / "cache-serial"), device=device)
        t0 = time.perf_counter()
        for t in serial.trials:
            run_trial(t, rt_s)
        wall_s = time.perf_counter() - t0
        busy_s = _trial_times(str(serial.results), serial.name)
    frac, frac_s = busy / (wall * concurrency), busy_s / wall_s
    out.update({"trials": len(sw.trials), "concurrency": concurrency, "ray_wall_s": wall, "ray_trial_s": busy,
                "serial_wall_s": wall_s, "serial_trial_s": busy_s, "useful_fraction_ray": frac,
                "useful_fraction_serial": frac_s, "ratio": frac / frac_s})
    return out
