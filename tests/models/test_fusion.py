"""Fusion models: backbone taps (VGG16/19, ResNet18 at 32x32), causal head estimator, end to end on digits."""
from __future__ import annotations

import pytest
import torch

from robustsweep.models.backbones import make_backbone
from robustsweep.models.cache import set_default_cache_dir
from robustsweep.ops.train import TrainConfig, accuracy, fit, seed_everything
from robustsweep.registry import MODELS


@pytest.mark.parametrize("arch,taps", [
    ("vgg16", {"conv9": (512, 4, 4), "conv12": (512, 2, 2), "conv13+fc1": (512,), "fc1": (512,), "pool": (512,)}),
    ("vgg19", {"conv14": (512, 2, 2), "conv16+fc2": (512,), "conv4": (128, 16, 16)}),
    ("resnet18", {"layer1": (64, 32, 32), "layer3": (256, 8, 8), "pool": (512,)}),
])
def test_torchvision_backbone_taps_on_32x32(arch, taps):
    torch.manual_seed(0)
    net = MODELS.get(arch).fn(input_shape=(3, 32, 32), num_classes=10).eval()
    x = torch.rand(2, 3, 32, 32)
    assert net(x).shape == (2, 10) and net.energy(x).shape == (2,)
    for depth, shape in taps.items():
        assert tuple(net.features(x, depth).shape) == (2, *shape), depth
        assert net.feature_shape(depth) == shape
    with pytest.raises(ValueError, match="choose one of"):
        net.features(x, "conv99")


def test_vgg_conv_count_guards_the_combined_tap_name():
    net = make_backbone("vgg19", (3, 32, 32), 10)
    with pytest.raises(ValueError):
        net.resolve("conv13+fc1")  # VGG19 has 16 convolutions
    assert net.resolve("conv16+fc2") == "fc2"


def test_fusion_head_builds_on_a_vgg_tap_without_training():
    m = MODELS.get("fusion").fn((3, 32, 32), 10, backbone="vgg16", feature_depth="conv9", head="gby",
                                hidden=32, dim_z=8, K=2)
    assert m.feat_dim == 512 * 4 * 4
    out = m(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert all(not p.requires_grad for p in m.backbone.parameters())
    m.train()
    assert not m.backbone.training  # frozen backbone stays in eval mode


@pytest.mark.parametrize("m_mode", ["zero", "elbo"])
def test_causal_logits_equal_bruteforce_loop(m_mode):
    from robustsweep.models.causal import CausalHead

    seed_everything(4)
    h = CausalHead(6, 5, 3, dim_z=3, dim_m=2, hidden=8, enc_layers=3, dec_layers=2, m_mode=m_mode).eval()
    if m_mode == "zero":  # q(m) starts near delta(0): small spread around 0
        with torch.no_grad():
            mu = h.q_m(h.q_m.project(torch.rand(4, 11)), torch.eye(3)[0])
        assert mu[:, :2].abs().max() < 1e-6 and torch.allclose(mu[:, 2:], torch.full_like(mu[:, 2:], -4.6052))
        torch.nn.init.normal_(h.q_m.rest[-1].weight)  # make the check below sensitive to m
    xx = torch.rand(2, 11)
    em, ez = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 3)
    with torch.no_grad():
        fast = h.logits(xx, em, ez)
    torch.testing.assert_close(fast, h.logits_loop(xx, em, ez), rtol=1e-5, atol=1e-4)
    assert h.loss(xx, torch.tensor([0, 2])).isfinite()


@pytest.mark.slow
def test_fusion_end_to_end_on_digits_trains_backbone_once(digits, tmp_path):
    set_default_cache_dir(tmp_path)
    try:
        msgs: list[str] = []
        seed_everything(0)
        m = MODELS.get("fusion").fn(digits.input_shape, 10, backbone="cnn", feature_depth="conv2", head="gfz",
                                    hidden=128, dim_z=16, backbone_epochs=8, backbone_batch_size=64)
        fit(m, digits, TrainConfig(epochs=12, batch_size=64, lr=1e-3), torch.device("cpu"), msgs.append)
        assert accuracy(m.backbone, digits.x_test, digits.y_test) >= 0.93
        acc = accuracy(m, digits.x_test, digits.y_test)
        assert acc >= 0.85, acc
        assert sum("training backbone" in s for s in msgs) == 1
        # gradients reach the input through the frozen backbone (white-box attacks need them)
        x = digits.x_test[:4].clone().requires_grad_(True)
        m(x).logsumexp(1).sum().backward()
        assert x.grad.abs().sum() > 0
        # a second head on another tap reuses the cached backbone
        msgs.clear()
        seed_everything(0)
        c = MODELS.get("causal").fn(digits.input_shape, 10, backbone="cnn", feature_depth="fc1", hidden=128,
                                    dim_z=8, dim_m=4, enc_layers=2, backbone_epochs=8, backbone_batch_size=64)
        fit(c, digits, TrainConfig(epochs=15, batch_size=64, lr=2e-3), torch.device("cpu"), msgs.append)
        assert not any("training backbone" in s for s in msgs) and any("loaded cached" in s for s in msgs)
        assert torch.equal(c.backbone.stages[0].weight, m.backbone.stages[0].weight)
        assert accuracy(c, digits.x_test, digits.y_test) >= 0.80
        # paper 001 Fig. 8's discriminative baseline is the heads' own backbone: same weights, same logits
        msgs.clear()
        seed_everything(0)
        b = MODELS.get("fusion-backbone").fn(digits.input_shape, 10, backbone="cnn", backbone_epochs=8,
                                             backbone_batch_size=64)
        fit(b, digits, TrainConfig(epochs=1), torch.device("cpu"), msgs.append)
        assert not any("training backbone" in s for s in msgs)
        state_b, state_m = b.net.state_dict(), m.backbone.state_dict()
        assert state_b.keys() == state_m.keys() and all(torch.equal(state_b[k], state_m[k]) for k in state_b)
        torch.testing.assert_close(b(digits.x_test[:8]), m.backbone(digits.x_test[:8]))
    finally:
        set_default_cache_dir(None)
