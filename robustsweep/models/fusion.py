"""Fusion models: a discriminative backbone's features at a named depth feed a generative head.

Paper 001 §4.3 puts GBZ/GBY/DBX heads on VGG16 CONV9 / FC1 features ("fusion", any of the seven factorisations
here); paper 000 adds the causal head with the perturbation latent m that sees both the image x1 and the
features x2 ("causal"). Training (``fit``) is two-stage:

1. the backbone is trained with cross-entropy on the data set once and cached through
   :func:`robustsweep.models.cache.load_or_train` under (backbone, backbone training settings, seed, data
   fingerprint) -- so every head, feature depth and attack setting of a sweep reuses it. The cache folder is
   :func:`robustsweep.models.cache.default_cache_dir` (set it, or ``$ROBUSTSWEEP_MODEL_CACHE``; none = no reuse);
2. the backbone is frozen (kept in eval mode even when the fusion model is put in train mode), the training
   features are standardised with their mean/std (buffers), and the head is fitted on them with the trial's
   training config.

``forward(x)`` differentiates through the frozen backbone, so white-box attacks attack the whole pipeline.
The head's likelihood on features is a "perceptual" one (paper 001 appendix C); its mean is linear (features
are unbounded). ``log_marginal`` is the head's density of the (image and) features.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import torch
import torch.nn as nn

from robustsweep.data.base import DataSplit
from robustsweep.models.backbones import BACKBONES, make_backbone
from robustsweep.models.base import options_from
from robustsweep.models.cache import default_cache_dir, load_or_train
from robustsweep.models.causal import CausalHead
from robustsweep.models.deep_bayes import FACTORISATIONS, DeepBayes
from robustsweep.models.m_finetune import MFinetune, finetune_m
from robustsweep.models.pretrained import file_sha256, resolve_weights
from robustsweep.ops.batching import batched
from robustsweep.ops.train import Progress, TrainConfig, fit_loss
from robustsweep.registry import MODELS

# elements of the (K, C, n, width) tensors one forward chunk may allocate; keeps CIFAR x VGG features in memory
CHUNK_BUDGET = 2**26


def data_fingerprint(data: DataSplit) -> dict:
    """Identifies the training data in a cache key without the caller's dataset config: name, sizes, and a hash
    of the labels and a strided subsample of the inputs (cheap even for CIFAR)."""
    x = data.x_train
    step = max(1, len(x) // 2048)
    h = hashlib.sha256()
    h.update(x[::step].detach().cpu().contiguous().numpy().tobytes())
    h.update(data.y_train.detach().cpu().contiguous().numpy().tobytes())
    return {"name": data.name, "n_train": len(x), "shape": list(x.shape[1:]), "sha256": h.hexdigest()}


class HeadModel(nn.Module):
    """A generative head applied to ``head_input(x)``: logits in memory-bounded chunks, log-marginal, energy and
    the head's loss. Shared by the fusion models and Deep CAMA (:mod:`robustsweep.models.deep_cama`), which differ
    only in what ``head_input`` builds and its width ``in_dim``."""

    head: nn.Module
    num_classes: int
    in_dim: int

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K = getattr(self.head, "K", 1)
        n = max(1, CHUNK_BUDGET // (K * self.num_classes * max(self.in_dim, 512)))
        return batched(lambda xb: self.head(self.head_input(xb)), x, batch_size=n)

    marginal_is_logsumexp = True  # log_marginal below: detectors reuse logits in hand (detect/density.py)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self(x), dim=1)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -self.log_marginal(x)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head.loss(self.head_input(x), y)


class FusionModel(HeadModel):
    """backbone.features(x, feature_depth) -> standardise -> head (DeepBayes or CausalHead)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, backbone: str, feature_depth: str,
                 head: nn.Module | None, head_kw: dict, backbone_train: TrainConfig, causal: bool = False,
                 backbone_weights: str | None = None, m_finetune: MFinetune | None = None):
        super().__init__()
        self.backbone_weights = backbone_weights  # loaded when the backbone is trained (fit), not at construction
        self.m_finetune = m_finetune
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.backbone = make_backbone(backbone, self.input_shape, num_classes)
        self.feature_depth = self.backbone.resolve(feature_depth)
        self.feat_dim = math.prod(self.backbone.feature_shape(self.feature_depth))
        self.backbone_train = backbone_train
        self.causal = causal
        self.register_buffer("feat_mean", torch.zeros(self.feat_dim))
        self.register_buffer("feat_std", torch.ones(self.feat_dim))
        self.x1_dim = math.prod(self.input_shape) if causal else 0
        self.in_dim = self.feat_dim + self.x1_dim
        if causal:
            self.head = CausalHead(self.x1_dim, self.feat_dim, num_classes, **head_kw)
        else:
            self.head = head if head is not None else DeepBayes(input_shape=(self.feat_dim,),
                                                                 num_classes=num_classes, **head_kw)
        self._freeze()

    def _freeze(self) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> FusionModel:
        super().train(mode)
        self.backbone.eval()  # frozen: batch-norm statistics and dropout stay in inference mode
        return self

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone.features(x, self.feature_depth).flatten(1)
        f = (f - self.feat_mean) / self.feat_std
        return torch.cat([x.flatten(1), f], 1) if self.causal else f

    def fit(self, data: DataSplit, cfg: TrainConfig, device: torch.device, progress: Progress | None = None) -> None:
        seed = torch.initial_seed()  # the trial runner seeds before training
        bb = trained_backbone(self.backbone_name, self.input_shape, self.num_classes, self.backbone_train,
                              self.backbone_weights, data, device, progress)
        self.backbone.load_state_dict(bb.state_dict())
        self.to(device)
        self._freeze()
        with torch.no_grad():
            feats = batched(lambda xb: self.backbone.features(xb, self.feature_depth).flatten(1), data.x_train,
                            batch_size=512, device=device).to(device)
            self.feat_mean.copy_(feats.mean(0))
            std = feats.std(0)
            self.feat_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))  # dead units stay 0
            f = (feats - self.feat_mean) / self.feat_std
            head_x = torch.cat([data.x_train.to(device).flatten(1), f], 1) if self.causal else f
        if progress:
            progress(f"training {'causal' if self.causal else 'generative'} head on {self.feature_depth} features")
        fit_loss(self.head, head_x, data.y_train, cfg, device, progress, seed)
        if self.m_finetune is not None:
            finetune_m(self, self.head, self.head_input, data.x_train, data.y_train, self.m_finetune, cfg, device,
                       progress, seed)
        self.eval()


@dataclasses.dataclass(frozen=True)
class Backbone:
    """The frozen network under a head and how it is trained: the ``backbone*`` options of ``fusion``, ``causal`` and
    ``fusion-backbone`` (one list, so the three take the same settings for the same network, which
    :func:`trained_backbone` caches per these settings, the seed and the data).

    backbone: cnn | vgg16 | vgg19 | resnet18; feature_depth: a tap name (conv9, conv12, conv13+fc1, fc1, pool,
    layer3, ...); backbone_weights: None (trained from scratch), ``imagenet`` or a file (VGG: pretrained
    convolutions, then fine-tuned; robustsweep/models/pretrained.py).
    """

    backbone: str = "cnn"
    feature_depth: str = "conv2"
    backbone_epochs: int = 10
    backbone_lr: float = 1e-3
    backbone_batch_size: int = 128
    backbone_weights: str | None = None

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")

    @classmethod
    def take(cls, options: dict[str, Any]) -> Backbone:
        """The backbone settings out of a factory's options (removed from ``options``; the rest are the head's)."""
        return cls(**{f.name: options.pop(f.name) for f in dataclasses.fields(cls) if f.name in options})

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.backbone_epochs, batch_size=self.backbone_batch_size, lr=self.backbone_lr)


def trained_backbone(name: str, input_shape: tuple[int, ...], num_classes: int, bcfg: TrainConfig,
                     weights: str | None, data: DataSplit, device: torch.device,
                     progress: Progress | None = None) -> nn.Module:
    """The backbone ``name`` trained with cross-entropy on ``data`` (``bcfg``; from ``weights`` where given), from
    the model cache when a trial of this seed trained it already: every fusion head of a sweep and the
    ``fusion-backbone`` baseline (paper 001 Fig. 8's VGG16) get the very same network. Seeded by the trial's seed
    (``torch.initial_seed()``, set by the trial runner before training)."""
    seed = torch.initial_seed()
    key = {"kind": "fusion-backbone", "backbone": name, "input_shape": list(input_shape),
           "num_classes": num_classes, "train": dataclasses.asdict(bcfg), "seed": seed,
           "data": data_fingerprint(data)}
    if weights is not None:  # a pretrained start: the file's content is part of the model's identity
        key["init"] = file_sha256(resolve_weights(name, weights))

    def build() -> nn.Module:
        torch.manual_seed(seed)
        return make_backbone(name, input_shape, num_classes, weights)

    def train(m: nn.Module) -> None:
        if progress:
            progress(f"{'fine-tuning' if weights else 'training'} backbone {name}")
        fit_loss(m, data.x_train, data.y_train, bcfg, device, progress, seed)

    bb, _ = load_or_train(key, build, train, default_cache_dir(), progress)
    return bb


def _check_head(head: str) -> None:
    if head not in FACTORISATIONS:
        raise ValueError(f"head must be one of {sorted(FACTORISATIONS)}, got {head!r}")


#: DeepBayes settings a fusion head does not take from a spec: its input is the features (mlp, unbounded)
_FUSION_HEAD_FIXED = ("factorisation", "input_shape", "num_classes", "arch", "bounded", "dropout")


@MODELS.register("fusion", kind="generative", stochastic=True, input="any",
                 ci={"backbone": "cnn", "feature_depth": "conv2", "head": "gfz", "backbone_epochs": 2})
@options_from(Backbone, DeepBayes, drop=_FUSION_HEAD_FIXED, sigma=1.0)
def fusion(input_shape: tuple[int, ...], num_classes: int, head: str = "gbz", **options: Any) -> FusionModel:
    """Deep-Bayes head (any of the seven) on a cached backbone's features at `feature_depth` (paper 001 §4.3).

    Backbone options: :class:`Backbone`; head options as for the deep-Bayes models (features are standardised, so
    sigma ~ 1).
    """
    _check_head(head)
    bb = Backbone.take(options)
    kw = dict(factorisation=head, arch="mlp", bounded=False, **options)
    return FusionModel(input_shape, num_classes, bb.backbone, bb.feature_depth, None, kw, bb.train_config(),
                       backbone_weights=bb.backbone_weights)


@MODELS.register("causal", kind="generative", stochastic=True, input="any",
                 ci={"backbone": "cnn", "feature_depth": "fc1", "hidden": 128, "backbone_epochs": 2})
@options_from(Backbone, CausalHead, drop=("x1_dim", "x2_dim"), backbone="vgg16", feature_depth="conv9", sigma=1.0)
def causal(input_shape: tuple[int, ...], num_classes: int, m_finetune: dict | None = None, **options: Any) -> FusionModel:
    """Causal fusion model of paper 000: q(m|x1,x2,y), q(z|x1,x2,y,m), p(x1,x2|y,z,m); trained with m=0, eq. 10.

    x1 = the image, x2 = standardised backbone features at `feature_depth` (shallow: conv9/conv12, deep:
    conv13+fc1). m_mode: zero (paper) | elbo (also learn q(m)). Paper settings: hidden 500, 4 encoder and 2
    decoder layers, Adam 5e-5, batch 150. Backbone options: :class:`Backbone`. m_finetune: {eps, steps, step_size,
    epochs, n}: after the paper's training, fine-tune q(m) on PGD-perturbed training images as Deep CAMA does
    (robustsweep/models/m_finetune.py); None = the paper's reading (m sampled from an untrained q(m)).
    likelihood ``gaussian`` (a normalised Gaussian with a learned σ per input dimension, initialised at ``sigma``):
    §3 "MLPs with Gaussian outputs parameterized by mean µ and standard deviation σ"; a σ per dimension rather than
    one output per input is our choice (the paper does not say). ``l2`` (paper 001's unnormalised -Σ(x-µ)²) ignores
    ``sigma`` and weighs the thousands of standardised feature dimensions against the image's pixels with one weight.
    """
    bb = Backbone.take(options)
    return FusionModel(input_shape, num_classes, bb.backbone, bb.feature_depth, None, options, bb.train_config(),
                       causal=True, backbone_weights=bb.backbone_weights, m_finetune=MFinetune.parse(m_finetune))
