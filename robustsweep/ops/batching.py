"""The one batched forward pass over a data set: chunks in, one tensor out.

Evaluation, detectors, calibration, transfer substitutes and the models' own calibration all run a function over
thousands of inputs that would not fit through the network at once; they all go through :func:`batched`, so a
memory fix or a device rule is made here once. Stochastic models draw afresh on every call, as they would outside.
"""
from __future__ import annotations

from collections.abc import Callable

import torch


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a parameter-free module)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def batched(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor, batch_size: int = 1024,
            device: torch.device | None = None) -> torch.Tensor:
    """``torch.cat([fn(*chunks) for chunks of the aligned tensors])``.

    ``device``: move each chunk there before calling ``fn`` (the model's device) and bring the result back to the
    first tensor's device. An empty input gives an empty result (``fn`` is not called).
    """
    x = tensors[0]
    if len(x) == 0:
        return torch.empty(0, device=x.device)
    out = []
    for i in range(0, len(x), batch_size):
        chunk = [t[i : i + batch_size] for t in tensors]
        if device is not None:
            chunk = [t.to(device) for t in chunk]
        out.append(fn(*chunk).to(x.device))
    return torch.cat(out)


@torch.no_grad()
def batched_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of every input, computed on the model's device without a graph, returned on ``x``'s device."""
    if len(x) == 0:
        return torch.empty(0, getattr(model, "num_classes", 0), device=x.device)
    return batched(model, x, batch_size=batch_size, device=model_device(model))


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Argmax class for every input, on the CPU (models may be stochastic: one fresh draw)."""
    model.eval()
    if len(x) == 0:
        return torch.empty(0, dtype=torch.long)
    return batched(lambda xb: model(xb).argmax(1), x, batch_size=batch_size, device=model_device(model)).cpu()
