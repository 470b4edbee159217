"""``backbone_weights`` / ``weights``: ImageNet-pretrained VGG convolutions from a staged torchvision file (paper 000
fine-tunes an ImageNet VGG16). Checked against torchvision's own network loading the same (fake) file: the
normalisation folded into the first convolution is exact away from the border, every other tensor is copied, a grey
input equals the colour network on three equal channels, and a missing file is a staging error naming the file."""
from __future__ import annotations

import pytest
import torch

from robustsweep._tv_compat import import_torchvision
from robustsweep.errors import UsageError
from robustsweep.models.backbones import make_backbone, vgg
from robustsweep.models.pretrained import (
    IMAGENET_FILES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsNotStagedError,
    fake_vgg_file,
    resolve_weights,
)


@pytest.fixture(scope="module")
def fake_file(tmp_path_factory):
    return fake_vgg_file("vgg16", tmp_path_factory.mktemp("w") / "fake-vgg16.pth")


def _torchvision_features(path):
    tv = import_torchvision()
    net = tv.models.vgg16_bn(weights=None)
    state = torch.load(path, weights_only=True)
    net.features.load_state_dict({k[len("features."):]: v.float() for k, v in state.items()})
    return net.features.eval()


def test_first_convolution_folds_imagenet_normalisation(fake_file):
    ours = vgg(16, (3, 32, 32), 10, weights=str(fake_file)).eval()
    ref = _torchvision_features(fake_file)
    x = torch.rand(2, 3, 32, 32)
    norm = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        a, b = ours.stages[0](x), ref[0](norm)
    # exact inside; the border differs only by what the zero padding stands for (0 in [0,1] space, not the mean)
    torch.testing.assert_close(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a, b, atol=1e-3)  # ... and the border really is different: the test can tell


def test_every_other_tensor_is_copied(fake_file):
    ours = vgg(16, (3, 32, 32), 10, weights=str(fake_file))
    state = torch.load(fake_file, weights_only=True)
    mine = ours.state_dict()
    copied = [k for k in state if not k.startswith("features.0.")]
    assert len(copied) > 60  # 12 more convolutions and 13 batch norms
    for k in copied:
        torch.testing.assert_close(mine["stages." + k[len("features."):]], state[k].to(mine["stages." + k[len("features."):]].dtype))


def test_grey_input_equals_colour_network_on_equal_channels(fake_file):
    grey = vgg(16, (1, 32, 32), 10, weights=str(fake_file)).eval()
    colour = vgg(16, (3, 32, 32), 10, weights=str(fake_file)).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey.features(x, "conv13"), colour.features(x.repeat(1, 3, 1, 1), "conv13"),
                                   rtol=1e-4, atol=1e-4)


def test_imagenet_is_found_where_torchvision_caches_it(tmp_path, monkeypatch, fake_file):
    monkeypatch.delenv("ROBUSTSWEEP_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(WeightsNotStagedError) as e:
        resolve_weights("vgg16", "imagenet")
    assert IMAGENET_FILES["vgg16"] in str(e.value) and "IMAGENET1K_V1" in str(e.value)
    staged = tmp_path / "th" / "hub" / "checkpoints" / IMAGENET_FILES["vgg16"]
    staged.parent.mkdir(parents=True)
    staged.write_bytes(fake_file.read_bytes())
    assert resolve_weights("vgg16", "imagenet") == staged
    monkeypatch.setenv("ROBUSTSWEEP_WEIGHTS", str(tmp_path / "mine"))  # searched first
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / IMAGENET_FILES["vgg16"]).write_bytes(b"x")
    assert resolve_weights("vgg16", "imagenet") == tmp_path / "mine" / IMAGENET_FILES["vgg16"]


def test_bad_requests_are_clear_errors(tmp_path, fake_file):
    with pytest.raises(UsageError, match="not 'resnet18'"):
        resolve_weights("resnet18", "imagenet")
    with pytest.raises(WeightsNotStagedError, match="does not exist"):
        make_backbone("vgg16", (3, 32, 32), 10, weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="vgg16 / vgg19"):
        make_backbone("cnn", (1, 8, 8), 10, weights=str(fake_file))
    with pytest.raises(UsageError, match="expects"):  # a VGG19 asked to load VGG16 tensors: shapes differ
        vgg(19, (3, 32, 32), 10, weights=str(fake_file))


def test_preflight_names_the_missing_imagenet_file(tmp_path, monkeypatch):
    from robustsweep.runners.preflight import preflight_problems

    monkeypatch.delenv("ROBUSTSWEEP_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    trial = {"dataset": {"name": "digits"}, "model": {"name": "causal", "backbone": "vgg16",
                                                      "backbone_weights": "imagenet"}}
    problems = preflight_problems([trial], tmp_path / "results")
    assert len(problems) == 1 and problems[0].startswith("model.backbone_weights:")
    assert IMAGENET_FILES["vgg16"] in problems[0]


def test_fusion_fine_tunes_from_the_file_and_keys_the_cache_on_it(tmp_path, fake_file, monkeypatch):
    """A fusion model's backbone starts from the file (its conv weights differ from a random init) and its cache
    entry is keyed on the file's content: another file trains another backbone."""
    from robustsweep.data.base import DataSplit
    from robustsweep.models import cache
    from robustsweep.ops.train import TrainConfig
    from robustsweep.registry import MODELS

    monkeypatch.setattr(cache, "default_cache_dir", lambda: tmp_path / "cache")
    import robustsweep.models.fusion as fusion_mod
    monkeypatch.setattr(fusion_mod, "default_cache_dir", lambda: tmp_path / "cache")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 32, 32, generator=g)
    y = torch.arange(8) % 2
    data = DataSplit("fake", x, y, x[:4], y[:4], 2)
    m = MODELS.get("fusion").fn(input_shape=(3, 32, 32), num_classes=2, backbone="vgg16", feature_depth="conv9",
                                head="gbz", dim_z=4, hidden=16, K=2, backbone_epochs=1, backbone_weights=str(fake_file))
    torch.manual_seed(0)
    m.fit(data, TrainConfig(epochs=1, batch_size=8, lr=1e-5), torch.device("cpu"))
    ref = torch.load(fake_file, weights_only=True)["features.3.weight"].float()  # the second convolution
    w = m.backbone.stages[3].weight
    assert (w - ref).abs().max() < 0.05  # one fine-tuning step of lr 1e-5 away from the file, not a random init
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert entries and any(fake_file.name in e.read_text() or "init" in e.read_text() for e in entries)
