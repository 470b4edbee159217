"""Fractional-GPU packing (issue 15, benchmark 4): the same trials through the real runner (``LocalBackend``, Ray
Tune) on ONE GPU, first one trial at a time (``gpus_per_trial: 1``), then ``k`` at once (``gpus_per_trial: 1/k``).
Figure per ``k``: ``ratio = throughput(k packed) / throughput(one per GPU)`` (trials per second of wall time, each
run paying its own Ray start), plus the GPU's mean utilisation while the trials ran (``torch.cuda.utilization``,
sampled every 0.25 s; needs ``pynvml``, else ``None``).

Ray is started by this module with ``num_gpus=1`` (the first visible GPU), so the packing is Ray's scheduling as a
cluster job would see it. Without CUDA (``device="cpu"``) the same code runs on a *logical* GPU -- Ray schedules by
declared resources, the trials compute on the CPU -- which is what the smoke test runs so the benchmark never rots;
its ratios then measure CPU contention, not a GPU, and the report says ``"logical_gpu": true``.

Trials: the deep-Bayes digits sweep of :mod:`bench.bench_sweep` (7 models x 2 seeds; the GPU work of a paper
sweep at laptop size); ``tiny``: two one-epoch MLPs.
"""
from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any


def _utilisation_sampler(device: str) -> tuple[threading.Event, list[float], threading.Thread | None]:
    stop, samples = threading.Event(), []
    if not device.startswith("cuda"):
        return stop, samples, None
    import torch

    def loop() -> None:
        while not stop.wait(0.25):
            try:
                samples.append(float(torch.cuda.utilization()))
            except Exception:  # no pynvml / NVML: utilisation unknown, throughput still measured
                return

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return stop, samples, th


def _one(spec: Any, k: int, device: str, cpus: int, d: Path) -> dict[str, Any]:
    """The sweep with ``gpus_per_trial = 1/k`` on one (logical) GPU, in a fresh Ray."""
    import ray

    from robustsweep.core.runtime import runtime_for
    from robustsweep.runners.tune import LocalBackend
    from robustsweep.store.parquet import trial_status
    from robustsweep.sweep.folder import prepare_sweep

    res = spec.resources.model_copy(update={"gpus_per_trial": 1.0 / k, "cpus_per_trial": max(1, cpus // k)})
    sw = prepare_sweep(spec.model_copy(update={"resources": res}), d / f"pack{k}")
    rt = replace(runtime_for(sw, cache_dir=str(d / f"cache{k}"), device=device), threads=res.cpus_per_trial)
    ray.init(address="local", num_cpus=cpus, num_gpus=1, include_dashboard=False, log_to_driver=False)
    stop, samples, th = _utilisation_sampler(device)
    t0 = time.perf_counter()
    try:
        LocalBackend(cpus=cpus).run(sw, sw.trials, rt)
    finally:
        wall = time.perf_counter() - t0
        stop.set()
        if th is not None:
            th.join()
        ray.shutdown()
    st = trial_status(sw.results, sw.name)
    ok = sum(1 for v in st.values() if v["status"] == "ok")
    return {"packed": k, "gpus_per_trial": 1.0 / k, "cpus_per_trial": res.cpus_per_trial, "trials": len(sw.trials),
            "ok": ok, "wall_s": wall, "trials_per_s": ok / wall,
            "gpu_util_mean": sum(samples) / len(samples) if samples else None}


def run(size: str = "full", device: str = "cuda", packs: tuple[int, ...] = (1, 2, 4),
        cpus: int | None = None) -> dict[str, Any]:
    import os

    from bench.bench_sweep import load_bench_spec

    spec = load_bench_spec("deep_bayes_digits", size)
    cpus = cpus or os.cpu_count() or 1
    packs = tuple(sorted({1, *packs}))
    out: dict[str, Any] = {"device": device, "logical_gpu": not device.startswith("cuda"), "cpus": cpus,
                           "sweep": spec.name}
    with tempfile.TemporaryDirectory() as tmp:
        runs = {k: _one(spec, k, device, cpus, Path(tmp)) for k in packs}
    base = runs[1]["trials_per_s"]
    for k, r in runs.items():
        if k > 1:
            r["ratio"] = r["trials_per_s"] / base if base > 0 else float("nan")
        out[f"pack{k}"] = r
    return out
