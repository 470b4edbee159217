"""Attack throughput: robustsweep's FGSM, PGD-L∞, MIM and CW against torchattacks 3.5.1 on the same model, the
same inputs (sklearn digits, 8x8) and the same settings, for a CNN and for GFZ (eq. 2 logits: C x K decoder
passes per forward). Figure: ``ratio = t_torchattacks / t_robustsweep`` (>= 1: ours is at least as fast), both
timed in this process, interleaved, median of ``repeat`` runs; plus images/s of each side.

``ratio_lo`` / ``ratio_hi``: the 2nd lowest and 2nd highest of the per-pair ratios (each run of ours against the
torchattacks run next to it; which of the two runs first alternates). On 2 shared cores one run of PGD-40 on 200
digits (~0.3 s) varies by +-10 %, so a figure is "at parity" when that band holds 1.0, and faster or slower only
when the whole band is.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def _digits(n: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images[:n] / 16.0, dtype=torch.float32).unsqueeze(1).to(device)
    return x, torch.tensor(d.target[:n], dtype=torch.long, device=device)


def _model(name: str, device: str, tiny: bool) -> torch.nn.Module:
    import robustsweep.models  # noqa: F401 -- registers the models
    from robustsweep.registry import MODELS

    kw: dict[str, Any] = {"dim_z": 32, "hidden": 256, "K": 10} if name == "gfz" else {}
    if tiny:
        kw = {"dim_z": 4, "hidden": 16, "K": 2} if name == "gfz" else {"channels": 4, "hidden": 16}
    return MODELS.get(name).fn(input_shape=(1, 8, 8), num_classes=10, **kw).to(device).eval()


def attack_pairs(steps: int) -> dict[str, tuple[Callable, Callable]]:
    """name -> (ours(model, x, y), torchattacks(model, x, y)) with identical settings."""
    import torchattacks

    from robustsweep.attacks import cw, fgsm, mim, pgd

    eps, alpha = 0.1, 0.01
    return {
        "fgsm": (lambda m, x, y: fgsm.fgsm(m, x, y, eps=eps),
                 lambda m, x, y: torchattacks.FGSM(m, eps=eps)(x, y)),
        f"pgd{steps}": (lambda m, x, y: pgd.pgd(m, x, y, eps=eps, steps=steps, step_size=alpha),
                        lambda m, x, y: torchattacks.PGD(m, eps=eps, alpha=alpha, steps=steps)(x, y)),
        f"mim{steps}": (lambda m, x, y: mim.mim(m, x, y, eps=eps, steps=steps, step_size=alpha, decay=1.0),
                        lambda m, x, y: torchattacks.MIFGSM(m, eps=eps, alpha=alpha, steps=steps, decay=1.0)(x, y)),
        f"cw{steps}": (lambda m, x, y: cw.cw(m, x, y, c=1.0, kappa=0.0, steps=steps, lr=0.01),
                       lambda m, x, y: torchattacks.CW(m, c=1.0, kappa=0.0, steps=steps, lr=0.01)(x, y)),
    }


def _time(fn: Callable[..., Any], args: tuple, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn(*args)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t


def run(size: str = "full", device: str = "cpu") -> dict[str, Any]:
    n, steps, repeat = (8, 2, 1) if size == "tiny" else (200, 40, 9)
    x, y = _digits(n, device)
    out: dict[str, Any] = {"n_images": n, "steps": steps, "repeat": repeat, "device": device}
    for model_name in ("cnn", "gfz"):
        model = _model(model_name, device, size == "tiny")
        for name, (ours, ref) in attack_pairs(steps).items():
            torch.manual_seed(0)
            ours(model, x[:4], y[:4]), ref(model, x[:4], y[:4])  # warm-up: first-call allocations
            t_ours, t_ref = [], []
            for i in range(repeat):  # interleaved, so a load spike hits both sides; who goes first alternates
                if i % 2:  # (the second of a pair ran ~4 % faster on GFZ here, whichever side it was)
                    t_ref.append(_time(ref, (model, x, y), device))
                    t_ours.append(_time(ours, (model, x, y), device))
                else:
                    t_ours.append(_time(ours, (model, x, y), device))
                    t_ref.append(_time(ref, (model, x, y), device))
            a, b = statistics.median(t_ours), statistics.median(t_ref)
            pairs = sorted(r / o for o, r in zip(t_ours, t_ref, strict=True))
            k = 1 if len(pairs) >= 5 else 0
            out[f"{model_name}.{name}"] = {"robustsweep_img_s": n / a, "torchattacks_img_s": n / b, "ratio": b / a,
                                           "ratio_lo": pairs[k], "ratio_hi": pairs[-1 - k]}
    return out
