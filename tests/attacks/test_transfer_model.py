"""transfer-from (paper 001 appendix A.3): PGD crafted on a named source model trained like the victim.

What would break if the attack were wrong: the adversarials must be exactly PGD on the source (not on the victim);
the source must be the model a trial of that config trains (same cache entry as core/trial.train_model, trained
once); loading or training a source must not move the global random state; no context = a clear error."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from robustsweep.attacks import transfer_model as tm
from robustsweep.attacks.pgd import pgd
from robustsweep.models.cache import set_default_cache_dir

TRAIN = {"epochs": 2, "batch_size": 128, "lr": 3e-3, "weight_decay": 0.0}
VICTIM = {"name": "mlp", "hidden": 32, "layers": 1}
SOURCE = {"name": "mlp", "hidden": 48, "layers": 1}
PGD = {"eps": 0.2, "steps": 5, "step_size": 0.05}


def _cfg(model: dict) -> dict:
    return {"model": model, "dataset": {"name": "digits"}, "seed": 0, "train": dict(TRAIN), "attacks": [],
            "detectors": [], "eval": {"n_eval": 32}}


def _trial_model(cfg: dict, digits, cache_dir):
    from robustsweep.core.trial import train_model

    return train_model(cfg, digits, torch.device("cpu"), cache_dir, lambda m: None)


@pytest.fixture()
def cache(tmp_path):
    set_default_cache_dir(tmp_path)
    yield tmp_path
    set_default_cache_dir(None)


def test_without_a_source_it_is_white_box_pgd_on_the_victim(mlp_victim):
    model, _, x, y = mlp_victim
    torch.manual_seed(3)
    a = tm.transfer_from(model, x[:32], y[:32], **PGD)
    torch.manual_seed(3)
    b = pgd(model, x[:32], y[:32], **PGD)
    assert torch.equal(a, b)


def test_a_source_without_the_trial_context_is_a_clear_error(mlp_victim):
    model, _, x, y = mlp_victim
    with pytest.raises(ValueError, match="register_source_context"):
        tm.transfer_from(torch.nn.Sequential(model), x[:4], y[:4], source=SOURCE, **PGD)


def test_source_is_the_trials_cached_model_trained_once_and_attacked_with_pgd(digits, cache):
    victim, _ = _trial_model(_cfg(VICTIM), digits, cache)
    tm.register_source_context(victim, digits, _cfg(VICTIM))
    x, y = digits.x_test[:40], digits.y_test[:40]
    n_before = len(list(cache.glob("*.pt")))
    torch.manual_seed(1)
    adv = tm.transfer_from(victim, x, y, source=SOURCE, **PGD)
    assert len(list(cache.glob("*.pt"))) == n_before + 1  # the source was trained and cached
    # a trial whose victim is the source's config finds it in the cache: one entry, same key as core/trial
    src, cached = _trial_model(_cfg(SOURCE), digits, cache)
    assert cached
    torch.manual_seed(1)
    assert torch.equal(adv, pgd(src, x, y, **PGD)), "adversarials must be PGD on the source"
    torch.manual_seed(1)
    assert not torch.equal(adv, pgd(victim, x, y, **PGD)), "not PGD on the victim"
    # an eps grid reuses the source of this victim; a second victim (trial) loads it instead of training
    assert tm.cache_info(victim)["n_sources"] == 1
    other, _ = _trial_model(_cfg({**VICTIM, "hidden": 40}), digits, cache)
    tm.register_source_context(other, digits, _cfg({**VICTIM, "hidden": 40}))
    s2 = tm.source_model(other, SOURCE)
    assert s2 is not src and all(torch.equal(p, q) for p, q in zip(s2.parameters(), src.parameters()))


def test_a_source_equal_to_the_victim_section_is_the_victim(digits, cache):
    victim, _ = _trial_model(_cfg(VICTIM), digits, cache)
    tm.register_source_context(victim, digits, _cfg(VICTIM))
    assert tm.source_model(victim, dict(VICTIM)) is victim


def test_training_or_loading_a_source_leaves_the_global_random_state_alone(digits, cache):
    victim, _ = _trial_model(_cfg(VICTIM), digits, cache)

    def states():
        return torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()

    for _ in range(2):  # first: trained here; second (a new victim object, same trial): loaded from the cache
        v = torch.nn.Sequential(victim)
        v.num_classes = 10
        tm.register_source_context(v, digits, _cfg(VICTIM))
        torch.manual_seed(7), random.seed(7), np.random.seed(7)
        before = states()
        tm.source_model(v, SOURCE)
        after = states()
        assert torch.equal(before[0], after[0]) and before[1] == after[1] and (before[2] == after[2]).all()


def test_source_section_accepts_a_name_or_a_section():
    assert tm.source_section("gfz") == {"name": "gfz"}
    assert tm.source_section({"name": "cnn", "channels": 8}) == {"name": "cnn", "channels": 8}
    with pytest.raises(ValueError):
        tm.source_section({"dim_z": 3})


@pytest.mark.parametrize("scale", ["ci", "paper"])
def test_matrix_file_pairs_every_victim_with_every_source_by_identical_sections(scale):
    """p001_transfer_matrix.yaml: each source section is exactly a victim's model section (so source and victim
    share one cache entry and the diagonal is the victim itself), and every victim meets every source."""
    from robustsweep.config.spec import load_spec
    from tests.conftest import REPO

    trials = load_spec(REPO / "experiments" / "p001_transfer_matrix.yaml", scale=scale).expand()
    victims = [t["model"] for t in trials if t["seed"] == trials[0]["seed"]]
    for t in trials:
        sources = [a["source"] for a in t["attacks"] if a["name"] == "transfer-from"]
        assert sources == victims, "sources and victims must be the same model sections in the same order"
        assert [a["label"] for a in t["attacks"]] == [f"from-{v['name']}" for v in victims]


def test_registration_loads_the_configs_sources_up_front(digits, cache):
    """So that source training is not timed as part of an attack (attack_time_s) and happens once per trial."""
    victim, _ = _trial_model(_cfg(VICTIM), digits, cache)
    cfg = {**_cfg(VICTIM), "attacks": [{"name": "transfer-from", "source": SOURCE, "eps": [0.1]},
                                       {"name": "transfer-from", "source": None, "eps": [0.1]},
                                       {"name": "pgd", "eps": [0.1]}]}
    tm.register_source_context(victim, digits, cfg)
    assert tm.cache_info(victim) == {"n_sources": 1, "has_context": True}
