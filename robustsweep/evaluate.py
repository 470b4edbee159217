"""Evaluate one trained model: clean accuracy, then every attack over its whole grid, then the detectors.

The expensive part of a trial (training) happens once; this module sweeps the cheap parts (attack, ε, c, λ, α) on
that one model. Attacks run batched over the evaluation set (``batch_size`` is only a memory knob).
"""
from __future__ import annotations

import json
import math
import time
import typing
from typing import Any, Callable, Iterator

import torch

from robustsweep.metrics import attack_metrics
from robustsweep.registry import ATTACKS
from robustsweep.train import predict


def attack_grid(spec: dict[str, Any]) -> tuple[str | None, list[Any], dict[str, Any]]:
    """Split an attack entry into (grid key, grid values, fixed params). The grid is the one list-valued
    parameter whose declared type is not itself a list; an entry without one is a single point."""
    fn = ATTACKS.get(spec["name"]).fn
    hints = typing.get_type_hints(fn)
    fixed = {k: v for k, v in spec.items() if k != "name"}
    for k, v in fixed.items():
        if isinstance(v, list) and typing.get_origin(hints.get(k)) not in (list, tuple):
            rest = {kk: vv for kk, vv in fixed.items() if kk != k}
            return k, list(v), rest
    return None, [None], fixed


def _batched(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             batch_size: int) -> torch.Tensor:
    return torch.cat([fn(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: list[dict[str, Any]],
    detectors: dict[str, Any] | None = None,
    batch_size: int = 500,
    progress: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one metrics row per (attack, grid value). ``x``/``y`` must already be on the model's device."""
    detectors = detectors or {}
    pred_clean = predict(model, x, batch_size).to(y.device)
    clean_acc = (pred_clean == y).float().mean().item()
    base = {"n_eval": len(x), "clean_accuracy": clean_acc}
    if not attacks:
        yield {**base, "attack": "none"}
        return
    for spec in attacks:
        name = spec["name"]
        fn = ATTACKS.get(name).fn
        key, values, fixed = attack_grid(spec)
        for v in values:
            params = dict(fixed) if key is None else {**fixed, key: v}
            t0 = time.time()
            x_adv = _batched(lambda xb, yb: fn(model, xb, yb, **params), x, y, batch_size)
            attack_time = time.time() - t0
            pred_adv = predict(model, x_adv, batch_size).to(y.device)
            row = {
                **base,
                "attack": name,
                "param": key,
                "value": None if key is None else float(v),
                "eps": float(params["eps"]) if isinstance(params.get("eps"), (int, float)) else None,
                "attack_params": json.dumps(params, sort_keys=True),
                "attack_time_s": attack_time,
                **attack_metrics(x, x_adv, y, pred_clean, pred_adv),
            }
            success = (pred_clean == y) & (pred_adv != y)
            for dname, det in detectors.items():
                row.update(_detection_columns(dname, det, model, x, x_adv, success))
            if progress:
                shown = "" if key is None else f" {key}={v}"
                progress(f"{name}{shown}: adv_accuracy {row['adv_accuracy']:.3f} ({attack_time:.1f}s)")
            yield row


def _detection_columns(name: str, det: Any, model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                       success: torch.Tensor) -> dict[str, Any]:
    from robustsweep.metrics import detection_metrics

    out = detection_metrics(det, model, x, x_adv, success)
    cols = {}
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, float) and math.isnan(v):
            v = None
        cols[f"det.{name}.{k}"] = v
    return cols
