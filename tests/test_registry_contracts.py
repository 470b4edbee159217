"""Contract tests over every registry entry (timm's tests/test_models.py style): a new attack, model or detector is
covered the moment it is registered, through its declared metadata, without editing this file.

Attacks: output shape, inside [0, 1], inside the declared norm ball, deterministic under a fixed seed, and batched
(the number of forward passes does not grow with the number of inputs). Models: logits (N, C) and better than
chance after a short fit on digits (32×32 colour backbones: one training step on random tensors of that shape).
Detectors: a fitted threshold whose false-positive rate on its own calibration data is near the target.
"""
from __future__ import annotations

import inspect

import pytest
import torch

from robustsweep.registry import ATTACKS, DETECTORS, MODELS

CHANCE = 0.1
SMALL = {"steps": 5, "search_steps": 1, "sub_epochs": 1, "rounds": 1, "n_seed": 50, "samples": 8, "coords": 16,
         "max_batch": 4096}


def _small_params(entry) -> dict:
    """Fast settings an attack accepts (fewer steps), plus a budget for attacks with a norm ball."""
    params = inspect.signature(entry.fn).parameters
    out = {k: v for k, v in SMALL.items() if k in params}
    if entry.meta.get("budget"):
        out[entry.meta["budget"]] = 0.1 if entry.meta.get("norm") == "linf" else 0.5
    if "step_size" in params and entry.meta.get("budget"):
        out["step_size"] = 0.05
    return out


class CountingModel(torch.nn.Module):
    """Wraps a model and counts forward passes (to tell a batched attack from a per-example loop)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = getattr(inner, "num_classes", 10)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


def _victim(entry, mlp_victim, gmmvae_victim, digits):
    if entry.meta.get("needs") == "gmmvae":
        return gmmvae_victim, digits.x_test[:32], digits.y_test[:32], digits.x_train[:300]
    model, xtr, xte, yte = mlp_victim
    return model, xte[:32], yte[:32], xtr[:300]


def _run(entry, model, x, y, params, seed=0):
    torch.manual_seed(seed)
    return entry.fn(model, x, y, **params)


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_contract(name, mlp_victim, gmmvae_victim, digits):
    entry = ATTACKS.get(name)
    assert entry.meta.get("threat"), f"attack {name} must declare its threat model (norm=..., threat=...)"
    model, x, y, x_train = _victim(entry, mlp_victim, gmmvae_victim, digits)
    if entry.meta.get("threat") == "transfer":
        from robustsweep.attacks.transfer import register_substitute_data

        register_substitute_data(model, x_train)
    params = _small_params(entry)
    x_adv = _run(entry, model, x, y, params)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    norm, budget = entry.meta.get("norm"), entry.meta.get("budget")
    if norm == "linf":
        assert float((x_adv - x).abs().max()) <= params[budget] + 1e-5
    elif norm == "l2":
        assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= params[budget] + 1e-4
    assert torch.equal(x_adv, _run(entry, model, x, y, params)), "same seed, same adversarials"
    # batched: a per-example loop would make ~8x the forward passes on 8x the inputs
    counts = []
    for n in (4, 32):
        counted = CountingModel(model)
        if entry.meta.get("threat") == "transfer":
            register_substitute_data(counted, x_train)
        _run(entry, counted, x[:n], y[:n], params)
        counts.append(counted.calls)
    assert counts[1] <= 2 * counts[0] + 2, f"forward passes grew with the batch: {counts}"


def _model_kwargs(entry) -> dict:
    return dict(entry.meta.get("ci", {}))


@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name, digits):
    from robustsweep.ops.train import TrainConfig, accuracy, fit, seed_everything

    entry = MODELS.get(name)
    assert entry.meta.get("kind") in ("generative", "discriminative"), f"model {name} must declare kind="
    assert isinstance(entry.meta.get("stochastic"), bool), f"model {name} must declare stochastic="
    seed_everything(0)
    if entry.meta.get("input") == "image32":  # paper-scale backbones: shape and one step on real-shaped tensors
        m = entry.fn(input_shape=(3, 32, 32), num_classes=10, **_model_kwargs(entry))
        x = torch.rand(4, 3, 32, 32)
        out = m(x)
        assert out.shape == (4, 10)
        loss = torch.nn.functional.cross_entropy(out, torch.arange(4))
        loss.backward()
        assert any(p.grad is not None for p in m.parameters())
        return
    m = entry.fn(input_shape=digits.input_shape, num_classes=10, **_model_kwargs(entry))
    epochs = entry.meta.get("ci_epochs", 3)  # bottleneck generative models need a few more epochs to leave chance
    fit(m, digits, TrainConfig(epochs=epochs, batch_size=64, lr=3e-3), torch.device("cpu"))
    m.eval()
    with torch.no_grad():
        out = m(digits.x_test[:16])
    assert out.shape == (16, 10)
    assert accuracy(m, digits.x_test, digits.y_test) > 2 * CHANCE


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name, mlp_victim, gmmvae_victim, digits):
    entry = DETECTORS.get(name)
    assert entry.meta.get("calibration") in ("train", "validation"), f"detector {name} must declare calibration="
    if entry.meta.get("needs") == "gmmvae":
        model, x, y = gmmvae_victim, digits.x_train, digits.y_train
    else:
        model, x, _, _ = mlp_victim
        y = model(x).argmax(1)  # any labels the model agrees with; density detectors use the true class at fit
    params = inspect.signature(entry.fn).parameters
    kw = {"target_fpr": 0.05} if "target_fpr" in params else {}
    if "rule" in params:
        kw["rule"] = "fpr"
    det = entry.fn(**kw).fit(model, x, y)
    fpr = det.reject(model, x).float().mean().item()
    assert 0.0 <= fpr <= 0.12, f"{name}: FPR on its calibration data {fpr:.3f}, target 0.05 (gmmvae-tau: 0.3%)"
    s = det.score(model, x)
    assert s.shape == (len(x),) and torch.isfinite(s).all()
