"""ZOO (Chen et al. 2017), the ZOO-ADAM variant used by paper 002: black-box, logits/probabilities only.

Objective (untargeted, on log-probabilities as in ZOO and paper 002):
    ||x' - x||² + c · max(log F_y(x') - max_{i≠y} log F_i(x'), -kappa).
Every step picks ``coords`` random coordinates per example, estimates the partial derivatives by symmetric
finite differences (f(x' + h e_i) - f(x' - h e_i)) / 2h — 2·coords queries per example, all examples queried in
one batched call — and applies coordinate-wise Adam (per-coordinate moments and step counters, as in Chen et al.'s
Algorithm 2), then clips to [0, 1] (paper 002: "we simply clipped the coordinates to be in the box"). The best
(smallest-L2) successful iterate per example is returned, the last iterate where none succeeded.

Stochastic models (deep-Bayes: fresh importance samples on every call). With h = 1e-4 a partial difference is
~h·|∂f|, orders of magnitude below the Monte-Carlo noise between two independent evaluations (σ ≈ 1 nat of margin
on a digits GFZ): the plain estimate is noise of size σ/2h and ZOO stalls, overstating robustness.
``shared_draws=True`` (default) uses common random numbers: the +h and the -h queries are evaluated in two equally
sized calls inside :func:`robustsweep.models.draws.shared_draws` with the same seed (new each step, derived from
``seed``), so both see identical noise and the difference is that of one smooth fixed-sample objective.
``draws`` > 1 averages every query's loss (and the prediction used to track the best iterate) over that many
draws. Deterministic models skip all of this (:func:`~robustsweep.models.draws.is_stochastic`): their result is
bit-for-bit the same either way.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from robustsweep.attacks._util import margin
from robustsweep.models import draws as _draws
from robustsweep.registry import ATTACKS


@torch.no_grad()
def _objective(model: torch.nn.Module, xq: torch.Tensor, x0: torch.Tensor, y: torch.Tensor, c: float,
               kappa: float, max_batch: int, seeds: Sequence[int | None] = (None,)
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """ZOO loss and the predicted label for a batch of queries (x0, y aligned with xq).

    One pass per entry of ``seeds`` (an int: under shared draws with that seed; None: a fresh draw); the loss is
    averaged over the passes and the label is the argmax of the averaged log-probabilities.
    """
    losses, logps = [], []
    dist = (xq - x0).flatten(1).pow(2).sum(1)
    for s in seeds:
        with _draws.shared_draws(model, s):
            outs = [model(xq[i : i + max_batch]).log_softmax(1) for i in range(0, len(xq), max_batch)]
        logp = torch.cat(outs)
        losses.append(dist + c * margin(logp, y).clamp_min(-kappa))
        logps.append(logp)
    if len(seeds) == 1:
        return losses[0], logps[0].argmax(1)
    return torch.stack(losses).mean(0), torch.stack(logps).mean(0).argmax(1)


@torch.no_grad()
def _coord_grad(model: torch.nn.Module, xa: torch.Tensor, x0: torch.Tensor, y: torch.Tensor, cols: torch.Tensor,
                shape: tuple[int, ...], h: float, c: float, kappa: float, max_batch: int,
                seeds: Sequence[int | None] = (None,), split: bool = False) -> torch.Tensor:
    """Symmetric finite differences (n, k) of the ZOO loss at xa (n, d) along the coordinates ``cols`` (n, k).

    ``split=False``: the ±h queries go through the model together (2k rows per example). ``split=True``: the +h
    and the -h queries are two equally sized calls, so under a shared-draws seed the query pair of coordinate
    (i, j) sees the same noise (row i·k + j of both calls).
    """
    n, k = cols.shape
    g = torch.empty(n, k, device=xa.device, dtype=xa.dtype)
    per_chunk = max(1, max_batch // (2 * k))  # examples whose 2k queries fit in one model call
    kk = torch.arange(k, device=xa.device)[None, :]
    for j in range(0, n, per_chunk):
        sl = slice(j, j + per_chunk)
        nc = len(xa[sl])
        q = xa[sl][:, None, None, :].repeat(1, 2, k, 1)  # (nc, 2, k, d): +h and -h on coordinate cols
        ii = torch.arange(nc, device=xa.device)[:, None]
        q[ii, 0, kk, cols[sl]] += h
        q[ii, 1, kk, cols[sl]] -= h
        if split:
            x0q = x0[sl].repeat_interleave(k, dim=0).view(-1, *shape)
            yq = y[sl].repeat_interleave(k)
            plus, _ = _objective(model, q[:, 0].reshape(-1, *shape), x0q, yq, c, kappa, max_batch, seeds)
            minus, _ = _objective(model, q[:, 1].reshape(-1, *shape), x0q, yq, c, kappa, max_batch, seeds)
            g[sl] = ((plus - minus) / (2 * h)).view(nc, k)
        else:
            x0q = x0[sl].repeat_interleave(2 * k, dim=0)
            yq = y[sl].repeat_interleave(2 * k)
            loss, _ = _objective(model, q.view(-1, *shape), x0q.view(-1, *shape), yq, c, kappa, max_batch, seeds)
            loss = loss.view(nc, 2, k)
            g[sl] = (loss[:, 0] - loss[:, 1]) / (2 * h)
    return g


@ATTACKS.register("zoo", norm=None, threat="score", queries="coords")
@torch.no_grad()
def zoo(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    c: float = 10.0,
    kappa: float = 0.0,
    steps: int = 100,
    coords: int = 128,
    h: float = 1e-4,
    lr: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.999,
    seed: int = 0,
    max_batch: int = 16384,
    shared_draws: bool = True,
    draws: int = 1,
) -> torch.Tensor:
    """ZOO-ADAM: coordinate-wise Adam on symmetric finite-difference gradient estimates (queries only).

    ``seed`` picks the coordinates and, for stochastic models, seeds the shared draws (step t, draw r use
    ``derive_seed(seed, t, r)``, independent of the coordinate generator). ``shared_draws``: the two queries of
    each difference see the same noise (see the module docstring); ``draws``: average each query over that many.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    stochastic = _draws.is_stochastic(model)
    split = stochastic and shared_draws
    fresh = [None] * (draws if stochastic else 1)
    x = x.detach()
    n, d = len(x), x[0].numel()
    k = min(int(coords), d)
    x0 = x.flatten(1)
    xa = x0.clone()
    m = torch.zeros_like(x0)
    v = torch.zeros_like(x0)
    t = torch.zeros_like(x0)
    best = x0.clone()
    best_l2 = torch.full((n,), float("inf"), device=x.device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rows = torch.arange(n, device=x.device)[:, None].expand(n, k)
    shape = x.shape[1:]
    for step in range(steps):
        # k distinct random coordinates per example
        cols = torch.rand(n, d, generator=gen).argsort(1)[:, :k].to(x.device)
        seeds = [_draws.derive_seed(seed, step, r) for r in range(draws)] if split else fresh
        g = _coord_grad(model, xa, x0, y, cols, shape, h, c, kappa, max_batch, seeds, split)
        mi = beta1 * m[rows, cols] + (1 - beta1) * g
        vi = beta2 * v[rows, cols] + (1 - beta2) * g * g
        ti = t[rows, cols] + 1
        m[rows, cols], v[rows, cols], t[rows, cols] = mi, vi, ti
        mhat = mi / (1 - beta1**ti)
        vhat = vi / (1 - beta2**ti)
        xa[rows, cols] = (xa[rows, cols] - lr * mhat / (vhat.sqrt() + 1e-8)).clamp(0, 1)
        # track the best successful iterate
        _, pred = _objective(model, xa.view(n, *shape), x, y, c, kappa, max_batch, fresh)
        l2 = (xa - x0).pow(2).sum(1)
        better = (pred != y) & (l2 < best_l2)
        best_l2 = torch.where(better, l2, best_l2)
        best[better] = xa[better]
    out = torch.where(torch.isfinite(best_l2)[:, None], best, xa)
    return out.view_as(x)
