"""Accuracy after every iteration of I-FGSM / PGD, for the counterfactual speed of paper 000.

Speed = fewest iterations (up to 30) that bring accuracy below 0.4. With a fixed step size the iterates of a
T-step attack are the prefixes of a 30-step one, so one 30-step run gives the whole accuracy-vs-iterations curve
and :func:`robustsweep.ops.metrics.counterfactual_speed` reads the answer off it (instead of 30 separate attacks).
"""
from __future__ import annotations

import torch

from robustsweep.attacks.base import linf_random_start, linf_steps
from robustsweep.ops.batching import batched_logits


def _acc(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (batched_logits(model, x).argmax(1) == y).float().mean().item() if len(x) else 0.0


def accuracy_per_iteration(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str = "ifgsm",
    eps: float = 0.1,
    step_size: float = 0.01,
    max_iter: int = 30,
    eot: int = 1,
) -> list[float]:
    """[acc on clean, acc after 1 step, …, acc after max_iter steps] of I-FGSM (no random start) or PGD
    (uniform random start; entry 0 is then the accuracy at the random start)."""
    if method not in ("ifgsm", "pgd"):
        raise ValueError(f"method must be 'ifgsm' or 'pgd', got {method!r}")
    x_adv = linf_random_start(x, eps) if method == "pgd" and eps > 0 else x.clone()
    accs = [_acc(model, x_adv, y)]
    linf_steps(model, x, y, x_adv, eps, max_iter, step_size, eot, on_step=lambda xa: accs.append(_acc(model, xa, y)))
    return accs
