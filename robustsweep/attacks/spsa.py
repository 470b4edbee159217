"""SPSA (Uesato et al. 2018): score-based L∞ attack that only reads logits.

Each step estimates the gradient of the margin loss z_y - max_{i≠y} z_i by simultaneous perturbation with
``samples`` Rademacher directions (antithetic pairs x ± δv), takes an Adam step on the perturbation and projects
onto the ε-ball ∩ [0, 1]. Paper 001 uses it as a gradient-masking sanity check (Table 3). Examples whose margin
is already negative are frozen (Uesato et al.'s early stop), which also saves queries. All examples and samples
are evaluated together, in chunks of at most ``max_batch`` model inputs; no gradient of the model is taken.

Stochastic models (deep-Bayes: fresh importance samples on every call). With δ = 0.01 the two queries of a pair
differ by ~δ·|∇f|, far less than the Monte-Carlo noise of two independent evaluations (σ ≈ 1 nat of margin on a
digits GFZ), so the plain estimate is nearly pure noise and SPSA overstates robustness. ``shared_draws=True``
(default) uses common random numbers: the + and the - queries are evaluated in two equally sized calls inside
:func:`robustsweep.models.draws.shared_draws` with the same seed, i.e. with identical noise, so each difference
measures a smooth fixed-sample objective. The seed changes every step (derived from ``seed``), and the pairs of
one example get different noise (different rows), so over directions and steps the attack follows the expected
margin. ``draws`` > 1 averages each query's margin over that many draws (seeds). Deterministic models skip all
of this (:func:`~robustsweep.models.draws.is_stochastic`): their result is bit-for-bit the same either way.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from robustsweep.attacks._util import margin
from robustsweep.models import draws as _draws
from robustsweep.registry import ATTACKS


@torch.no_grad()
def _margins(model: torch.nn.Module, xq: torch.Tensor, yq: torch.Tensor, max_batch: int,
             seeds: Sequence[int | None]) -> torch.Tensor:
    """Margin of every query in chunks of ``max_batch``, averaged over one pass per seed (None = fresh draw)."""
    out = []
    for s in seeds:
        with _draws.shared_draws(model, s):
            out.append(torch.cat([margin(model(xq[i : i + max_batch]), yq[i : i + max_batch])
                                  for i in range(0, len(xq), max_batch)]))
    return out[0] if len(out) == 1 else torch.stack(out).mean(0)


@torch.no_grad()
def _spsa_grad(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, delta: float, samples: int, max_batch: int,
    seeds: Sequence[int | None] = (None,), split: bool = False,
) -> torch.Tensor:
    """SPSA estimate (n, ...) of the margin gradient at x.

    ``split=False``: the ± queries go through the model together (one batch of 2·n·S rows). ``split=True``: the
    + and the - queries are two calls of n·S rows each, so under a shared-draws seed row (i, s) of both sees the
    same noise -- the estimate is then that of ∇ (1/S) Σ_s f_{ξ_s}(x), with ξ_s the noise of row (i, s).
    """
    n, shape = len(x), x.shape[1:]
    v = torch.randint(0, 2, (n, samples, *shape), device=x.device, dtype=x.dtype) * 2 - 1
    if split:
        ys = y.repeat_interleave(samples)
        plus = _margins(model, (x[:, None] + delta * v).flatten(0, 1), ys, max_batch, seeds)
        minus = _margins(model, (x[:, None] - delta * v).flatten(0, 1), ys, max_batch, seeds)
        df = (plus - minus).view(n, samples) / (2 * delta)
    else:
        xs = torch.cat([x[:, None] + delta * v, x[:, None] - delta * v], dim=1).flatten(0, 1)  # (n * 2S, ...)
        ys = y.repeat_interleave(2 * samples)
        losses = _margins(model, xs, ys, max_batch, seeds).view(n, 2 * samples)
        df = (losses[:, :samples] - losses[:, samples:]) / (2 * delta)  # (n, S)
    return (df.view(n, samples, *([1] * len(shape))) * v).mean(1)


@ATTACKS.register("spsa", norm="linf", budget="eps", threat="score", queries="samples")
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
    shared_draws: bool = True,
    draws: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """SPSA L∞: Adam on the Rademacher-estimated gradient of the logit margin (logits only, no backprop).

    ``samples``: Rademacher directions per step. For stochastic models only: ``shared_draws`` evaluates the two
    queries of each finite difference with the same noise (common random numbers, see the module docstring);
    ``draws`` averages every query (and the early-stop check) over that many draws; ``seed`` seeds the shared
    draws (step t, draw r use ``derive_seed(seed, t, r)``). The directions come from the global RNG, as before.
    """
    if eps == 0:
        return x.clone()
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    stochastic = _draws.is_stochastic(model)
    fresh = [None] * (draws if stochastic else 1)
    x = x.detach()
    dx = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.Adam([dx], lr=lr)
    done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    view = (-1,) + (1,) * (x.dim() - 1)
    for step in range(steps):
        with torch.no_grad():
            if len(fresh) == 1:
                done |= margin(model(x + dx), y) < 0
            else:
                done |= torch.stack([margin(model(x + dx), y) for _ in fresh]).mean(0) < 0
        if done.all():
            break
        split = stochastic and shared_draws
        seeds = [_draws.derive_seed(seed, step, r) for r in range(draws)] if split else fresh
        idx = (~done).nonzero().squeeze(1)
        g = torch.zeros_like(x)
        per_chunk = max(1, max_batch // (2 * samples))  # examples whose 2S queries fit in one chunk
        for j in range(0, len(idx), per_chunk):
            sub = idx[j : j + per_chunk]
            g[sub] = _spsa_grad(model, x[sub] + dx.detach()[sub], y[sub], delta, samples, max_batch, seeds, split)
        old = dx.detach().clone()
        opt.zero_grad()
        dx.grad = g
        opt.step()
        with torch.no_grad():
            new = ((x + dx).clamp(0, 1) - x).clamp(-eps, eps)
            dx.copy_(torch.where(done.view(view), old, new))
    return (x + dx.detach()).clamp(0, 1)
