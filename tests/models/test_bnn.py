"""Paper 001's MC-dropout BNN baseline (models/bnn.py): stochastic at eval, dropout rate and scaling as documented,
K draws averaged as a mean softmax, cacheable, and it learns digits."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.models.bnn import MCDropoutNet
from robustsweep.models.draws import is_stochastic, shared_draws
from robustsweep.registry import MODELS


def _bnn(**kw) -> MCDropoutNet:
    torch.manual_seed(0)
    return MODELS.get("bnn").fn(input_shape=(1, 8, 8), num_classes=10, **kw)


def test_registered_as_a_stochastic_discriminative_model_with_the_papers_defaults():
    entry = MODELS.get("bnn")
    assert entry.meta["kind"] == "discriminative" and entry.meta["stochastic"] is True
    d = entry.defaults()
    assert d["p"] == 0.3 and d["K"] == 10  # §4: dropout rate 0.3, K = 10 Monte-Carlo samples
    assert is_stochastic(_bnn(hidden=32))


def test_eval_mode_keeps_dropout_on():
    m = _bnn(hidden=32).eval()
    assert not m.training
    x = torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        a, b = m(x), m(x)
    assert not torch.allclose(a, b), "two calls in eval mode must draw different dropout masks"
    m0 = _bnn(hidden=32, p=0.0).eval()  # the same network without dropout is deterministic
    with torch.no_grad():
        assert torch.equal(m0(x), m0(x))


def test_one_draw_is_the_network_with_a_bernoulli_mask_scaled_by_one_over_keep():
    """Independent oracle for one dropout draw: rebuild the mask from the same generator by hand."""
    m = _bnn(hidden=16, layers=1, p=0.3).eval()
    x = torch.rand(1, 1, 8, 8)
    with shared_draws(m, 123), torch.no_grad():
        got = m.draw_logits(x, 1)[0]
    lin = m.blocks[0][1]
    h = torch.relu(lin(x.flatten(1)))
    mask = torch.empty_like(h).bernoulli_(0.7, generator=torch.Generator().manual_seed(123))
    assert 0 < int(mask.sum()) < mask.numel()
    with torch.no_grad():
        want = m.head(h * mask / 0.7)
    torch.testing.assert_close(got, want)


def test_forward_is_log_mean_softmax_of_k_draws():
    m = _bnn(hidden=32, K=7).eval()
    x = torch.rand(5, 1, 8, 8)
    with shared_draws(m, 5), torch.no_grad():  # same masks for both calls: compare the combination rule itself
        out = m(x)
        draws = m.draw_logits(x)
    assert draws.shape == (7, 5, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(5))  # normalised log-probabilities
    torch.testing.assert_close(out, torch.log(torch.softmax(draws, -1).mean(0)))
    # and the draws inside one call are different masks (not one draw repeated K times)
    assert not torch.allclose(draws[0], draws[1])


def test_averaging_k_draws_divides_the_variance_of_the_probabilities_by_k():
    """exp(forward) is the mean of K iid softmax draws: unbiased for the K = 1 mean, variance / K."""
    m1, m16 = _bnn(hidden=32, K=1).eval(), _bnn(hidden=32, K=16).eval()
    m16.load_state_dict(m1.state_dict())
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(1)
    with torch.no_grad():
        p1 = torch.stack([m1(x).exp() for _ in range(400)])
        p16 = torch.stack([m16(x).exp() for _ in range(400)])
    ratio = (p1.var(0).sum() / p16.var(0).sum()).item()
    assert 16 / 2 < ratio < 16 * 2, ratio
    assert (p1.mean(0) - p16.mean(0)).abs().max().item() < 0.03


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_conv_variant_has_twice_the_lvm_encoder_channels(shape):
    from robustsweep.models.nets import XEncoder

    m = MODELS.get("bnn").fn(input_shape=shape, num_classes=10, arch="conv", hidden=64)
    lvm_first = XEncoder(shape, 64, "conv").net[0][0]
    assert m.blocks[0][0].out_channels == 2 * lvm_first.out_channels
    with torch.no_grad():
        assert m(torch.rand(2, *shape)).shape == (2, 10)


def test_cached_model_reloads_to_the_same_function(tmp_path, digits):
    from robustsweep.models.cache import load_or_train
    from robustsweep.ops.train import TrainConfig, fit

    def build():
        return _bnn(hidden=32)

    def train(m):
        fit(m, digits, TrainConfig(epochs=1, batch_size=128, lr=3e-3), torch.device("cpu"))

    key = {"model": {"name": "bnn", "hidden": 32}}
    a, cached_a = load_or_train(key, build, train, tmp_path)
    b, cached_b = load_or_train(key, build, train, tmp_path)
    assert (cached_a, cached_b) == (False, True)
    x = digits.x_test[:8]
    with torch.no_grad(), shared_draws(a, 9), shared_draws(b, 9):
        torch.testing.assert_close(a(x), b(x))
    assert is_stochastic(b) and not b.training


def test_trains_on_digits_in_a_few_epochs(digits):
    from robustsweep.ops.train import TrainConfig, accuracy, fit, seed_everything

    seed_everything(0)
    m = MODELS.get("bnn").fn(input_shape=digits.input_shape, num_classes=10, hidden=256)
    fit(m, digits, TrainConfig(epochs=3, batch_size=64, lr=3e-3), torch.device("cpu"))
    acc = accuracy(m, digits.x_test, digits.y_test)
    assert acc > 0.85, acc  # chance is 0.1
    assert math.isfinite(m.energy(digits.x_test[:4]).sum().item())
