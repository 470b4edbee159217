"""PGD-AT (``train.adversarial``, paper 004's "robust" models): the loss sees PGD adversarials within ε of the
clean batch, the trained model resists PGD better than the regular one, and the option keeps old trial ids."""
from __future__ import annotations

import pytest
import torch

import robustsweep.ops.train as train_mod
from robustsweep.ops.train import TrainConfig, fit_loss, pgd_examples


def _digits(n_train: int = 1000):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train:]], y[perm[n_train:]]


def _mlp():
    from robustsweep.models.baselines import mlp

    torch.manual_seed(0)
    return mlp((1, 8, 8), 10, hidden=64, layers=2)


def test_the_loss_is_computed_on_pgd_adversarials_within_eps(monkeypatch):
    xtr, ytr, _, _ = _digits(256)
    model, eps = _mlp(), 0.1
    crafted: list[tuple[torch.Tensor, torch.Tensor]] = []
    fed: list[torch.Tensor] = []

    def spy_pgd(*args, **kw):
        x_adv = pgd_examples(*args, **kw)
        crafted.append((args[2], x_adv))  # (clean batch, its adversarials)
        return x_adv

    def spy_loss(x, y):
        if not x.requires_grad:  # the training step's call (the attack's calls differentiate w.r.t. x)
            fed.append(x)
        return model.loss(x, y)

    monkeypatch.setattr(train_mod, "pgd_examples", spy_pgd)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=1e-3, adversarial={"eps": eps, "steps": 3, "step_size": 0.04})
    fit_loss(model, xtr, ytr, cfg, torch.device("cpu"), loss_fn=spy_loss)
    assert len(crafted) == len(fed) == 2 * 4  # one adversarial batch per minibatch, and the loss saw exactly it
    for (clean, adv), seen in zip(crafted, fed):
        assert seen is adv
        assert (adv - clean).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
        assert (adv - clean).abs().amax(dim=(1, 2, 3)).min() > 0  # every example was moved


def test_pgd_examples_raise_the_loss_and_restore_the_mode():
    xtr, ytr, _, _ = _digits(300)
    model = _mlp()
    fit_loss(model, xtr, ytr, TrainConfig(epochs=3, batch_size=64, lr=3e-3), torch.device("cpu"))
    model.train()
    adv = pgd_examples(model, model.loss, xtr[:200], ytr[:200], 0.2, 5, 0.05, torch.Generator().manual_seed(0))
    assert model.training
    with torch.no_grad():
        assert model.loss(adv, ytr[:200]) > model.loss(xtr[:200], ytr[:200]) + 0.3


def test_adversarially_trained_mlp_resists_pgd_better_on_digits():
    from robustsweep.attacks.pgd import pgd
    from robustsweep.ops.train import accuracy

    xtr, ytr, xte, yte = _digits()
    eps = 0.15
    regular, robust = _mlp(), _mlp()
    fit_loss(regular, xtr, ytr, TrainConfig(epochs=15, batch_size=64, lr=3e-3), torch.device("cpu"))
    fit_loss(robust, xtr, ytr, TrainConfig(epochs=15, batch_size=64, lr=3e-3,
                                           adversarial={"eps": eps, "steps": 5, "step_size": 0.05}),
             torch.device("cpu"))
    torch.manual_seed(0)
    acc = {name: accuracy(m, pgd(m, xte, yte, eps=eps, steps=10, step_size=0.03), yte)
           for name, m in (("regular", regular), ("robust", robust))}
    assert accuracy(robust, xte, yte) > 0.8  # still a classifier
    assert acc["robust"] > acc["regular"] + 0.2, acc


def test_train_spec_adversarial_is_validated_and_left_out_when_unset():
    from robustsweep.config.spec import TrainSpec

    assert "adversarial" not in TrainSpec().model_dump()  # old trial ids / model-cache keys unchanged
    dumped = TrainSpec(adversarial={"eps": 0.1, "steps": 3, "step_size": 0.05}).model_dump()
    assert dumped["adversarial"] == {"eps": 0.1, "steps": 3, "step_size": 0.05}
    with pytest.raises(ValueError):
        TrainSpec(adversarial={"eps": 0.1, "steps": 0, "step_size": 0.05})
    with pytest.raises(ValueError, match="train.adversarial"):
        fit_loss(_mlp(), torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long),
                 TrainConfig(epochs=1, adversarial={"eps": 0.1}), torch.device("cpu"))
