"""SPSA (Uesato et al. 2018): score-based L∞ attack that only reads logits.

Each step estimates the gradient of the margin loss z_y - max_{i≠y} z_i by simultaneous perturbation with
``samples`` Rademacher directions (antithetic pairs x ± δv), takes an Adam step on the perturbation and projects
onto the ε-ball ∩ [0, 1]. Paper 001 uses it as a gradient-masking sanity check (Table 3). Examples whose margin
is already negative are frozen (Uesato et al.'s early stop), which also saves queries. All examples and samples
are evaluated together, in chunks of at most ``max_batch`` model inputs; no gradient of the model is taken.
"""
from __future__ import annotations

import torch

from robustsweep.attacks._util import margin
from robustsweep.registry import ATTACKS


@torch.no_grad()
def _spsa_grad(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, delta: float, samples: int, max_batch: int
) -> torch.Tensor:
    n, shape = len(x), x.shape[1:]
    v = torch.randint(0, 2, (n, samples, *shape), device=x.device, dtype=x.dtype) * 2 - 1
    xs = torch.cat([x[:, None] + delta * v, x[:, None] - delta * v], dim=1).flatten(0, 1)  # (n * 2S, ...)
    ys = y.repeat_interleave(2 * samples)
    losses = torch.cat(
        [margin(model(xs[i : i + max_batch]), ys[i : i + max_batch]) for i in range(0, len(xs), max_batch)]
    ).view(n, 2 * samples)
    df = (losses[:, :samples] - losses[:, samples:]) / (2 * delta)  # (n, S)
    return (df.view(n, samples, *([1] * len(shape))) * v).mean(1)


@ATTACKS.register("spsa")
def spsa(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    steps: int = 20,
    lr: float = 0.01,
    delta: float = 0.01,
    samples: int = 64,
    max_batch: int = 8192,
) -> torch.Tensor:
    """SPSA L∞: Adam on the Rademacher-estimated gradient of the logit margin (logits only, no backprop)."""
    if eps == 0:
        return x.clone()
    x = x.detach()
    dx = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.Adam([dx], lr=lr)
    done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    view = (-1,) + (1,) * (x.dim() - 1)
    for _ in range(steps):
        with torch.no_grad():
            done |= margin(model(x + dx), y) < 0
        if done.all():
            break
        idx = (~done).nonzero().squeeze(1)
        g = torch.zeros_like(x)
        per_chunk = max(1, max_batch // (2 * samples))  # examples whose 2S queries fit in one chunk
        for j in range(0, len(idx), per_chunk):
            sub = idx[j : j + per_chunk]
            g[sub] = _spsa_grad(model, x[sub] + dx.detach()[sub], y[sub], delta, samples, max_batch)
        old = dx.detach().clone()
        opt.zero_grad()
        dx.grad = g
        opt.step()
        with torch.no_grad():
            new = ((x + dx).clamp(0, 1) - x).clamp(-eps, eps)
            dx.copy_(torch.where(done.view(view), old, new))
    return (x + dx.detach()).clamp(0, 1)
