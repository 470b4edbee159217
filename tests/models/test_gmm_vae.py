"""GMM-prior VAE selective classifier (paper 003): accuracy, reject option, reclassification, semi-supervision."""
from __future__ import annotations

import functools

import pytest
import torch

from robustsweep.ops.train import TrainConfig, accuracy, fit, seed_everything
from robustsweep.registry import MODELS

CFG = TrainConfig(epochs=20, batch_size=64, lr=2e-3)


@functools.cache
def _trained(labels_per_class: int | None = None):
    from robustsweep.data import load_dataset

    data = load_dataset("digits", seed=0)
    seed_everything(0)
    m = MODELS.get("gmmvae").fn(data.input_shape, data.num_classes, hidden=128, labels_per_class=labels_per_class)
    fit(m, data, CFG, torch.device("cpu"))
    return m.eval()


def test_interface_for_attacks_and_detectors():
    from robustsweep.attacks.gmm_vae import GmmVaeView

    m = MODELS.get("gmmvae").fn((1, 8, 8), 10, hidden=16, dim_z=12)
    assert torch.equal(m.class_means, torch.cat([torch.eye(10), torch.zeros(10, 2)], 1))  # zero-padded one-hot
    with pytest.raises(RuntimeError, match="thresholds"):
        m.predict_with_reject(torch.rand(2, 1, 8, 8))
    x = torch.rand(5, 1, 8, 8)
    m.calibrate(torch.rand(40, 1, 8, 8), torch.arange(40) % 10)
    view = GmmVaeView(m)  # the attacks' duck-typed view accepts the model
    assert view.encode(x).shape == (5, 12) and m.decode(view.encode(x)).shape == x.shape
    assert view.tau_enc > 0 and view.tau_dec > 0
    # logits' argmax is the nearest class mean (eq. 8 with z = E[z])
    z = m.encode_mean(x)
    assert torch.equal(m(x).argmax(1), torch.cdist(z, m.class_means).argmin(1))
    # Mahalanobis distance with identity precision equals the squared Euclidean distance
    m.class_precision.copy_(torch.eye(12).repeat(10, 1, 1))
    c = torch.arange(5)
    torch.testing.assert_close(m.latent_distance(x, c), ((z - m.class_means[c]) ** 2).sum(1))


@pytest.mark.slow
def test_supervised_accuracy_and_reject_option(digits):
    m = _trained()
    assert accuracy(m, digits.x_test, digits.y_test) >= 0.93
    with torch.no_grad():
        pred, rej = m.predict_with_reject(digits.x_test)
        _, rej_noise = m.predict_with_reject(torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    clean_rate, noise_rate = rej.float().mean().item(), rej_noise.float().mean().item()
    assert clean_rate < 0.2, clean_rate
    assert noise_rate > 0.9 and noise_rate > 5 * clean_rate, (noise_rate, clean_rate)
    # selective accuracy: what it accepts it gets (nearly) right
    assert (pred[~rej] == digits.y_test[~rej]).float().mean() >= 0.97


@pytest.mark.slow
def test_reclassification_by_latent_optimisation(digits):
    m = _trained()
    x, y = digits.x_test[:60], digits.y_test[:60]
    label, _ = m.reclassify(x, steps=100, lr=0.05)
    assert (label == y).float().mean() >= 0.75  # eq. 9 uses only the decoder


@pytest.mark.slow
def test_semi_supervised_uses_only_the_kept_labels(digits):
    keep = MODELS.get("gmmvae").fn((1, 8, 8), 10, hidden=8).labelled_subset(digits.y_train, 20, seed=0)
    assert keep.sum() == 200 and torch.bincount(digits.y_train[keep]).tolist() == [20] * 10
    m = _trained(labels_per_class=20)
    assert accuracy(m, digits.x_test, digits.y_test) >= 0.80  # 200 labels + 1237 unlabelled
    with torch.no_grad():  # thresholds come from all training inputs (unlabelled ones under their predicted class)
        _, rej = m.predict_with_reject(digits.x_test)
        _, rej_noise = m.predict_with_reject(torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
    assert rej.float().mean() < 0.2 and rej_noise.float().mean() > 0.9
