"""Discriminative backbones with named feature taps: a small CNN (digits/MNIST size), VGG16/VGG19 and ResNet18.

Why taps: the fusion models (paper 001 §4.3, paper 000 §3-4) feed a generative head with a backbone's features
at a named depth, and that depth is a swept key (``feature_depth``: conv9, conv12, conv13+fc1, conv14,
conv16+fc2, ...). A :class:`TapNet` is its network flattened into an ordered list of stages; a tap name marks
the stage whose output is the feature. The same object is a plain classifier (``forward`` = logits, ``loss`` =
cross-entropy, ``energy`` of paper 004), so the VGG/ResNet baselines and the fusion backbones are one code path.

VGG and ResNet come from torchvision (``weights=None``), adapted to 32x32 inputs the usual way: VGG's 7x7
average pool and 4096-wide classifier become a global pool and a 512-512 classifier (the CIFAR-VGG of the paper
001 footnote has one 512 dense layer; the second one gives VGG19's "16 conv + 2 dense" tap); ResNet's 7x7
stride-2 stem and max-pool become a 3x3 stride-1 conv.

Tap names: ``conv<k>`` = after the ReLU of the k-th convolution (VGG, CNN), ``fc<k>`` = after the ReLU of the
k-th hidden dense layer, ``pool`` = the flattened global pool, ``layer1``..``layer4`` (ResNet), and the paper's
combined names ``conv<N>+fc<k>`` = ``fc<k>`` of a network with exactly N convolutions.
"""
from __future__ import annotations

import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from robustsweep._tv_compat import import_torchvision

BACKBONES = ("cnn", "vgg16", "vgg19", "resnet18")


class TapNet(nn.Module):
    """An ordered list of stages; ``features(x, depth)`` runs them up to the tap named `depth`."""

    def __init__(self, stages: list[tuple[str | None, nn.Module]], num_classes: int, input_shape: tuple[int, ...],
                 arch: str):
        super().__init__()
        self.stages = nn.ModuleList([m for _, m in stages])
        self.taps: dict[str, int] = {name: i for i, (name, _) in enumerate(stages) if name}
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.arch = arch
        self.num_convs = sum(isinstance(m, nn.Conv2d) for m in self.modules())

    def resolve(self, depth: str) -> str:
        """Canonical tap name for `depth` (accepts the paper's "conv13+fc1" form); error lists the choices."""
        if depth in self.taps:
            return depth
        m = re.fullmatch(r"conv(\d+)\+(fc\d+)", depth)
        if m and int(m.group(1)) == self.num_convs and m.group(2) in self.taps:
            return m.group(2)
        raise ValueError(
            f"feature_depth {depth!r} is not a tap of {self.arch} ({self.num_convs} convolutions); "
            f"choose one of: {', '.join(self.taps)}"
        )

    def features(self, x: torch.Tensor, depth: str) -> torch.Tensor:
        last = self.taps[self.resolve(depth)]
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == last:
                return x
        raise AssertionError("unreachable")

    @torch.no_grad()
    def feature_shape(self, depth: str) -> tuple[int, ...]:
        was = self.training
        self.eval()
        shape = tuple(self.features(torch.zeros(1, *self.input_shape), depth).shape[1:])
        self.train(was)
        return shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """E(x) = -logsumexp(logits), paper 004 eq. 9."""
        return -torch.logsumexp(self(x), dim=1)


def _no_inplace(m: nn.Module) -> nn.Module:
    """Taps hand out intermediate tensors; in-place ReLUs would let a later stage overwrite them."""
    return nn.ReLU() if isinstance(m, nn.ReLU) else m


def small_cnn(input_shape: tuple[int, ...], num_classes: int, channels: int = 32, hidden: int = 256) -> TapNet:
    """The `cnn` baseline's architecture (two conv blocks + one dense layer) with taps conv1, conv2, fc1."""
    c, h, w = input_shape
    stages: list[tuple[str | None, nn.Module]] = [
        (None, nn.Conv2d(c, channels, 3, padding=1)), ("conv1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        (None, nn.Conv2d(channels, 2 * channels, 3, padding=1)), ("conv2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        (None, nn.Flatten()),
        (None, nn.Linear(2 * channels * (h // 4) * (w // 4), hidden)), ("fc1", nn.ReLU()),
        (None, nn.Linear(hidden, num_classes)),
    ]
    return TapNet(stages, num_classes, input_shape, "cnn")


def vgg(depth: int, input_shape: tuple[int, ...], num_classes: int, bn: bool = True, hidden: int = 512,
        dropout: float = 0.5, weights: str | None = None) -> TapNet:
    """torchvision VGG16/19 convolutions, a global pool and a 2-hidden-layer classifier. ``weights``: None (random
    init), ``imagenet`` or a file: pretrained convolutions (:mod:`robustsweep.models.pretrained`; batch norm only)."""
    tv = import_torchvision()
    ctor = {16: tv.models.vgg16_bn if bn else tv.models.vgg16, 19: tv.models.vgg19_bn if bn else tv.models.vgg19}
    if depth not in ctor:
        raise ValueError(f"VGG depth must be 16 or 19, got {depth}")
    c = input_shape[0]
    feats = list(ctor[depth](weights=None).features.children())
    if c != 3:
        first = feats[0]
        feats[0] = nn.Conv2d(c, first.out_channels, 3, padding=1)
    stages: list[tuple[str | None, nn.Module]] = []
    k = 0
    for m in feats:
        if isinstance(m, nn.Conv2d):
            k += 1
        name = f"conv{k}" if isinstance(m, nn.ReLU) else None
        stages.append((name, _no_inplace(m)))
    width = 512
    stages += [
        ("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        (None, nn.Linear(width, hidden)), ("fc1", nn.ReLU()), (None, nn.Dropout(dropout)),
        (None, nn.Linear(hidden, hidden)), ("fc2", nn.ReLU()), (None, nn.Dropout(dropout)),
        (None, nn.Linear(hidden, num_classes)),
    ]
    net = TapNet(stages, num_classes, input_shape, f"vgg{depth}")
    if weights is not None:
        if not bn:
            raise ValueError("pretrained VGG weights are torchvision's batch-norm VGGs: use bn: true")
        from robustsweep.models.pretrained import load_vgg_features

        load_vgg_features(net, f"vgg{depth}", weights)
    return net


def resnet(depth: int, input_shape: tuple[int, ...], num_classes: int) -> TapNet:
    """torchvision's ResNet (weights=None) with the CIFAR stem (3x3 stride-1 conv, no max-pool): depth 18 is
    torchvision's ResNet18 ([2, 2, 2, 2] basic blocks), depth 10 the same with one block per stage ([1, 1, 1, 1]),
    the ResNet10 of paper 004's Table 1."""
    tv = import_torchvision()
    if depth == 18:
        r = tv.models.resnet18(weights=None, num_classes=num_classes)
    elif depth == 10:
        r = tv.models.resnet.ResNet(tv.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
    else:
        raise ValueError(f"ResNet depth must be 10 or 18, got {depth}")
    c = input_shape[0]
    stages: list[tuple[str | None, nn.Module]] = [
        (None, nn.Conv2d(c, 64, 3, stride=1, padding=1, bias=False)), (None, r.bn1), ("conv1", nn.ReLU()),
        ("layer1", r.layer1), ("layer2", r.layer2), ("layer3", r.layer3), ("layer4", r.layer4),
        ("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        (None, r.fc),
    ]
    for mod in r.modules():  # torchvision's BasicBlock reuses one in-place ReLU; make it out-of-place
        for name, child in mod.named_children():
            if isinstance(child, nn.ReLU):
                setattr(mod, name, nn.ReLU())
    return TapNet(stages, num_classes, input_shape, f"resnet{depth}")


def resnet18(input_shape: tuple[int, ...], num_classes: int) -> TapNet:
    """torchvision ResNet18 (weights=None) with the CIFAR stem (3x3 stride-1 conv, no max-pool)."""
    return resnet(18, input_shape, num_classes)


def make_backbone(name: str, input_shape: tuple[int, ...], num_classes: int, weights: str | None = None) -> TapNet:
    """The named backbone; ``weights`` (``imagenet`` or a file) loads pretrained convolutions (VGG only)."""
    if len(input_shape) != 3:
        raise ValueError(f"backbone {name!r} needs image inputs (C, H, W), got {input_shape}")
    if weights is not None and name not in ("vgg16", "vgg19"):
        raise ValueError(f"backbone_weights are supported for vgg16 / vgg19, not {name!r}")
    if name == "cnn":
        return small_cnn(input_shape, num_classes)
    if name == "vgg16":
        return vgg(16, input_shape, num_classes, weights=weights)
    if name == "vgg19":
        return vgg(19, input_shape, num_classes, weights=weights)
    if name == "resnet18":
        return resnet18(input_shape, num_classes)
    raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")


def feature_dim(net: TapNet, depth: str) -> int:
    return math.prod(net.feature_shape(depth))
