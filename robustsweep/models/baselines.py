"""Discriminative baselines: plain MLP and small CNN classifiers trained with cross-entropy.

Their logits are ordinary scores, so the energy E(x) = -logsumexp(logits) of Beadini & Masi (paper 004) is the
only density-like quantity they offer (see ``robustsweep.models.base.energy``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from robustsweep.registry import MODELS


class Classifier(nn.Module):
    """Wraps a network mapping x -> logits; adds the cross-entropy ``loss`` the trainer minimises."""

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.net = net
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.logsumexp(self(x), dim=1)


@MODELS.register("mlp", kind="discriminative", stochastic=False, input="any")
def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 256, layers: int = 2) -> Classifier:
    """Discriminative MLP baseline (ReLU, `layers` hidden layers of width `hidden`)."""
    d = math.prod(input_shape)
    mods: list[nn.Module] = [nn.Flatten()]
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, num_classes))
    return Classifier(nn.Sequential(*mods), num_classes)


@MODELS.register("cnn", kind="discriminative", stochastic=False, input="any")
def cnn(input_shape: tuple[int, ...], num_classes: int, channels: int = 32, hidden: int = 256) -> Classifier:
    """Discriminative small CNN baseline (two conv blocks + one dense layer) for MNIST/digits-size images."""
    c, h, w = input_shape
    net = nn.Sequential(
        nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * channels * (h // 4) * (w // 4), hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
    return Classifier(net, num_classes)


# ---- torchvision backbones as plain classifiers (paper 000/001 baselines; energy of paper 004) ----
# They are `TapNet`s (robustsweep.models.backbones): forward = logits, loss = cross-entropy, energy(x), and
# features(x, depth) for the fusion models, which reuse the same builders.


@MODELS.register("vgg16", kind="discriminative", stochastic=False, input="image32")
def vgg16(input_shape: tuple[int, ...], num_classes: int, bn: bool = True, hidden: int = 512,
          dropout: float = 0.5, weights: str | None = None) -> nn.Module:
    """VGG16 (torchvision, batch norm by default) adapted to 32x32: global pool + 512-512 classifier. ``weights``:
    None = random init, ``imagenet`` / a file = pretrained convolutions that training then fine-tunes
    (robustsweep/models/pretrained.py)."""
    from robustsweep.models.backbones import vgg

    return vgg(16, input_shape, num_classes, bn=bn, hidden=hidden, dropout=dropout, weights=weights)


@MODELS.register("vgg19", kind="discriminative", stochastic=False, input="image32")
def vgg19(input_shape: tuple[int, ...], num_classes: int, bn: bool = True, hidden: int = 512,
          dropout: float = 0.5, weights: str | None = None) -> nn.Module:
    """VGG19 (torchvision, batch norm by default) adapted to 32x32: global pool + 512-512 classifier. ``weights``:
    None = random init, ``imagenet`` / a file = pretrained convolutions that training then fine-tunes
    (robustsweep/models/pretrained.py)."""
    from robustsweep.models.backbones import vgg

    return vgg(19, input_shape, num_classes, bn=bn, hidden=hidden, dropout=dropout, weights=weights)


@MODELS.register("resnet10", kind="discriminative", stochastic=False, input="image32")
def resnet10(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet10 (torchvision's ResNet, one basic block per stage, weights=None) with the CIFAR stem: paper 004's
    Table 1 model."""
    from robustsweep.models.backbones import resnet

    return resnet(10, input_shape, num_classes)


@MODELS.register("resnet18", kind="discriminative", stochastic=False, input="image32")
def resnet18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet18 (torchvision, weights=None) with the CIFAR stem: 3x3 stride-1 first conv, no max-pool."""
    from robustsweep.models.backbones import resnet18 as build

    return build(input_shape, num_classes)
