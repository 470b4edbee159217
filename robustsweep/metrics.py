"""Pure functions from (clean inputs, adversarial inputs, labels, predictions) to the numbers the papers report.

Everything here takes tensors already computed by the evaluator, so each metric is testable on hand-built cases.
"""
from __future__ import annotations

import math

import torch


def _mean(t: torch.Tensor) -> float:
    return t.float().mean().item() if t.numel() else math.nan


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example ℓ∞ and ℓ2 norms of the perturbation."""
    d = (x_adv - x).flatten(1)
    return d.abs().amax(dim=1), d.norm(dim=1)


def attack_metrics(
    x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, pred_clean: torch.Tensor, pred_adv: torch.Tensor
) -> dict[str, float]:
    """Accuracy under attack, success rate on initially-correct inputs, perturbation sizes of successes, ρ.

    ρ (paper 002, Table 4) = mean over successful attacks of ‖η‖₂ / ‖x‖₂.
    """
    correct = pred_clean == y
    success = correct & (pred_adv != y)
    linf, l2 = perturbation_norms(x, x_adv)
    xnorm = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    return {
        "adv_accuracy": _mean(pred_adv == y),
        "success_rate": _mean(success[correct]) if correct.any() else math.nan,
        "mean_linf": _mean(linf[success]),
        "mean_l2": _mean(l2[success]),
        "rho": _mean((l2 / xnorm)[success]),
        "n_success": float(success.sum().item()),
    }
