"""The fusion models' own backbone as a classifier: the discriminative baseline of paper 001 Fig. 8 ("a baseline
discriminative VGG16") and of paper 000's feature-depth tables.

Why a model of its own and not ``vgg16``: the heads' features come from the backbone the fusion code trains (or
fine-tunes) and caches per seed (:func:`robustsweep.models.fusion.trained_backbone`). A ``vgg16`` entry trained
with the trial's own settings is another network, so a "heads beat the VGG16" claim would mix the gap between two
VGG16s into the comparison. With the same ``backbone_*`` settings as the heads, this entry loads exactly the network
the heads were built on (trained once, whichever trial comes first); the trial's ``train`` section does not apply.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from robustsweep.data.base import DataSplit
from robustsweep.models.backbones import make_backbone
from robustsweep.models.base import options_from
from robustsweep.models.fusion import Backbone, trained_backbone
from robustsweep.ops.train import Progress, TrainConfig
from robustsweep.registry import MODELS


class BackboneClassifier(nn.Module):
    """A backbone's logits; ``fit`` takes the cached (or newly trained) backbone of these settings and seed."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, backbone: str, backbone_train: TrainConfig,
                 backbone_weights: str | None = None):
        super().__init__()
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.backbone_name, self.backbone_train, self.backbone_weights = backbone, backbone_train, backbone_weights
        self.net = make_backbone(backbone, self.input_shape, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def fit(self, data: DataSplit, cfg: TrainConfig, device: torch.device, progress: Progress | None = None) -> None:
        bb = trained_backbone(self.backbone_name, self.input_shape, self.num_classes, self.backbone_train,
                              self.backbone_weights, data, device, progress)
        self.net.load_state_dict(bb.state_dict())
        self.to(device).eval()


@MODELS.register("fusion-backbone", kind="discriminative", stochastic=False, input="any",
                 ci={"backbone": "cnn", "backbone_epochs": 2})
@options_from(Backbone, drop=("feature_depth",))
def fusion_backbone(input_shape: tuple[int, ...], num_classes: int, **options: Any) -> BackboneClassifier:
    """The backbone a ``fusion`` / ``causal`` model with the same ``backbone*`` settings is built on, as a classifier
    (paper 001 Fig. 8's VGG16 baseline). Give it exactly the heads' backbone settings."""
    bb = Backbone(**options)
    return BackboneClassifier(input_shape, num_classes, bb.backbone, bb.train_config(), bb.backbone_weights)
