"""ROAR, the retrain half (paper 000 §4.1 / Table 1; Hooker et al. 2019): remove, retrain from scratch, re-evaluate.

For every point of a ``roar`` attack entry's grid (usually ``method: [ig, random]``) on the trial's trained model:

1. remove: the ⌈fraction · P⌉ most IG-attributed pixels of every training, validation and attacked test image (or
   random ones: the control) are replaced by the training set's per-feature mean ``data.mean``
   (:func:`robustsweep.attacks.roar.roar_inputs`; attributions come from the trial's model, as in ROAR);
2. retrain: a fresh model of the trial's config is trained from scratch on the removed training set with the
   trial's own training settings (``retrain``: the trial passes its own ``train_model``, so the model cache and
   training checkpoints work as for any model; a fusion model's backbone is retrained too -- the removed data has
   another fingerprint);
3. re-evaluate: accuracy of the retrained model on the removed test images.

One row per grid point, ``attack = roar-<method>``, ``param = fraction``, ``value`` = the fraction,
``adv_accuracy`` = the ROAR accuracy, ``clean_accuracy`` = the trial model's accuracy on the untouched images (as
on every other row of the trial), ``m.roar_degradation`` = clean - ROAR accuracy: the number paper 000's Table 1
prints (higher = the attribution found what the model relies on). Why rows and not ``m.*`` columns on the trial's
other rows: ROAR is a grid like an attack's (method, fraction) and each point has its own accuracy; as rows, the
IG point and its random control sit side by side in the store and any report pivots them by ``attack``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from robustsweep.attacks.roar import roar_inputs
from robustsweep.config.grid import split_grid
from robustsweep.data.base import DataSplit
from robustsweep.models.draws import derive_seed
from robustsweep.ops.train import accuracy, seed_everything
from robustsweep.registry import ATTACKS

Retrain = Callable[[DataSplit, dict[str, Any]], torch.nn.Module]


def is_retrain(spec: dict[str, Any]) -> bool:
    """Whether an attack entry is not an attack on the trained model but a remove-and-retrain (``retrain=True``
    in its registration): the trial runs it here instead of in the evaluator."""
    return bool(ATTACKS.get(spec["name"]).meta.get("retrain"))


def points(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The entry's grid points as complete parameter dicts (the registration's defaults filled in)."""
    key, values, fixed = split_grid(ATTACKS.get(spec["name"]).fn, spec)
    defaults = ATTACKS.get(spec["name"]).defaults()
    for v in values:
        yield {**defaults, **fixed, **({} if key is None else {key: v})}


def removed_split(model: torch.nn.Module, data: DataSplit, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any],
                  seed: int, batch_size: int | None = None) -> DataSplit:
    """The trial's data with pixels removed (training and validation sets, and the attacked test images ``x``)."""
    dev = x.device
    fill = data.mean.to(dev)
    kw = {k: params[k] for k in ("method", "fraction", "steps", "baseline")}
    extra = {} if batch_size is None else {"batch_size": batch_size}
    base_seed = derive_seed(seed, int(params.get("seed", 0)))

    def rm(t: torch.Tensor, part: int) -> torch.Tensor:
        # IG: the same fixed samples everywhere; random control: another draw per split (part)
        s = base_seed if kw["method"] == "ig" else derive_seed(base_seed, part)
        return roar_inputs(model, t.to(dev), fill, seed=s, **kw, **extra).cpu()

    val = {"x_val": rm(data.x_val, 2), "y_val": data.y_val} if data.n_val else {}
    return DataSplit(f"{data.name}-roar-{kw['method']}", rm(data.x_train, 0), data.y_train, rm(x, 1), y.cpu(),
                     data.num_classes, data.class_names, **val)


def roar_rows(spec: dict[str, Any], model: torch.nn.Module, data: DataSplit, x: torch.Tensor, y: torch.Tensor,
              clean_accuracy: float, retrain: Retrain, seed: int, batch_size: int = 500,
              progress: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
    """One row per grid point of the ``roar`` entry ``spec`` (module docstring). ``x``/``y``: the attacked test
    subset, on the model's device; ``retrain(removed_data, roar_key)`` returns a model trained from scratch."""
    for params in points(spec):
        t0 = time.time()
        removed = removed_split(model, data, x, y, params, seed)
        new = retrain(removed, {"roar": params})
        seed_everything(seed)  # a stochastic model's evaluation draws: the same whether it was trained or cached
        dev = next(new.parameters()).device
        acc = accuracy(new, removed.x_test.to(dev), removed.y_test.to(dev), batch_size)
        label = f"{spec.get('label') or 'roar'}-{params['method']}"
        if progress:
            progress(f"{label} fraction={params['fraction']:g}: accuracy {acc:.3f} after retraining "
                     f"(clean {clean_accuracy:.3f}, {time.time() - t0:.1f}s)")
        yield {"n_eval": len(x), "clean_accuracy": clean_accuracy, "attack": label, "param": "fraction",
               "value": float(params["fraction"]), "eps": None, "attack_params": json.dumps(params, sort_keys=True),
               "attack_time_s": time.time() - t0, "adv_accuracy": acc, "m.roar_degradation": clean_accuracy - acc}
