"""Paper 001's Bayesian neural network baseline: Monte-Carlo (Bernoulli) dropout, dropout rate 0.3, K = 10 draws.

§4 of Li, Bradshaw & Sharma (2019): "a Bayesian neural network (BNN) with Bernoulli dropout (dropout rate 0.3) ...
The constructed BNN has 2x more channels than LVM-based classifiers ... We use K = 10 Monte Carlo samples for all
the classifiers." Figs. 3-4 compare the deep-Bayes classifiers against it, because dropout BNNs are the known
*randomised discriminative* defence (Li & Gal 2017, Feinman et al. 2017): without it the comparison could not tell
"generative" from merely "stochastic".

What the public code does (deepgenerativeclassifier/DeepBayes; the BNN's own training script is not published):

- ``models/convnet.py``: dropout ``p = 0.3`` after every conv layer and every hidden dense layer (Keras
  ``K.dropout``, placed before the ReLU; for ReLU that is the same function as after it, which is what we do);
- ``test_attacks/attack.py``: the BNN runs with Keras' learning phase set to *training* at test time "in order to
  run test-time dropout" -- dropout is ON at evaluation; that is the model's randomness;
- ``test_attacks/superwhite.py``: the BNN's K snapshots are combined as ``combine_logits='ensemble'``, i.e.
  log of the mean softmax: ``logits = log (1/K) sum_k softmax(f_k(x))``. That is our ``forward``.

Choices where the paper is silent: the conv variant mirrors our LVM encoder
(:class:`robustsweep.models.nets.XEncoder`: 3x3 conv c, two stride-2 4x4 convs 2c, one dense layer) with c doubled
(64 instead of 32: "2x more channels"); the dense width stays the LVMs' 500. The MLP variant (8x8 digits, flat
inputs) doubles the width instead (hidden 1000 = 2 x the deep-Bayes 500). Training minimises the cross-entropy of
one dropout draw per example and step (standard MC-dropout training, Gal & Ghahramani 2016).

Dropout masks are drawn through :mod:`robustsweep.models.draws`, so inside ``shared_draws`` two calls on equally
sized batches use the same masks (common random numbers for SPSA / ZOO), and outside it they come from the global
RNG like every other stochastic model here.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from robustsweep.models import draws
from robustsweep.models.nets import check_arch
from robustsweep.registry import MODELS


def _conv_blocks(input_shape: tuple[int, ...], channels: int) -> list[nn.Module]:
    """The LVM encoder's conv stack (nets.XEncoder), one module per layer so dropout can follow each ReLU."""
    c = input_shape[0]
    return [
        nn.Sequential(nn.Conv2d(c, channels, 3, padding=1), nn.ReLU()),
        nn.Sequential(nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.ReLU()),
        nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten()),
    ]


class MCDropoutNet(nn.Module):
    """A ReLU network with Bernoulli dropout after every hidden layer, ON in train *and* eval mode.

    ``forward(x)`` (N, C) = log of the mean softmax over ``K`` dropout draws (paper 001's "ensemble" combination);
    ``draw_logits(x, k)`` (k, N, C) are the raw logits of k independent draws; ``loss`` is the cross-entropy of one
    draw. ``stochastic = True`` tells :func:`robustsweep.models.draws.is_stochastic` (attacks spend extra queries).
    """

    stochastic = True
    max_rows: int = 4096  # rows (draws x inputs) per batched pass, as DeepBayes.max_rows

    def __init__(self, blocks: list[nn.Module], head: nn.Module, num_classes: int, p: float, K: int):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate p must be in [0, 1), got {p}")
        if K < 1:
            raise ValueError(f"K (test-time dropout draws) must be >= 1, got {K}")
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.num_classes = num_classes
        self.p, self.K = float(p), int(K)

    def _net(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """One dropout draw per row of ``x``: raw logits (N, C). Masks from ``gen`` if given, else the global RNG."""
        h = x
        keep = 1.0 - self.p
        for block in self.blocks:
            h = block(h)
            if self.p > 0:
                mask = torch.empty_like(h).bernoulli_(keep, generator=gen)
                h = h * mask / keep
        return self.head(h)

    def draw_logits(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Raw logits of ``k`` (default K) independent dropout draws, (k, N, C), all draws in batched passes."""
        k = self.K if k is None else int(k)
        gen = draws.generator(self, x.device)  # one generator per call: masks depend on (seed, N) only
        chunk = max(1, self.max_rows // k)
        outs = []
        for i in range(0, len(x), chunk):
            xc = x[i : i + chunk]
            rep = xc.unsqueeze(0).expand(k, *xc.shape).reshape(k * len(xc), *xc.shape[1:])
            outs.append(self._net(rep, gen).view(k, len(xc), -1))
        return torch.cat(outs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """log (1/K) sum_k softmax(f_k(x)): a log-probability vector per input (public code's 'ensemble')."""
        logp = F.log_softmax(self.draw_logits(x), dim=-1)
        return torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of one dropout draw per example (MC-dropout training)."""
        return F.cross_entropy(self._net(x, draws.generator(self, x.device)), y)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over K draws of -logsumexp(raw logits): the baselines' energy (paper 004) under dropout. The
        forward logits are normalised log-probabilities, whose logsumexp is 0, so they cannot give it."""
        return -torch.logsumexp(self.draw_logits(x), dim=-1).mean(0)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """-energy, as logsumexp of the raw logits is for the deterministic mlp/cnn baselines."""
        return -self.energy(x)


@MODELS.register("bnn", kind="discriminative", stochastic=True, input="any", ci={"hidden": 256}, ci_epochs=3)
def bnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    arch: str = "mlp",
    hidden: int = 1000,
    layers: int = 2,
    channels: int = 64,
    p: float = 0.3,
    K: int = 10,
) -> MCDropoutNet:
    """Paper 001's BNN baseline: MC dropout (p 0.3, ON at test), K = 10 draws combined as log mean softmax.

    Options: arch mlp|conv (conv: the LVM encoder's conv stack with 2x its channels, then one dense layer of width
    ``hidden``; mlp: ``layers`` dense layers of width ``hidden``), p (dropout rate, §4: 0.3), K (test-time draws).
    """
    check_arch(arch, input_shape)
    if arch == "mlp":
        blocks: list[nn.Module] = []
        d = math.prod(input_shape)
        for i in range(max(layers, 1)):
            blocks.append(nn.Sequential(*([nn.Flatten()] if i == 0 else []), nn.Linear(d, hidden), nn.ReLU()))
            d = hidden
    else:
        blocks = _conv_blocks(tuple(input_shape), channels)
        with torch.no_grad():
            flat = nn.Sequential(*blocks)(torch.zeros(1, *input_shape)).shape[1]
        blocks.append(nn.Sequential(nn.Linear(flat, hidden), nn.ReLU()))
    return MCDropoutNet(blocks, nn.Linear(hidden, num_classes), num_classes, p, K)
