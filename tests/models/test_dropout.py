"""Dropout in the deep-Bayes x-networks and decoders (paper 002 §II.2: "all of them include dropout during training")."""
from __future__ import annotations

import pytest
import torch

from robustsweep.registry import MODELS


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 8, 8)), ("conv", (1, 28, 28))])
def test_no_dropout_keeps_the_parameter_names_of_cached_models(arch, shape):
    """dropout 0 adds no module: a model cached before the option existed loads into the new one."""
    plain = MODELS.get("dfz").fn(input_shape=shape, num_classes=10, dim_z=8, hidden=32, arch=arch)
    zero = MODELS.get("dfz").fn(input_shape=shape, num_classes=10, dim_z=8, hidden=32, arch=arch, dropout=0.0)
    assert list(plain.state_dict()) == list(zero.state_dict())
    assert not any(isinstance(m, torch.nn.Dropout) for m in zero.modules())
    zero.load_state_dict(plain.state_dict())


@pytest.mark.parametrize("name", ["gfz", "dfz"])
def test_dropout_acts_in_training_only(name):
    torch.manual_seed(0)
    m = MODELS.get(name).fn(input_shape=(1, 8, 8), num_classes=10, dim_z=8, hidden=32, dropout=0.5)
    drops = [x for x in m.modules() if isinstance(x, torch.nn.Dropout)]
    assert drops and all(d.p == 0.5 for d in drops)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    m.eval()
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(1)
    assert torch.equal(a, m(x))  # eval: the same importance draws give the same logits (no dropout noise)
    m.train()
    torch.manual_seed(1)
    l1 = m.loss(x, y)
    torch.manual_seed(1)
    assert torch.equal(l1, m.loss(x, y))  # train: seeded masks repeat ...
    torch.manual_seed(1)
    for d in drops:
        d.p = 0.0
    assert not torch.equal(l1, m.loss(x, y))  # ... and the masks change the loss


def test_dropout_outside_its_domain_is_refused():
    with pytest.raises(ValueError, match="dropout"):
        MODELS.get("gfz").fn(input_shape=(1, 8, 8), num_classes=10, dropout=1.0)
