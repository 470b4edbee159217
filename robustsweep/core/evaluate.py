"""Evaluate one trained model: clean accuracy, then every attack over its whole grid, then the detectors.

The expensive part of a trial (training) happens once; this module sweeps the cheap parts (attack, ε, c, λ, α) on
that one model. Attacks run batched over the evaluation set (``batch_size`` is only a memory knob).
"""
from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from robustsweep.config.grid import split_grid
from robustsweep.ops.batching import batched, predict
from robustsweep.ops.metrics import (
    attack_metrics,
    counterfactual_speed,
    mean_minimum_perturbation,
)
from robustsweep.registry import ATTACKS


def attack_grid(spec: dict[str, Any]) -> tuple[str | None, list[Any], dict[str, Any]]:
    """Split an attack entry into (grid key, grid values, fixed params) -- the rule of :mod:`robustsweep.config.grid`."""
    return split_grid(ATTACKS.get(spec["name"]).fn, spec)


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: list[dict[str, Any]],
    detectors: dict[str, Any] | None = None,
    batch_size: int = 500,
    progress: Callable[[str], None] | None = None,
    counterfactual: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one metrics row per (attack, grid value). ``x``/``y`` must already be on the model's device.

    An ε grid of two or more values also gets ``m.min_perturbation``: the mean over initially-correct inputs of
    the smallest ε that fooled each one, max(ε)+0.1 when none did (paper 001, footnote 4), on every row of that
    attack. ``counterfactual`` adds one row per method with the counterfactual speed of paper 000."""
    detectors = detectors or {}
    pred_clean = predict(model, x, batch_size).to(y.device)
    clean_acc = (pred_clean == y).float().mean().item()
    base = {"n_eval": len(x), "clean_accuracy": clean_acc}
    if not attacks and not counterfactual:
        yield {**base, "attack": "none"}
        return
    correct = pred_clean == y
    for spec in attacks:
        name = spec["name"]
        fn = ATTACKS.get(name).fn
        key, values, fixed = attack_grid(spec)
        rows, successes = [], []
        for v in values:
            params = dict(fixed) if key is None else {**fixed, key: v}
            t0 = time.time()
            x_adv = batched(functools.partial(fn, model, **params), x, y, batch_size=batch_size)
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
            success = correct & (pred_adv != y)
            successes.append(success)
            for dname, det in detectors.items():
                row.update(_detection_columns(dname, det, model, x, x_adv, success))
            if progress:
                shown = "" if key is None else f" {key}={v}"
                progress(f"{name}{shown}: adv_accuracy {row['adv_accuracy']:.3f} ({attack_time:.1f}s)")
            rows.append(row)
        if key == "eps" and len(values) > 1:
            mmp = mean_minimum_perturbation(values, torch.stack(successes), mask=correct)
            for r in rows:
                r["m.min_perturbation"] = mmp
        yield from rows
    if counterfactual:
        yield from _counterfactual_rows(model, x, y, base, counterfactual, progress)


def _counterfactual_rows(model, x, y, base, cf: dict[str, Any], progress) -> Iterator[dict[str, Any]]:
    from robustsweep.attacks.speed import accuracy_per_iteration

    for method in cf["methods"]:
        t0 = time.time()
        accs = accuracy_per_iteration(model, x, y, method=method, eps=cf["eps"], step_size=cf["step_size"],
                                      max_iter=cf["max_iter"])
        speed = counterfactual_speed(accs, cf["threshold"], cf["max_iter"])
        if progress:
            progress(f"counterfactual speed ({method}): {speed['cf_speed']:.0f} iterations")
        yield {**base, "attack": f"cf-{method}", "param": "iterations", "value": speed["cf_speed"],
               "eps": float(cf["eps"]), "attack_params": json.dumps(cf, sort_keys=True),
               "adv_accuracy": accs[int(speed["cf_speed"])], "attack_time_s": time.time() - t0,
               "m.cf_speed": speed["cf_speed"], "m.cf_reached": speed["cf_reached"], "m.acc_curve": accs}


def _detection_columns(name: str, det: Any, model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                       success: torch.Tensor) -> dict[str, Any]:
    from robustsweep.ops.metrics import detection_metrics

    out = detection_metrics(det, model, x, x_adv, success)
    cols = {}
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, float) and math.isnan(v):
            v = None
        cols[f"det.{name}.{k}"] = v
    return cols
