"""Shared machinery of the threshold detectors: batched logits, α by bisection, thresholds on scores."""
from __future__ import annotations

import torch

from robustsweep.ops.batching import batched_logits


class NotApplicable(TypeError):
    """The detector needs something the model does not offer (e.g. τ thresholds on a non-GMM-VAE model)."""


def logits_of(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits in eval mode, in batches, returned on x's device (one fresh draw for stochastic models)."""
    model.eval()
    return batched_logits(model, x, batch_size)


def model_kind(model: torch.nn.Module) -> str | None:
    """"generative", "discriminative" or None (unknown) for a built model, which does not know its registry name.

    Order: a ``kind`` attribute on the model ("generative" | "discriminative", the registry's vocabulary) wins;
    otherwise the classes the registry's ``kind="discriminative"`` entries build -- the cross-entropy baselines
    (:class:`~robustsweep.models.baselines.Classifier`: ``mlp``, ``cnn``; :class:`~robustsweep.models.backbones.TapNet`:
    ``vgg16``, ``vgg19``, ``resnet18``) -- are discriminative; anything else is unknown. Deliberately NOT "has no
    ``log_marginal``": that method is optional for generative classifiers too (the model contract defaults it to
    logsumexp of the logits), and the deep-Bayes DFX/DBX are deep-Bayes models, not the paper's baselines.
    """
    kind = getattr(model, "kind", None)
    if kind in ("generative", "discriminative"):
        return kind
    from robustsweep.models.backbones import TapNet
    from robustsweep.models.baselines import Classifier

    return "discriminative" if isinstance(model, (Classifier, TapNet)) else None


def fpr_at(z: torch.Tensor, alpha: float) -> float:
    return (z > alpha).float().mean().item()


def alpha_for_fpr(z: torch.Tensor, target_fpr: float = 0.05, lo: float = 0.0, hi: float = 3.0,
                  iters: int = 60) -> float:
    """Smallest α with FPR(α) = mean(z > α) <= target_fpr, by bisection (deep-Bayes code: α ∈ [0, 3]).

    FPR is non-increasing in α, so bisection converges to the FPR step at the target. The bracket is widened
    (doubling away from 0) only when [lo, hi] cannot reach the target -- heavy tails or very skewed statistics --
    because silently returning an end point would miss the requested FPR.
    """
    if not 0 < target_fpr < 1:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    z = z.detach().float().flatten()
    z = z[torch.isfinite(z)] if torch.isfinite(z).any() else z
    for _ in range(64):
        if fpr_at(z, hi) <= target_fpr:
            break
        hi = hi * 2 if hi > 0 else 1.0
    for _ in range(64):
        if fpr_at(z, lo) > target_fpr:
            break
        lo = lo * 2 if lo < 0 else -1.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        if fpr_at(z, mid) <= target_fpr:
            hi = mid
        else:
            lo = mid
    return hi


def standardise(stat: torch.Tensor, group: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(stat - mean_g) / std_g with per-group statistics (group 0 everywhere for a global threshold)."""
    return (stat - mean[group]) / std[group]


def group_stats(stat: torch.Tensor, group: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group mean and std of ``stat``; a group without (enough) data falls back to the pooled values."""
    finite = torch.isfinite(stat)
    pooled_m = stat[finite].mean() if finite.any() else torch.tensor(0.0)
    pooled_s = stat[finite].std() if finite.sum() > 1 else torch.tensor(1.0)
    mean = torch.full((n_groups,), float(pooled_m), device=stat.device)
    std = torch.full((n_groups,), float(pooled_s), device=stat.device)
    for g in range(n_groups):
        sel = (group == g) & finite
        if sel.sum() > 1:
            mean[g] = stat[sel].mean()
            std[g] = stat[sel].std()
    std = torch.where(std > 0, std, torch.full_like(std, max(float(pooled_s), 1e-12)))
    return mean, std.clamp_min(1e-12)
