"""Score-based (SPSA), query-based (ZOO) and transfer (grey/black-box substitute) attacks on an undefended MLP,
and the batching contract: the number of model calls of every attack does not grow with the number of inputs."""
from __future__ import annotations

import pytest
import torch

from robustsweep.attacks import spsa, transfer, zoo
from robustsweep.ops.train import accuracy
from robustsweep.registry import ATTACKS


@pytest.fixture(scope="module")
def victim(mlp_victim):
    m, xtr, xte, yte = mlp_victim
    return m, xtr, xte[:150], yte[:150]


def test_spsa_lowers_accuracy(victim):
    m, _, x, y = victim
    torch.manual_seed(0)
    xa = spsa.spsa(m, x, y, eps=0.15, steps=15, samples=32, lr=0.02)
    assert (xa - x).abs().max() <= 0.15 + 1e-6
    assert accuracy(m, xa, y) < accuracy(m, x, y) - 0.3


def test_zoo_lowers_accuracy(victim):
    m, _, x, y = victim
    xa = zoo.zoo(m, x, y, steps=20, coords=64, c=10.0)
    assert accuracy(m, xa, y) < accuracy(m, x, y) - 0.3
    # the distortion term keeps ZOO's perturbations moderate (ℓ2 of a digit is about 4)
    assert (xa - x).flatten(1).norm(dim=1).mean() < 2.0


def test_transfer_attacks_need_registered_data(victim):
    m, _, x, y = victim
    from robustsweep.models.baselines import mlp

    other = mlp((1, 8, 8), 10)
    with pytest.raises(ValueError, match="register_substitute_data"):
        transfer.transfer_greybox(other, x, y, eps=0.2)


@pytest.mark.parametrize("name,kw", [
    ("transfer-greybox", {"sub_epochs": 4, "sub_arch": "mlp"}),
    ("transfer-blackbox", {"sub_epochs": 4, "rounds": 3, "n_seed": 100, "sub_arch": "mlp"}),
])
def test_transfer_attacks_lower_accuracy_and_cache(victim, name, kw):
    m, xtr, x, y = victim
    transfer.register_substitute_data(m, xtr)
    fn = ATTACKS.get(name).fn
    before = transfer.cache_info(m)["n_substitutes"]
    xa = fn(m, x, y, eps=0.25, steps=20, step_size=0.025, **kw)
    assert transfer.cache_info(m)["n_substitutes"] == before + 1
    xb = fn(m, x, y, eps=0.3, steps=20, step_size=0.025, method="mim", **kw)  # another ε: same substitute
    assert transfer.cache_info(m)["n_substitutes"] == before + 1
    for adv, eps in ((xa, 0.25), (xb, 0.3)):
        assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        assert accuracy(m, adv, y) < accuracy(m, x, y) - 0.15


class CallCounter(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0
        self.num_classes = 10

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


BATCHED = {
    "fgsm": {"eps": 0.1}, "pgd": {"eps": 0.1, "steps": 3}, "pgd-l2": {"eps": 0.5, "steps": 3},
    "ifgsm": {"eps": 0.1, "steps": 3}, "mim": {"eps": 0.1, "steps": 3}, "he-pgd": {"steps": 3},
    "cw": {"steps": 5, "abort_early": False}, "deepfool": {"steps": 3}, "truncated-deepfool": {"steps": 3},
    "spsa": {"steps": 2, "samples": 8}, "zoo": {"steps": 2, "coords": 8},
}


@pytest.mark.parametrize("name", sorted(BATCHED))
def test_no_python_loop_per_example(victim, name):
    """Same number of model calls for 8 and for 64 inputs: the attack is batched over the data set."""
    m, _, x, y = victim
    counts = []
    for n in (8, 64):
        cm = CallCounter(m)
        torch.manual_seed(0)
        ATTACKS.get(name).fn(cm, x[:n], y[:n], **BATCHED[name])
        counts.append(cm.calls)
    assert counts[0] == counts[1] or (name == "deepfool" and counts[1] <= counts[0] + 3), counts
