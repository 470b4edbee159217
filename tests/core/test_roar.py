"""ROAR (paper 000 Table 1): captum's integrated gradients against closed forms, the removal masks against brute
force, and remove-and-retrain against a data set whose label lives in one pixel."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from robustsweep.attacks.roar import (
    FixedSamples,
    integrated_gradients,
    n_removed,
    pixel_scores,
    random_pixels,
    roar_inputs,
    top_pixels,
)
from robustsweep.core.roar import roar_rows
from robustsweep.data.base import DataSplit
from robustsweep.models.causal import CausalHead
from robustsweep.ops.train import TrainConfig, fit_loss


class Linear(nn.Module):
    """Logistic regression on flat or image inputs, with the ``loss`` the generic trainer needs."""

    def __init__(self, d: int, c: int):
        super().__init__()
        self.lin = nn.Linear(d, c)
        self.num_classes = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self(x), y)


def _ceil_30_percent(p: int) -> int:
    return -(-3 * p // 10)  # exact integer ⌈0.3 p⌉


@pytest.mark.parametrize("baseline", ["zero", "mean"])
def test_ig_of_a_linear_model_is_the_closed_form(baseline):
    torch.manual_seed(0)
    model = Linear(12, 4)
    x = torch.rand(7, 12)
    base = None if baseline == "zero" else torch.rand(12)
    attr, pred = integrated_gradients(model, x, base, steps=5)
    assert torch.equal(pred, model(x).argmax(1))
    b = torch.zeros(12) if base is None else base
    expected = (x - b) * model.lin.weight[pred].detach()  # IG of w_c . x + b_c from baseline b: (x - b) ⊙ w_c
    torch.testing.assert_close(attr, expected, rtol=1e-5, atol=1e-6)


def test_ig_of_a_stochastic_model_uses_fixed_samples_completeness_holds():
    """A causal head draws fresh samples per call; with one fixed sample set per image along the whole IG path, the
    attributions sum to F(x) - F(baseline) of that fixed-sample logit (IG's completeness). Fresh samples per path
    point (captum on the bare model) miss it by far more."""
    torch.manual_seed(0)
    head = CausalHead(16, 4, 3, dim_z=4, dim_m=2, hidden=16).eval()
    with torch.no_grad():  # a wide q(m|.) so the samples matter
        head.q_m.rest[-1].bias[2:].fill_(1.0)
    x = torch.rand(5, 20)
    attr, pred = integrated_gradients(head, x, steps=32, seed=3)
    f = FixedSamples(head, len(x), 3)
    with torch.no_grad():
        gap = (f(x) - f(torch.zeros_like(x))).gather(1, pred[:, None]).squeeze(1)
    err_fixed = (attr.sum(1) - gap).abs().max().item()
    from captum.attr import IntegratedGradients

    torch.manual_seed(1)
    naive = IntegratedGradients(head).attribute(x, target=pred, n_steps=32)
    err_naive = (naive.sum(1) - gap).abs().max().item()
    assert err_fixed < 0.01 * gap.abs().mean().item() and err_naive > 10 * err_fixed
    again, _ = integrated_gradients(head, x, steps=32, seed=3)
    assert torch.equal(attr, again)  # deterministic for a seed


def test_fraction_counts_exactly():
    assert [n_removed(0.3, p) for p in (10, 64, 1024, 3072)] == [_ceil_30_percent(p) for p in (10, 64, 1024, 3072)]
    assert n_removed(0.3, 10) == 3  # 0.3 * 10 = 3.0000000000000004 in floats


def test_top_pixels_is_the_brute_force_top_k_with_ties_by_index():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (20, 37), generator=g).float()  # many ties
    mask = top_pixels(scores, 0.3)
    k = _ceil_30_percent(37)
    for row, m in zip(scores.tolist(), mask):
        want = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
        assert sorted(torch.nonzero(m).flatten().tolist()) == sorted(want)


def test_roar_removes_the_most_attributed_pixels_of_an_image_and_the_control_as_many_random_ones():
    torch.manual_seed(0)
    model = Linear(2 * 5 * 5, 3)
    x = torch.rand(6, 2, 5, 5)
    fill = torch.full((2, 5, 5), 0.5) + 0.01 * torch.arange(50.0).view(2, 5, 5) / 50  # distinct from any x value
    out = roar_inputs(model, x, fill, method="ig", fraction=0.3, steps=4)
    k = _ceil_30_percent(25)
    pred = model(x).argmax(1)
    attr = (x * model.lin.weight[pred].detach().view(-1, 2, 5, 5)).abs().sum(1).flatten(1)  # per pixel, closed form
    for i in range(len(x)):
        changed = (out[i] != x[i]).view(2, 25)
        assert torch.equal(changed[0], changed[1])  # a pixel goes with all its channels
        gone = torch.nonzero(changed[0]).flatten().tolist()
        assert len(gone) == k and sorted(gone) == sorted(attr[i].argsort(descending=True)[:k].tolist())
        assert torch.equal(out[i].view(2, 25)[:, gone], fill.view(2, 25)[:, gone])
    rnd = roar_inputs(model, x, fill, method="random", fraction=0.3, seed=5)
    changed = (rnd != x).view(6, 2, 25)
    assert (changed[:, 0].sum(1) == k).all() and torch.equal(changed[:, 0], changed[:, 1])
    assert torch.equal(rnd, roar_inputs(model, x, fill, method="random", fraction=0.3, seed=5))
    assert not torch.equal(changed[:, 0], (out != x).view(6, 2, 25)[:, 0])
    assert pixel_scores(torch.ones(3, 8)).shape == (3, 8)  # flat inputs: a feature is a pixel
    assert (random_pixels(4, 8, 0.3, 0).sum(1) == 3).all()


def test_remove_and_retrain_uses_the_removed_data():
    """The label is pixel 0 (0.25 or 0.75); the other 9 pixels are noise. IG finds pixel 0 in every image, so after
    removing it (fraction 0.1: one pixel of 10 -- a larger fraction would also remove noise pixels chosen by the
    predicted class's weights, a known ROAR leak of the label through the mask) and retraining from scratch the
    model is at chance; the random control (1 of 10 pixels) mostly keeps it."""
    g = torch.Generator().manual_seed(0)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = torch.rand(n, 10, generator=g), torch.randint(0, 2, (n,), generator=g)
        x[:, 0] = 0.25 + 0.5 * y
        return x, y

    (xtr, ytr), (xte, yte) = make(600), make(300)
    data = DataSplit("one-pixel", xtr, ytr, xte, yte, 2)
    cfg = TrainConfig(epochs=40, batch_size=100, lr=0.05)
    trained = []

    def retrain(removed: DataSplit, key: dict) -> nn.Module:
        trained.append((removed, key))
        torch.manual_seed(0)
        return fit_loss(Linear(10, 2), removed.x_train, removed.y_train, cfg, torch.device("cpu"))

    torch.manual_seed(0)
    model = fit_loss(Linear(10, 2), xtr, ytr, cfg, torch.device("cpu"))
    clean = (model(xte).argmax(1) == yte).float().mean().item()
    spec = {"name": "roar", "method": ["ig", "random"], "steps": 8, "fraction": 0.1}
    rows = {r["attack"]: r for r in roar_rows(spec, model, data, xte, yte, clean, retrain, seed=0)}
    assert clean > 0.9
    assert rows["roar-ig"]["adv_accuracy"] < 0.6 and rows["roar-random"]["adv_accuracy"] > 0.8
    assert math.isclose(rows["roar-ig"]["m.roar_degradation"], clean - rows["roar-ig"]["adv_accuracy"])
    assert rows["roar-ig"]["param"] == "fraction" and rows["roar-ig"]["value"] == 0.1
    removed, key = trained[0]
    mean = xtr.mean(0)
    assert key["roar"]["method"] == "ig" and (removed.x_train[:, 0] == mean[0]).all()
    assert (removed.x_test[:, 0] == mean[0]).all()  # the test images are removed too
    assert ((removed.x_train != xtr).sum(1) == 1).all()


def test_roar_rows_get_the_clean_accuracy_of_all_attacked_points(monkeypatch):
    """ROAR's degradation is clean minus retrained accuracy on ALL attacked points: an attack entry with its own
    n_eval reports its prefix's clean accuracy, which must not be taken for it (it was: the first row's)."""
    import robustsweep.core.roar as core_roar
    from robustsweep.core.steps import Evaluation, TrialEnv
    from robustsweep.core.steps.roar import with_roar

    seen = []
    monkeypatch.setattr(core_roar, "roar_rows", lambda spec, model, data, x, y, clean, *a: seen.append(clean) or [])
    x, y = torch.rand(10, 10), torch.randint(0, 2, (10,))
    model = Linear(10, 2)
    truth = (model(x).argmax(1) == y).float().mean().item()
    prefix = {"attack": "fgsm", "n_eval": 3, "clean_accuracy": -1.0}
    ev = Evaluation(model, batch_size=64, trial=TrialEnv(SimpleNamespace(seed=0), None, torch.device("cpu"), None, None))
    with_roar(ev, [prefix, {"attack": "pgd", "n_eval": 10, "clean_accuracy": 0.7}], [{"name": "roar"}], x, y)
    with_roar(ev, [prefix], [{"name": "roar"}], x, y)
    assert seen == [0.7, pytest.approx(truth)]
