"""Small network builders shared by the generative models: MLP stacks, an x-encoder and a decoder.

Why a separate module: every deep-Bayes factorisation, the causal fusion model and the GMM-VAE need the same
"features of x" and "decode a latent to an input-shaped vector" pieces, once as MLPs (the paper's MNIST and
feature-fusion heads) and once as small conv nets. Decoders always return a *flat* (B, D) tensor so the
likelihoods in :mod:`robustsweep.models.likelihoods` never care about the input's shape.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

ARCHS = ("mlp", "conv")


def _dropout(p: float):
    """A maker of the dropout modules to splice in after an activation: none at p = 0 (parameter names unchanged)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    return (lambda: [nn.Dropout(p)]) if p > 0 else (lambda: [])


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """`layers` ReLU hidden layers of width `hidden` (each followed by dropout when ``dropout`` > 0), then a linear
    output layer (layers=0: one linear map)."""
    drop = _dropout(dropout)
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU(), *drop()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def check_arch(arch: str, input_shape: tuple[int, ...]) -> None:
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if arch == "conv" and len(input_shape) != 3:
        raise ValueError(f"arch='conv' needs (C, H, W) inputs, got input_shape={input_shape}; use arch='mlp'")


class XEncoder(nn.Module):
    """x (N, *input_shape) -> features (N, hidden) followed by ReLU, so heads can stack linear layers on top.

    mlp: flatten + `layers` dense layers. conv: two stride-2 conv blocks + one dense layer (works for any H, W).
    ``dropout`` > 0 adds dropout after every hidden activation (paper 002: "dropout during training"; off in eval
    mode); at 0 no module is added, so parameter names -- and cached models -- are those of a net without it.
    """

    def __init__(self, input_shape: tuple[int, ...], hidden: int, arch: str = "mlp", layers: int = 2,
                 channels: int = 32, dropout: float = 0.0):
        super().__init__()
        check_arch(arch, input_shape)
        drop = _dropout(dropout)
        self.out_dim = hidden
        if arch == "mlp":
            d = math.prod(input_shape)
            mods: list[nn.Module] = [nn.Flatten()]
            for _ in range(max(layers, 1)):
                mods += [nn.Linear(d, hidden), nn.ReLU(), *drop()]
                d = hidden
            self.net = nn.Sequential(*mods)
        else:
            c, h, w = input_shape
            convs = nn.Sequential(
                nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(2 * channels, 2 * channels, 4, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), *drop(),
            )
            with torch.no_grad():
                flat = convs(torch.zeros(1, c, h, w)).shape[1]
            self.net = nn.Sequential(convs, nn.Linear(flat, hidden), nn.ReLU(), *drop())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Latent code (..., in_dim) -> flat distribution parameters (..., prod(input_shape)).

    Accepts any number of leading batch dimensions (the batched logits feed (K, C, N, in_dim)).
    mlp: `layers` dense layers. conv: two dense layers, then two stride-2 transposed convs, cropped to (H, W).
    ``dropout`` as in :class:`XEncoder` (after the hidden dense activations).
    """

    def __init__(self, in_dim: int, input_shape: tuple[int, ...], hidden: int, arch: str = "mlp",
                 layers: int = 2, channels: int = 32, dropout: float = 0.0):
        super().__init__()
        check_arch(arch, input_shape)
        drop = _dropout(dropout)
        self.input_shape = tuple(input_shape)
        self.out_dim = math.prod(input_shape)
        self.arch = arch
        if arch == "mlp":
            self.net = mlp(in_dim, hidden, self.out_dim, max(layers, 1), dropout)
        else:
            c, h, w = input_shape
            self._grid = (2 * channels, math.ceil(h / 4), math.ceil(w / 4))
            self.dense = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.ReLU(), *drop(), nn.Linear(hidden, math.prod(self._grid)), nn.ReLU(),
                *drop(),
            )
            self.deconv = nn.Sequential(
                nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(channels, c, 4, stride=2, padding=1),
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        z = z.reshape(-1, z.shape[-1])
        if self.arch == "mlp":
            out = self.net(z)
        else:
            _, h, w = self.input_shape
            g = self.dense(z).view(-1, *self._grid)
            out = self.deconv(g)[:, :, :h, :w].flatten(1)
        return out.view(*lead, self.out_dim)
