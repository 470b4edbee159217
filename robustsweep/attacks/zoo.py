"""ZOO (Chen et al. 2017), the ZOO-ADAM variant used by paper 002: black-box, logits/probabilities only.

Objective (untargeted, on log-probabilities as in ZOO and paper 002):
    ||x' - x||² + c · max(log F_y(x') - max_{i≠y} log F_i(x'), -kappa).
Every step picks ``coords`` random coordinates per example, estimates the partial derivatives by symmetric
finite differences (f(x' + h e_i) - f(x' - h e_i)) / 2h — 2·coords queries per example, all examples queried in
one batched call — and applies coordinate-wise Adam (per-coordinate moments and step counters, as in Chen et al.'s
Algorithm 2), then clips to [0, 1] (paper 002: "we simply clipped the coordinates to be in the box"). The best
(smallest-L2) successful iterate per example is returned, the last iterate where none succeeded.
"""
from __future__ import annotations

import torch

from robustsweep.attacks._util import margin
from robustsweep.registry import ATTACKS


@torch.no_grad()
def _objective(model: torch.nn.Module, xq: torch.Tensor, x0: torch.Tensor, y: torch.Tensor, c: float,
               kappa: float, max_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ZOO loss and the predicted label for a batch of queries (x0, y aligned with xq)."""
    outs = [model(xq[i : i + max_batch]).log_softmax(1) for i in range(0, len(xq), max_batch)]
    logp = torch.cat(outs)
    dist = (xq - x0).flatten(1).pow(2).sum(1)
    return dist + c * margin(logp, y).clamp_min(-kappa), logp.argmax(1)


@ATTACKS.register("zoo")
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
) -> torch.Tensor:
    """ZOO-ADAM: coordinate-wise Adam on symmetric finite-difference gradient estimates (queries only)."""
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
    for _ in range(steps):
        # k distinct random coordinates per example
        cols = torch.rand(n, d, generator=gen).argsort(1)[:, :k].to(x.device)
        g = torch.empty(n, k, device=x.device, dtype=x.dtype)
        per_chunk = max(1, max_batch // (2 * k))  # examples whose 2k queries fit in one model call
        kk = torch.arange(k, device=x.device)[None, :]
        for j in range(0, n, per_chunk):
            sl = slice(j, j + per_chunk)
            nc = len(xa[sl])
            q = xa[sl][:, None, None, :].repeat(1, 2, k, 1)  # (nc, 2, k, d): +h and -h on coordinate cols
            ii = torch.arange(nc, device=x.device)[:, None]
            q[ii, 0, kk, cols[sl]] += h
            q[ii, 1, kk, cols[sl]] -= h
            x0q = x0[sl].repeat_interleave(2 * k, dim=0)
            yq = y[sl].repeat_interleave(2 * k)
            loss, _ = _objective(model, q.view(-1, *shape), x0q.view(-1, *shape), yq, c, kappa, max_batch)
            loss = loss.view(nc, 2, k)
            g[sl] = (loss[:, 0] - loss[:, 1]) / (2 * h)
        mi = beta1 * m[rows, cols] + (1 - beta1) * g
        vi = beta2 * v[rows, cols] + (1 - beta2) * g * g
        ti = t[rows, cols] + 1
        m[rows, cols], v[rows, cols], t[rows, cols] = mi, vi, ti
        mhat = mi / (1 - beta1**ti)
        vhat = vi / (1 - beta2**ti)
        xa[rows, cols] = (xa[rows, cols] - lr * mhat / (vhat.sqrt() + 1e-8)).clamp(0, 1)
        # track the best successful iterate
        _, pred = _objective(model, xa.view(n, *shape), x, y, c, kappa, max_batch)
        l2 = (xa - x0).pow(2).sum(1)
        better = (pred != y) & (l2 < best_l2)
        best_l2 = torch.where(better, l2, best_l2)
        best[better] = xa[better]
    out = torch.where(torch.isfinite(best_l2)[:, None], best, xa)
    return out.view_as(x)
