"""Deep CAMA (Zhang, Zhang & Li 2020, "A causal view on robustness of neural networks"; [18] of paper 000): the
causal generative classifier p(x, y, z, m) on the raw image, with no backbone features -- a baseline of paper 000's
§4.2 (Fig. 4/5) and Table 1 (ROAR 0.2462).

Why this shape: paper 000 says its model "extends the approach presented in [18]" by adding discriminative features
x2 to the image x1; Deep CAMA is that model without x2. It is built here as the same
:class:`~robustsweep.models.causal.CausalHead` with ``x2_dim = 0`` -- the same (y, z, m) -> x graph, encoders
q(m|x, y) and q(z|x, y, m), eq.-10 importance-weighted logits -- so the comparison with ``causal`` isolates the
features. Choices where paper 000 is silent about its baseline (said in the experiment files too):

- the networks are paper 000's MLP head (4 encoder / 2 decoder layers) on the flattened image rather than CAMA's own
  convolutional MNIST networks; q(m) is conditioned on (x, y) as in paper 000 (CAMA's q(m|x) ignores y);
- Deep CAMA's fine-tuning of the m-path on manipulated data (:mod:`robustsweep.models.m_finetune`) is on by
  default in the experiment files that use it (``m_finetune``); without it the model is paper 000's head on images.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from robustsweep.data.base import DataSplit
from robustsweep.models.base import options_from
from robustsweep.models.causal import CausalHead
from robustsweep.models.fusion import HeadModel
from robustsweep.models.m_finetune import MFinetune, finetune_m
from robustsweep.ops.train import Progress, TrainConfig, fit_loss
from robustsweep.registry import MODELS


class DeepCAMA(HeadModel):
    """A causal head on the flattened image: logits (eq. 10), ELBO loss, log-marginal for the detectors."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, head_kw: dict,
                 m_finetune: MFinetune | None = None):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.in_dim = math.prod(self.input_shape)
        self.head = CausalHead(self.in_dim, 0, num_classes, **head_kw)
        self.m_finetune = m_finetune

    @property
    def K(self) -> int:
        return self.head.K

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def fit(self, data: DataSplit, cfg: TrainConfig, device: torch.device, progress: Progress | None = None) -> None:
        """Clean training with m = 0 (the generic loop on the ELBO), then CAMA's m fine-tuning when configured."""
        seed = torch.initial_seed()  # the trial runner seeds before training
        fit_loss(self, data.x_train, data.y_train, cfg, device, progress, seed)
        if self.m_finetune is not None:
            finetune_m(self, self.head, self.head_input, data.x_train, data.y_train, self.m_finetune, cfg, device,
                       progress, seed)
        self.eval()


@MODELS.register("deep-cama", kind="generative", stochastic=True, input="any", ci={"hidden": 64, "dim_z": 8})
@options_from(CausalHead, drop=("x1_dim", "x2_dim", "m_mode"))
def deep_cama(input_shape: tuple[int, ...], num_classes: int, m_finetune: dict | None = None, **head: Any) -> DeepCAMA:
    """Deep CAMA [18 of paper 000]: paper 000's causal head on the raw image (no backbone features); m_finetune
    {eps, steps, step_size, epochs, n} = CAMA's fine-tuning of the m-path on PGD-perturbed training images.
    likelihood ``gaussian`` (learned σ per pixel, initialised at ``sigma``), as paper 000's causal head (``causal``).
    The head options are :class:`~robustsweep.models.causal.CausalHead`'s; m is trained at zero (paper 000)."""
    return DeepCAMA(input_shape, num_classes, {**head, "m_mode": "zero"}, MFinetune.parse(m_finetune))
