"""ROAR's input side (RemOve And Retrain, Hooker et al. 2019; paper 000 §4.1 and Table 1): integrated-gradients
attributions, the most important pixels of each image replaced by the training set's per-feature mean.

This module only *removes*: given a trained model it returns the images with a fraction of their pixels replaced.
The *retrain* half (a fresh model trained on the removed training set, evaluated on the removed test images) needs
the trial's model factory and training settings and lives in :mod:`robustsweep.core.roar`.

Attribution: :class:`captum.attr.IntegratedGradients` (a maintained implementation rather than a hand-written one)
of the model's logit of its own predicted class, i.e. log p(x, y_c) of eq. 2 for a generative classifier, from a
baseline (a black image by default, Sundararajan et al.'s choice; ``baseline="mean"``: the fill value itself).

Stochastic models (deep-Bayes heads, the causal head: fresh Monte-Carlo samples on every call) are made one fixed
function for the attribution: captum evaluates all path points of a batch of N images in one call, stacked
step-major ([x_1..x_N at α_1, x_1..x_N at α_2, ...]); :class:`FixedSamples` forwards that stack N rows at a time,
each chunk under the same seed (the global RNG forked and re-seeded, and :func:`~robustsweep.models.draws.
shared_draws` for models that draw through it). Image i thus sees the same samples at every α, at the input and at
the baseline: IG's completeness (attributions sum to F(x) - F(baseline)) holds for that one fixed-sample logit, and
the trial's own random state is left untouched.

Pixels: for images (N, C, H, W) a pixel is one spatial position; its importance is |attribution| summed over the
channels (magnitude: the ranking of Hooker et al. treats strongly negative evidence as important too -- chosen, the
paper does not say) and all its channels are replaced. For flat inputs (N, D) each feature is a pixel. Exactly
⌈fraction · P⌉ of the P pixels of every image are replaced; ties are broken by pixel index (stable sort), so the
result is deterministic. The random control replaces the same number of pixels drawn uniformly (seeded).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Annotated, Literal

import torch
from torch import nn

from robustsweep.config.domains import Domain
from robustsweep.models.draws import shared_draws
from robustsweep.registry import ATTACKS

METHODS = ("ig", "random")
#: inputs (images x IG points) per captum call: the call keeps the activations of all of them for one backward
#: pass, so the images per call are ATTR_INPUTS // steps (memory knob; a causal head on VGG features holds
#: K x C decoder outputs of image + feature size per input)
ATTR_INPUTS = 512


@contextlib.contextmanager
def fixed_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Global RNG (CPU, and the CUDA device of ``device``) seeded with ``seed`` inside, restored on exit."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
        else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class FixedSamples(nn.Module):
    """``model`` as one deterministic function for a batch of ``n`` images: a stacked input of k·n rows is
    forwarded n rows at a time, every chunk with the same Monte-Carlo samples (module docstring)."""

    def __init__(self, model: nn.Module, n: int, seed: int):
        super().__init__()
        self.model, self.n, self.seed = model, int(n), int(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) % self.n:
            raise ValueError(f"FixedSamples: {len(x)} rows is not a multiple of the batch of {self.n} images")
        outs = []
        for chunk in x.split(self.n):
            with fixed_rng(self.seed, chunk.device), shared_draws(self.model, self.seed):
                outs.append(self.model(chunk))
        return torch.cat(outs)


def integrated_gradients(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None, *,
                         steps: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(attributions shaped like ``x``, predicted classes) of the predicted class's logit, by captum's IG with
    ``steps`` Gauss-Legendre points, one batch (see :func:`attribute` for many images)."""
    from captum.attr import IntegratedGradients

    f = FixedSamples(model, len(x), seed)
    base = torch.zeros_like(x) if baseline is None else baseline.expand_as(x).to(x)
    with torch.no_grad():
        pred = f(x).argmax(1)
    with torch.enable_grad():
        attr = IntegratedGradients(f).attribute(x, baselines=base, target=pred, n_steps=int(steps))
    return attr.detach(), pred


def attribute(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor | None = None, *, steps: int = 16,
              seed: int = 0, batch_size: int | None = None) -> torch.Tensor:
    """:func:`integrated_gradients` over ``x`` in batches of ``batch_size`` images (default ATTR_INPUTS // steps;
    the same seed in every batch)."""
    batch_size = batch_size or max(1, ATTR_INPUTS // int(steps))
    return torch.cat([integrated_gradients(model, xb, baseline, steps=steps, seed=seed)[0]
                      for xb in x.split(batch_size)])


def n_removed(fraction: float, n_pixels: int) -> int:
    """⌈fraction · n_pixels⌉, immune to float noise (0.3 · 10 = 3.0000000000000004 must give 3, not 4)."""
    return min(n_pixels, math.ceil(round(fraction * n_pixels, 9)))


def pixel_scores(attr: torch.Tensor) -> torch.Tensor:
    """(N, P) importance per pixel: |attribution| summed over channels for (N, C, ...) images, |attribution| for
    flat (N, D) inputs."""
    a = attr.abs()
    return (a.sum(1) if a.dim() >= 3 else a).flatten(1)


def top_pixels(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """(N, P) bool mask of the ⌈fraction · P⌉ highest-scoring pixels of each row (ties: lower index first)."""
    k = n_removed(fraction, scores.shape[1])
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order, True)


def random_pixels(n: int, n_pixels: int, fraction: float, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, P) bool mask of ⌈fraction · P⌉ pixels per row drawn uniformly without replacement (seeded)."""
    k = n_removed(fraction, n_pixels)
    g = torch.Generator().manual_seed(int(seed))
    order = torch.rand(n, n_pixels, generator=g).argsort(1)[:, :k]
    return torch.zeros(n, n_pixels, dtype=torch.bool).scatter_(1, order, True).to(device)


def remove(x: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """``x`` with the pixels of ``mask`` (N, P) replaced by ``fill`` (shaped like one input), every channel."""
    full = mask.view(len(x), *x.shape[2:]).unsqueeze(1).expand_as(x) if x.dim() >= 3 else mask.view_as(x)
    return torch.where(full, fill.to(x).expand_as(x), x)


def roar_inputs(model: nn.Module, x: torch.Tensor, fill: torch.Tensor, *, method: str = "ig", fraction: float = 0.3,
                steps: int = 16, baseline: str = "zero", seed: int = 0,
                batch_size: int | None = None) -> torch.Tensor:
    """``x`` with ⌈fraction · P⌉ pixels per image replaced by ``fill``: the most IG-attributed ones of ``model``
    (``method="ig"``) or random ones (``"random"``, the control)."""
    if method not in METHODS:
        raise ValueError(f"ROAR method must be one of {METHODS}, got {method!r}")
    if baseline not in ("zero", "mean"):
        raise ValueError(f"ROAR baseline must be 'zero' or 'mean', got {baseline!r}")
    n_pix = pixel_scores(x[:1]).shape[1]
    if method == "random":
        mask = random_pixels(len(x), n_pix, fraction, seed, x.device)
    else:
        base = fill if baseline == "mean" else None
        mask = top_pixels(pixel_scores(attribute(model, x, base, steps=steps, seed=seed, batch_size=batch_size)),
                          fraction)
    return remove(x, mask, fill)


Fraction = Annotated[float, Domain(lo=0.0, hi=1.0, lo_open=True, hi_open=True)]


@ATTACKS.register("roar", norm=None, threat="retrain", retrain=True)
def roar(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fraction: Fraction = 0.3,
         method: Literal["ig", "random"] = "ig", steps: int = 16,
         baseline: Literal["zero", "mean"] = "zero", seed: int = 0) -> torch.Tensor:
    """ROAR (paper 000 Table 1): remove the fraction of most IG-attributed (or random) pixels, retrain, re-evaluate.

    ``steps``: integrated-gradients points (named like the iterative attacks' ``steps``, so ``--smoke`` and the
    paper-scale shape check cut them the same way); ``baseline``: the IG baseline (black image, or the fill);
    ``seed``: the fixed Monte-Carlo samples of a stochastic model, and the random control's pixels.

    In an experiment file this entry is not run as an attack: the trial sees ``retrain=True`` in its registration
    and hands it to :mod:`robustsweep.core.roar`, which removes pixels with the *training* mean from the training
    and test images, retrains the model and writes rows ``roar-<method>``. Called directly (as here), it only
    returns the removed images, filled with the batch's own per-feature mean (no training set in sight).
    """
    return roar_inputs(model, x, x.mean(0), method=method, fraction=fraction, steps=steps, baseline=baseline,
                       seed=seed)
