"""ImageNet-pretrained convolutions for the VGG backbones, from a staged torchvision weights file (no download).

Why: paper 000 fine-tunes an *ImageNet-pretrained* VGG16 (93.59 % on CIFAR-10, §4.1) -- a VGG trained from scratch
on CIFAR-10 is a different feature extractor. Compute nodes have no internet, so the weights are a staged file:

- ``backbone_weights: imagenet`` (``weights: imagenet`` for the plain ``vgg16``/``vgg19`` models) looks for
  torchvision's own file name (``vgg16_bn-6c64b313.pth``, ``vgg19_bn-c79401a0.pth``) in ``$ROBUSTSWEEP_WEIGHTS``,
  then in torchvision's download cache ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``)
  -- so one ``torchvision.models.vgg16_bn(weights="IMAGENET1K_V1")`` on a login node with internet stages it;
- ``backbone_weights: PATH`` loads that file (a torchvision VGG-BN state dict, or a dict holding one under
  ``state_dict``/``model``).

Only the convolutional part (``features.*``: convolutions and batch norms) is loaded: the 32×32 adaptation of
:func:`robustsweep.models.backbones.vgg` replaces torchvision's 7×7 pool and 4096-wide classifier, which therefore
start from their usual initialisation. Two adaptations, both exact for the weights they touch:

- ImageNet weights expect inputs normalised with ImageNet's mean/std; our networks take [0, 1] images. The
  normalisation is folded into the first convolution (W' = W / std_c, b' = b - Σ W·mean_c/std_c), so the network's
  layout and state dict do not change. (Only the zero padding at the image border differs: it pads with 0 in [0, 1]
  space instead of the channel mean.)
- A 1-channel input (digits, MNIST at ci / mini scale) gets the sum of the three colour filters, i.e. the
  pretrained network applied to a grey image.

Training afterwards is fine-tuning: the backbone is trained with cross-entropy as before, starting from these
weights, and the trained-model cache key holds the weights file's SHA-256 so a different file trains anew.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from robustsweep.errors import UsageError

#: torchvision's file names of the ImageNet weights our VGG backbones take (batch-norm variants, IMAGENET1K_V1)
IMAGENET_FILES = {"vgg16": "vgg16_bn-6c64b313.pth", "vgg19": "vgg19_bn-c79401a0.pth"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TV_NAMES = {"vgg16": "vgg16_bn", "vgg19": "vgg19_bn"}


class WeightsNotStagedError(UsageError, FileNotFoundError):
    """The pretrained weights a model asks for are not on this machine; the message says how to stage them."""


def search_dirs() -> list[Path]:
    """Where ``imagenet`` is looked up, in order: $ROBUSTSWEEP_WEIGHTS, then torchvision's download cache."""
    dirs = []
    if os.environ.get("ROBUSTSWEEP_WEIGHTS"):
        dirs.append(Path(os.environ["ROBUSTSWEEP_WEIGHTS"]).expanduser())
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"))
    dirs.append(torch_home.expanduser() / "hub" / "checkpoints")
    return dirs


def resolve_weights(arch: str, weights: str) -> Path:
    """The file ``weights`` (``imagenet`` or a path) names for backbone ``arch``; a clear staging error if absent."""
    if weights == "imagenet":
        if arch not in IMAGENET_FILES:
            raise UsageError(f"backbone_weights: imagenet is available for {', '.join(IMAGENET_FILES)} (torchvision's "
                             f"batch-norm VGGs), not {arch!r}; give a PATH to a state dict instead")
        name = IMAGENET_FILES[arch]
        for d in search_dirs():
            if (d / name).is_file():
                return d / name
        where = " or ".join(str(d) for d in search_dirs())
        raise WeightsNotStagedError(
            f"ImageNet weights for {arch} are not staged: {name} is in none of {where}. On a machine with internet "
            f"run `python -c \"import torchvision; torchvision.models.{_TV_NAMES[arch]}(weights='IMAGENET1K_V1')\"` "
            f"(it saves the file to ~/.cache/torch/hub/checkpoints) and copy {name} to $ROBUSTSWEEP_WEIGHTS on a "
            f"folder every node can read")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotStagedError(f"backbone weights file {path} does not exist (stage it where every node can "
                                    f"read it, or use `imagenet` for torchvision's ImageNet weights)")
    return path


def file_sha256(path: Path) -> str:
    """The weights file's identity for the trained-model cache key."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def load_vgg_features(net, arch: str, weights: str) -> Path:
    """Copy the ImageNet (or given) convolutional weights into ``net`` (a VGG :class:`TapNet` of
    :func:`robustsweep.models.backbones.vgg`), adapting the first convolution as the module docstring says.
    Returns the file loaded. Shapes and keys are checked; a mismatch says which key."""
    import torch
    import torch.nn as nn

    path = resolve_weights(arch, weights)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for k in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(k), dict):
            state = state[k]
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not feats:
        raise UsageError(f"{path} holds no 'features.*' tensors: not a torchvision VGG state dict")
    ours = net.state_dict()  # tensors sharing storage with the parameters and buffers: copy_ writes into net
    first = next(i for i, m in enumerate(net.stages) if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        for key, val in feats.items():
            idx, _, rest = key.partition(".")
            target = f"stages.{idx}.{rest}"
            if target not in ours:
                raise UsageError(f"{path}: key features.{key} has no counterpart in {arch} (is it a "
                                 f"{_TV_NAMES.get(arch, arch)} state dict?)")
            if int(idx) == first:
                continue  # the first convolution is adapted below
            if tuple(val.shape) != tuple(ours[target].shape):
                raise UsageError(f"{path}: features.{key} has shape {tuple(val.shape)}, {arch} expects "
                                 f"{tuple(ours[target].shape)}")
            ours[target].copy_(val.to(ours[target].dtype))
        w = feats[f"{first}.weight"].float()
        b = feats[f"{first}.bias"].float() if f"{first}.bias" in feats else torch.zeros(w.shape[0])
        conv = net.stages[first]
        if tuple(w.shape[:1] + w.shape[2:]) != (conv.out_channels, *conv.kernel_size) or w.shape[1] != 3:
            raise UsageError(f"{path}: features.{first}.weight has shape {tuple(w.shape)}, not an ImageNet "
                             f"(3-channel) first convolution of {arch}")
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        w_raw = w / std  # conv(W, (x - mean) / std) = conv(W / std, x) - sum(W * mean / std)
        b_raw = b - (w * mean / std).sum(dim=(1, 2, 3))
        if conv.in_channels == 1:
            w_raw = w_raw.sum(1, keepdim=True)  # a grey image = the same value in all three channels
        elif conv.in_channels != 3:
            raise UsageError(f"ImageNet weights need 1- or 3-channel inputs, {arch} here takes {conv.in_channels}")
        conv.weight.copy_(w_raw.to(conv.weight.dtype))
        conv.bias.copy_(b_raw.to(conv.bias.dtype))
    return path


def fake_vgg_file(arch: str, path: Path) -> Path:
    """A file with the real keys and shapes of torchvision's ``<arch>_bn`` convolutions and random values, in
    half precision (a quarter of the real file): the shape smoke test exercises the loading path with it."""
    import torch

    from robustsweep._tv_compat import import_torchvision

    tv = import_torchvision()
    net = getattr(tv.models, _TV_NAMES[arch])(weights=None)
    state = {f"features.{k}": v.half() if v.is_floating_point() else v for k, v in net.features.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
