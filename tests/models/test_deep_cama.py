"""Deep CAMA (paper 000's baseline [18]) and the m fine-tuning it brings: the head on the image alone computes eq. 10
as the one-at-a-time oracle does, fine-tuning moves only the m-path (q(m) and the decoder's m columns), switches
the estimator to a learned q(m) that survives a state-dict round trip (the model cache), and on a trained model
it fits perturbed images better: the (z, m) ELBO of held-out PGD inputs rises."""
from __future__ import annotations

import pytest
import torch

from robustsweep.models.causal import CausalHead
from robustsweep.models.m_finetune import MFinetune
from robustsweep.ops.train import TrainConfig
from robustsweep.registry import MODELS


def test_image_only_head_matches_the_loop_oracle():
    torch.manual_seed(0)
    head = CausalHead(16, 0, 3, dim_z=3, dim_m=2, hidden=8, K=4)
    head.m_learned.fill_(True)  # the fine-tuned estimator, with p(m)/q(m)
    xx = torch.rand(5, 16)
    eps_m, eps_z = torch.randn(4, 3, 5, 2), torch.randn(4, 3, 5, 3)
    torch.testing.assert_close(head.logits(xx, eps_m, eps_z), head.logits_loop(xx, eps_m, eps_z), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [{"eps": 0.1}, {"eps": 0.1, "steps": 2, "step_size": 0.01},
                                 {"eps": 0.1, "steps": 10, "step_size": 0.02, "epoch": 1}, "pgd"])
def test_bad_m_finetune_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="m_finetune"):
        MFinetune.parse(bad)


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    m = MODELS.get("deep-cama").fn(input_shape=digits.input_shape, num_classes=10, hidden=64, dim_z=8, K=5,
                                   m_finetune={"eps": 0.1, "steps": 5, "step_size": 0.03, "epochs": 3, "n": 300})
    spec, m.m_finetune = m.m_finetune, None
    m.fit(digits, TrainConfig(epochs=8, batch_size=64, lr=3e-3), torch.device("cpu"))
    return m, spec


def test_fine_tuning_moves_only_the_m_path_and_helps_on_perturbed_inputs(trained, digits):
    from robustsweep.models.m_finetune import finetune_m
    from robustsweep.ops.train import pgd_examples

    m, spec = trained
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x, y = digits.x_test[:100], digits.y_test[:100]
    g = torch.Generator().manual_seed(5)
    x_adv = pgd_examples(m, lambda a, b: torch.nn.functional.cross_entropy(m(a), b), x, y, 0.1, 5, 0.03, g)
    m.head.m_learned.fill_(True)  # the bound fine-tuning maximises, at its starting point
    torch.manual_seed(1)
    elbo_before = m.head.elbo(m.head_input(x_adv), y).mean().item()
    m.head.m_learned.fill_(False)
    finetune_m(m, m.head, m.head_input, digits.x_train, digits.y_train, spec,
               TrainConfig(epochs=8, batch_size=64, lr=3e-3), torch.device("cpu"), None, 0)
    after = m.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "head.m_learned" in changed and bool(m.head.m_learned)
    assert any(k.startswith("head.q_m.") for k in changed) and "head.dec.0.weight" in changed
    assert changed <= {"head.m_learned", "head.dec.0.weight"} | {k for k in before if k.startswith("head.q_m.")}
    dm = after["head.dec.0.weight"] - before["head.dec.0.weight"]
    assert dm[:, :-m.head.dim_m].abs().max() == 0 and dm[:, -m.head.dim_m:].abs().max() > 0  # only m's columns
    assert all(p.requires_grad for p in m.parameters())  # restored for whoever trains next
    torch.manual_seed(1)
    elbo_after = m.head.elbo(m.head_input(x_adv), y).mean().item()
    # on held-out perturbed images (test split, not the ones fine-tuned on) the (z, m) bound rises
    assert elbo_after > elbo_before + 1.0, (elbo_before, elbo_after)
    # the learned estimator survives a state-dict round trip (the trained-model cache rebuilds, then loads)
    fresh = MODELS.get("deep-cama").fn(input_shape=digits.input_shape, num_classes=10, hidden=64, dim_z=8, K=5)
    assert not bool(fresh.head.m_learned)
    fresh.load_state_dict(after)
    assert bool(fresh.head.m_learned)
    eps_m, eps_z = torch.randn(5, 10, 4, m.head.dim_m), torch.randn(5, 10, 4, m.head.dim_z)
    with torch.no_grad():
        torch.testing.assert_close(fresh.head.logits(m.head_input(x[:4]), eps_m, eps_z),
                                   m.head.logits(m.head_input(x[:4]), eps_m, eps_z))


def test_causal_fusion_model_runs_the_fine_tuning(digits, tmp_path, monkeypatch):
    import robustsweep.models.fusion as fusion_mod

    monkeypatch.setattr(fusion_mod, "default_cache_dir", lambda: None)
    torch.manual_seed(0)
    m = MODELS.get("causal").fn(input_shape=digits.input_shape, num_classes=10, backbone="cnn", feature_depth="pool1",
                                hidden=32, dim_z=4, K=2, backbone_epochs=1,
                                m_finetune={"eps": 0.1, "steps": 2, "step_size": 0.05, "epochs": 1, "n": 64})
    m.fit(digits, TrainConfig(epochs=1, batch_size=64, lr=1e-3), torch.device("cpu"))
    assert bool(m.head.m_learned) and m.m_finetune.n == 64
