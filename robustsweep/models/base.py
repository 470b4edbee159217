"""What every registered model is: a ``torch.nn.Module`` whose ``forward(x)`` returns class logits.

Contract (the trial runner, attacks and detectors rely on nothing else):

- ``forward(x) -> (N, C)`` logits. For a generative classifier these are log p(x, y_c) (importance-sampled,
  fresh samples on every call, so attacks see the same stochasticity as the paper's evaluation).
- ``loss(x, y) -> scalar`` the training objective to minimise (mean over the batch), e.g. the negative ELBO.
- ``num_classes: int`` attribute.
- optional ``log_marginal(x) -> (N,)`` (default: logsumexp of the logits) and ``energy(x) = -logsumexp``.
- optional ``fit(data, train_cfg, device, progress)`` for models with their own training procedure
  (fusion models train their backbone first); when absent ``robustsweep.ops.train.fit`` runs the generic loop.

A model factory is registered with ``@MODELS.register("name")`` and takes ``input_shape`` and
``num_classes`` plus the keyword hyperparameters an experiment file may set (validated against the
signature, so a typo in a spec is an error naming the allowed keys).
"""
from __future__ import annotations

import torch


def log_marginal(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log p(x) estimate: the model's own if it has one, else logsumexp over the class logits."""
    if hasattr(model, "log_marginal"):
        return model.log_marginal(x)
    return torch.logsumexp(model(x), dim=1)


def energy(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """E(x) = -logsumexp_c logits (Beadini & Masi eq. 9); low energy = in-distribution."""
    return -torch.logsumexp(model(x), dim=1)
