"""Attack only the test points every compared model classifies correctly (paper 001, CIFAR-binary: "the attacks are
then performed on the test images that all models initially correctly classify, leading to a test set of 1,577
instances").

``eval.correct_for: [gfz, gfy, ...]`` names the models compared: each name replaces the trial's ``model.name`` and
keeps its other options (the seven deep-Bayes factorisations share theirs), so every trial of a sweep over
``model.name`` attacks the *same* points. The other models are trained exactly as that trial's own model would be
(same data, training settings and seed) through the trial's ``train`` callable, so they come from the model cache
when their own trials have run (a per-entry lock makes concurrent trials wait for one training instead of
repeating it). Predictions of a stochastic model are one seeded Monte-Carlo draw per point, and all of this runs
under a forked RNG, so the trial's attacks draw what they would draw without it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustsweep.core.examples import forked_rng
from robustsweep.ops.batching import model_device, predict


def model_variants(cfg: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """The trial config with each name in turn as ``model.name`` (the trial's other model options kept)."""
    return [{**cfg, "model": {**cfg["model"], "name": n}} for n in names]


def common_correct(cfg: dict[str, Any], model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   train: Callable[[dict[str, Any]], torch.nn.Module], batch_size: int = 500,
                   log: Callable[[str], None] | None = None) -> torch.Tensor:
    """Boolean mask over ``x`` of the points every model of ``cfg['eval']['correct_for']`` classifies correctly
    (the trial's own ``model`` stands for its own name)."""
    names = list(cfg["eval"].get("correct_for") or [])
    mask = torch.ones(len(x), dtype=torch.bool)
    with forked_rng(model_device(model)):
        for variant in model_variants(cfg, names):
            m = model if variant["model"]["name"] == cfg["model"]["name"] else train(variant)
            torch.manual_seed(int(cfg["seed"]))
            ok = (predict(m, x.to(model_device(m)), batch_size).cpu() == y.cpu())
            mask &= ok
            if log:
                log(f"correct_for: {variant['model']['name']} classifies {int(ok.sum())}/{len(x)} test points "
                    f"correctly; {int(mask.sum())} left that all models so far get right")
    return mask
