"""The generative classifier of paper 001's Fig. 2: one noisy ring (a hypersphere, in D dimensions) per class.

Li, Bradshaw & Sharma (2019) §3: p(x, y) = p(x | y) p_D(y), p(x | y) = N(x; μ_y(x), σ² I), where μ_y(x) is the point
of ring y nearest to x -- the model behind the "two rings" picture of what marginal, logit, KL and TV detection
reject. The paper gives the rings' centres and radii as known; here they are estimated from the training data
(the paper is silent on how; our choice): c_y = the class mean (a ring sampled uniformly in angle has its centre as
mean), r_y = the mean distance of the class to c_y, and one shared σ² = the mean squared radial residual
(||x - c_y|| - r_y)². No gradient training: ``fit`` computes these moments once, so epochs and learning rate are
ignored. In D > 2 dimensions the same model is a shell per class (the registry contract trains it on 8×8 digits).

Deterministic and differentiable: the logits are exact log p(x, y), so every attack and detector applies.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from robustsweep.registry import MODELS


class RingGenerative(nn.Module):
    kind = "generative"  # read by detect._common.model_kind (reject LOW density, paper 001's direction)

    def __init__(self, input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        d = math.prod(input_shape)
        self.D = d
        self.register_buffer("centers", torch.zeros(num_classes, d))
        self.register_buffer("radii", torch.ones(num_classes))
        self.register_buffer("log_sigma", torch.zeros(()))
        self.register_buffer("log_prior", torch.full((num_classes,), -math.log(num_classes)))

    def fit(self, data, cfg, device: torch.device, progress=None) -> None:
        """Moment estimates of c_y, r_y, σ and p_D(y) from the training data (module docstring)."""
        x, y = data.x_train.flatten(1).double(), data.y_train
        c = torch.stack([x[y == k].mean(0) if (y == k).any() else x.mean(0) for k in range(self.num_classes)])
        dist = (x - c[y]).norm(dim=1)
        r = torch.stack([dist[y == k].mean() if (y == k).any() else dist.mean() for k in range(self.num_classes)])
        resid2 = ((dist - r[y]) ** 2).mean().clamp_min(1e-12)
        counts = torch.bincount(y, minlength=self.num_classes).double().clamp_min(1.0)
        self.centers.copy_(c.float())
        self.radii.copy_(r.float())
        self.log_sigma.copy_(0.5 * resid2.log().float())
        self.log_prior.copy_((counts / counts.sum()).log().float())
        self.to(device)
        if progress:
            progress(f"ring-gen fitted: radii {[round(float(v), 4) for v in r]}, sigma {float(resid2.sqrt()):.4g}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x, y) = -||x - μ_y(x)||² / (2σ²) - D/2 log(2πσ²) + log p_D(y), with ||x - μ_y(x)|| = | ||x - c_y|| - r_y |."""
        xf = x.flatten(1)
        dist = torch.cdist(xf, self.centers.to(xf.dtype))  # (N, C)
        resid = dist - self.radii.to(xf.dtype)
        var = torch.exp(2 * self.log_sigma).to(xf.dtype)
        log_px_y = -0.5 * resid ** 2 / var - 0.5 * self.D * torch.log(2 * math.pi * var)
        return log_px_y + self.log_prior.to(xf.dtype)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self(x), dim=1)


@MODELS.register("ring-gen", kind="generative", stochastic=False, input="any")
def ring_gen(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Paper 001 Fig. 2's generative classifier: p(x|y) = N(x; nearest point of ring y, σ²I), rings fitted from the
    training data by moments (no gradient training)."""
    return RingGenerative(input_shape, num_classes)
