"""input_gradients (paper 004 Fig. 4) against the closed form of a linear softmax classifier."""
from __future__ import annotations

import torch

from robustsweep.ops.metrics import input_gradients


def test_linear_model_gradient_is_w_transpose_softmax_minus_onehot():
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    x, y = torch.rand(5, 1, 3, 4), torch.tensor([0, 1, 2, 3, 1])
    g = input_gradients(lin, x, y)
    w, b = lin[1].weight, lin[1].bias
    p = torch.softmax(x.flatten(1) @ w.T + b, dim=1)
    expected = ((p - torch.nn.functional.one_hot(y, 4).float()) @ w).view_as(x)
    assert g.shape == x.shape and not g.requires_grad
    torch.testing.assert_close(g, expected.detach())
    assert not x.requires_grad  # the caller's tensor is untouched
