"""Core performance ratios of robustsweep (see bench/README.md). Run: python bench/bench_core.py [--device cuda]."""
from __future__ import annotations

import argparse
import json
import math
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def median_of(fn, repeat: int = 7) -> float:
    ts = sorted(best_of(fn, 1) for _ in range(repeat))
    return ts[repeat // 2]


def best_of(fn, repeat: int = 3) -> float:
    ts = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return min(ts)


def per_class_logits(model, x: torch.Tensor) -> torch.Tensor:
    """Baseline: the same estimator, one class at a time (what a naive implementation does)."""
    outs = []
    for c in range(model.num_classes):
        y = torch.full((len(x),), c, dtype=torch.long, device=x.device)
        yv = F.one_hot(y, model.num_classes).to(x.dtype).unsqueeze(0)
        ctx = model._context(x)
        mu, lv = model._q(model.q_x(x), yv)
        z = mu + torch.exp(0.5 * lv) * torch.randn(model.K, *mu.shape, device=x.device)
        prior = model._prior(yv, ctx)
        from robustsweep.models.likelihoods import log_normal, log_std_normal

        log_pz = log_std_normal(z) if prior is None else log_normal(z, *prior)
        logw = log_pz + model._log_py(z, yv, y.unsqueeze(0), ctx) + model._log_px(z, yv, ctx) - log_normal(z, mu, lv)
        outs.append(torch.logsumexp(logw, 0).squeeze(0) - math.log(model.K))
    return torch.stack(outs, 1)


def bench_logits(device: torch.device) -> dict:
    """Eq. 2 logits for 500 inputs: one pass over classes x samples (inputs chunked to ``max_rows`` rows, the
    default), the same without chunking, and a per-class loop. Medians of 7 runs."""
    from robustsweep.registry import MODELS

    model = MODELS.get("gfz").fn(input_shape=(1, 8, 8), num_classes=10, dim_z=32, hidden=256, K=10).to(device).eval()
    x = torch.rand(500, 1, 8, 8, device=device)
    with torch.no_grad():
        a, b = model.logits(x).mean().item(), per_class_logits(model, x).mean().item()  # same estimator
        t_loop = median_of(lambda: per_class_logits(model, x))
        t_chunked = median_of(lambda: model.logits(x))
        default_rows, model.max_rows = model.max_rows, 10**12
        t_one = median_of(lambda: model.logits(x))
        model.max_rows = default_rows
    return {"chunked_s": t_chunked, "one_pass_s": t_one, "per_class_loop_s": t_loop,
            "speedup_vs_per_class": t_loop / t_chunked, "speedup_vs_one_pass": t_one / t_chunked,
            "max_rows": default_rows, "mean_logit_batched": a, "mean_logit_loop": b}


def bench_grid(device: str) -> dict:
    from robustsweep.config.spec import spec_from_dict
    from robustsweep.core.trial import Runtime, run_trial

    eps = [0.0, 0.05, 0.1, 0.2, 0.3]
    base = {"name": "b", "dataset": {"name": "digits"}, "model": {"name": "gfz", "dim_z": 16, "hidden": 256, "K": 5},
            "train": {"epochs": 5}, "eval": {"n_eval": 200}}
    with tempfile.TemporaryDirectory() as d:
        # warm-up (imports, data set load, first-call allocations) so neither side pays it
        (warm,) = spec_from_dict({**base, "train": {"epochs": 1}, "attacks": [{"name": "fgsm", "eps": [0.1]}]}).expand()
        run_trial(warm, Runtime(results=d, sweep="warm", device=device, cache_dir=None))
        (one,) = spec_from_dict({**base, "attacks": [{"name": "fgsm", "eps": eps}]}).expand()
        t0 = time.perf_counter()
        run_trial(one, Runtime(results=d, sweep="b", device=device, cache_dir=str(Path(d) / "c1")))
        t_grid = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i, e in enumerate(eps):
            (t,) = spec_from_dict({**base, "attacks": [{"name": "fgsm", "eps": [e]}]}).expand()
            run_trial(t, Runtime(results=d, sweep="b", device=device, cache_dir=str(Path(d) / f"p{i}")))
        t_per = time.perf_counter() - t0
    return {"grid_in_one_trial_s": t_grid, "one_trial_per_eps_s": t_per, "speedup": t_per / t_grid, "grid": len(eps)}


def bench_cache(device: str) -> dict:
    from robustsweep.config.spec import spec_from_dict
    from robustsweep.core.trial import Runtime, run_trial

    doc = {"name": "c", "dataset": {"name": "digits"}, "model": {"name": "gfz", "dim_z": 16, "hidden": 256},
           "train": {"epochs": 5}, "eval": {"n_eval": 50}, "attacks": [{"name": "fgsm", "eps": [0.1]}]}
    with tempfile.TemporaryDirectory() as d:
        (t,) = spec_from_dict(doc).expand()
        rt = Runtime(results=d, sweep="c", device=device, cache_dir=str(Path(d) / "cache"))
        first = run_trial(t, rt)[0]
        second = run_trial(t, rt)[0]
    return {"train_s": first["train_time_s"], "first_trial_s": first["trial_time_s"],
            "second_trial_s": second["trial_time_s"], "second_cached": second["model_cached"],
            "speedup": first["trial_time_s"] / second["trial_time_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.manual_seed(0)
    res = {"host": socket.gethostname(), "device": a.device, "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    res["logits_batched"] = bench_logits(torch.device(a.device))
    print("logits_batched", json.dumps(res["logits_batched"]))
    res["grid_in_trial"] = bench_grid(a.device)
    print("grid_in_trial", json.dumps(res["grid_in_trial"]))
    res["cache_reuse"] = bench_cache(a.device)
    print("cache_reuse", json.dumps(res["cache_reuse"]))
    out = Path(a.out or Path(__file__).parent / f"results-{socket.gethostname()}-{a.device}.json")
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
