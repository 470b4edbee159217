"""Sweep overhead: the useful-work fraction ``sum(trial_time_s) / (wall x concurrency)`` of a sweep run through
the local Ray Tune backend (Ray start, scheduling, actor set-up, result files included in the wall time), against
the same trials run by a plain serial loop of ``run_trial`` in this process (fraction = sum / wall, concurrency 1).
Figure: ``ratio = fraction_ray / fraction_serial`` (1.0: the scheduler costs nothing beyond a bare loop).

Sweeps (``spec``): ``quickstart`` (``experiments/quickstart.yaml``, 6 trials) and ``deep_bayes_digits`` (the 14-trial
laptop sweep the issue measured, :data:`DEEP_BAYES_DIGITS`); ``tiny`` runs two one-epoch MLP trials instead.

``breakdown`` says where the Ray side's idle slot-seconds (``wall x concurrency - sum(trial_time_s)``) went, from
the trials' own ``started_at`` / ``finished_at`` and this process's clock (the same wall clock on one machine):
``startup_slot_s`` (run start to the first trial of each slot entering ``run_trial``: Ray start, Tune's set-up, the
trial actors' processes and their imports), ``ray_init_s`` (of which ``ray.init``), ``tail_slot_s`` (the last trial
of each slot finishing to the end of the run: imbalance plus Tune's shutdown and the summary) and
``between_slot_s`` (the rest: scheduling, reporting and store checks between trials on a slot).
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TINY = {"name": "bench-tiny", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
        "train": {"epochs": 1}, "eval": {"n_eval": 20}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
        "search": {"seed": {"grid": [0, 1]}}, "resources": {"cpus_per_trial": 1}}
#: ``experiments/deep_bayes_digits.yaml`` as it was when issue 15 measured it (0.90; removed in 56023e8, whose
#: ``p001_whitebox.yaml --scale ci`` is its successor with CW added): the seven deep-Bayes factorisations x 2 seeds
#: on digits, FGSM / PGD-10 / MIM-10 over 4 eps, three detectors. Kept here so the figure stays comparable.
DEEP_BAYES_DIGITS: dict[str, Any] = {
    "name": "deep-bayes-digits", "dataset": {"name": "digits"},
    "model": {"name": "gfz", "dim_z": 16, "hidden": 256, "K": 10, "likelihood": "gaussian_fixed", "sigma": 0.25},
    "train": {"epochs": 40, "batch_size": 64, "lr": 0.002}, "eval": {"n_eval": 200},
    "attacks": [{"name": "fgsm", "eps": [0.05, 0.1, 0.2, 0.3]},
                {"name": "pgd", "eps": [0.05, 0.1, 0.2, 0.3], "steps": 10, "step_size": 0.04},
                {"name": "mim", "eps": [0.05, 0.1, 0.2, 0.3], "steps": 10, "decay": 1.0}],
    "detectors": [{"name": "marginal", "target_fpr": 0.05, "reverse": None},
                  {"name": "logit", "target_fpr": 0.05, "reverse": None, "per_class_alpha": True},
                  {"name": "kl", "target_fpr": 0.05, "per_class_alpha": True}],
    "search": {"model.name": {"grid": ["gfz", "gfy", "gbz", "gby", "dfx", "dfz", "dbx"]}, "seed": {"grid": [0, 1]}},
}
SPECS = ("quickstart", "deep_bayes_digits")


def load_bench_spec(name: str, size: str = "full") -> Any:
    """The validated spec of sweep ``name`` (one of :data:`SPECS`) at ``size`` (``tiny``: two one-epoch MLPs)."""
    from robustsweep.config.spec import load_spec, spec_from_dict

    if name not in SPECS:
        raise ValueError(f"unknown sweep {name!r}; have {', '.join(SPECS)}")
    if size == "tiny":
        return spec_from_dict(TINY)
    if name == "quickstart":
        return load_spec(ROOT / "experiments" / "quickstart.yaml")
    return spec_from_dict(DEEP_BAYES_DIGITS, source="bench DEEP_BAYES_DIGITS")


def _trials(results: str, sweep: str) -> list[tuple[float, float, float]]:
    """(started, finished, trial_time_s) per trial, seconds since the epoch."""
    import polars as pl

    from robustsweep.store.parquet import read_sweep

    df = read_sweep(results, sweep).group_by("trial_id").agg(
        pl.col("started_at").first(), pl.col("finished_at").first(), pl.col("trial_time_s").first())
    return [(s.timestamp(), f.timestamp(), float(t))
            for s, f, t in zip(df["started_at"], df["finished_at"], df["trial_time_s"], strict=True)]


def breakdown(trials: list[tuple[float, float, float]], t0: float, t1: float, slots: int,
              ray_init_s: float | None) -> dict[str, Any]:
    """Where the idle slot-seconds of a run from ``t0`` to ``t1`` on ``slots`` slots went (module docstring)."""
    starts = sorted(s for s, _, _ in trials)[:slots]
    ends = sorted((f for _, f, _ in trials), reverse=True)[:slots]
    idle = slots * (t1 - t0) - sum(t for _, _, t in trials)
    startup = sum(s - t0 for s in starts)
    tail = sum(t1 - f for f in ends)
    return {"idle_slot_s": idle, "startup_slot_s": startup, "tail_slot_s": tail,
            "between_slot_s": idle - startup - tail, "first_trial_start_s": min(starts) - t0,
            "ray_init_s": ray_init_s}


@contextlib.contextmanager
def _timed_ray_init(into: dict[str, float]) -> Iterator[None]:
    """Time the runner's ``ensure_ray`` call (``ray.init``) without changing what it does."""
    from robustsweep.runners import tune as runner

    orig = runner.ensure_ray

    def timed(*a: Any, **k: Any) -> None:
        t = time.perf_counter()
        try:
            orig(*a, **k)
        finally:
            into["ray_init_s"] = time.perf_counter() - t

    runner.ensure_ray = timed
    try:
        yield
    finally:
        runner.ensure_ray = orig


def run(size: str = "full", device: str = "cpu", cpus: int | None = None, backend: str = "ray",
        spec_name: str = "quickstart", address: str | None = None) -> dict[str, Any]:
    """``backend="inline"``: the sweep side runs each trial through ``run_logged`` (store check, running marker,
    log) in this process instead of Ray Tune -- no Ray start, for the smoke test. With ``ray``, a Ray this call
    started is shut down at its end, so each sweep's figure pays its own Ray start (as one ``robustsweep run``).
    ``address``: join that running Ray instead (``ray start --head`` beforehand): the same figure for a user who keeps
    one Ray up across commands (``robustsweep run --address auto``), i.e. without ``ray.init``'s start."""
    import os

    from robustsweep.core.runtime import runtime_for
    from robustsweep.core.trial import run_logged, run_trial
    from robustsweep.runners.tune import LocalBackend
    from robustsweep.sweep.folder import prepare_sweep

    spec = load_bench_spec(spec_name, size)
    cpus = cpus or os.cpu_count() or 1
    out: dict[str, Any] = {"sweep": spec.name, "cpus": cpus, "backend": backend, "address": address}
    timing: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        sw = prepare_sweep(spec, Path(d) / "ray")
        # the runner gives each trial cpus_per_trial threads; the in-process loops must too (torch's default, one
        # per core, made the serial loop 8x slower on 2 loaded cores: OpenMP threads waiting on each other)
        threads = max(1, int(spec.resources.cpus_per_trial))
        rt = replace(runtime_for(sw, cache_dir=str(Path(d) / "cache-ray"), device=device), threads=threads)
        t0, clock0 = time.perf_counter(), time.time()
        if backend == "ray":
            import ray

            started_here = not ray.is_initialized()
            try:
                with _timed_ray_init(timing):
                    LocalBackend(address=address, cpus=None if address else cpus).run(sw, sw.trials, rt)
                wall = time.perf_counter() - t0
            finally:
                if started_here:  # each sweep's figure includes its own Ray start, as a `robustsweep run` does
                    ray.shutdown()  # (not timed, as before: the process used to exit with Ray up)
            concurrency = min(len(sw.trials), int(cpus // max(spec.resources.cpus_per_trial, 1e-9)) or 1)
        else:
            for t in sw.trials:
                run_logged(t, rt)
            wall = time.perf_counter() - t0
            concurrency = 1
        trials = _trials(str(sw.results), sw.name)
        busy = sum(t for _, _, t in trials)
        out["breakdown"] = breakdown(trials, clock0, clock0 + wall, concurrency, timing.get("ray_init_s"))
        serial = prepare_sweep(spec, Path(d) / "serial")
        rt_s = replace(runtime_for(serial, cache_dir=str(Path(d) / "cache-serial"), device=device), threads=threads)
        t0 = time.perf_counter()
        for t in serial.trials:
            run_trial(t, rt_s)
        wall_s = time.perf_counter() - t0
        busy_s = sum(t for _, _, t in _trials(str(serial.results), serial.name))
    frac, frac_s = busy / (wall * concurrency), busy_s / wall_s
    out.update({"trials": len(sw.trials), "concurrency": concurrency, "ray_wall_s": wall, "ray_trial_s": busy,
                "serial_wall_s": wall_s, "serial_trial_s": busy_s, "useful_fraction_ray": frac,
                "useful_fraction_serial": frac_s, "ratio": frac / frac_s})
    return out
