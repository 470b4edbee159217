"""AutoAttack (``autoattack``) and its components (``apgd-t``, ``fab``, ``square``), issue 38 part 3.

(a) oracle: with the same seed and settings our ``autoattack`` equals ``torchattacks.AutoAttack`` bit for bit (its
components are torchattacks' classes; what is ours is the sequence, the seeding and the shapes);
(b) on a briefly trained conv net its robust accuracy is at most PGD's at the same ε;
(c) through the evaluation loop each component keeps its row, with cumulative accuracies that never rise;
(d) the ``rand`` version runs on a stochastic deep-Bayes model with EOT (20 draws per gradient, counted).
"""
from __future__ import annotations

import pytest
import torch
import torchattacks

from robustsweep.attacks.autoattack import components
from robustsweep.attacks.base import attack_norm
from robustsweep.config.grid import split_grid
from robustsweep.core.evaluate import evaluate
from robustsweep.ops.train import accuracy
from robustsweep.registry import ATTACKS
from tests.conftest import trained_gfz

AA = ATTACKS.get("autoattack").fn
NEW = ["autoattack", "apgd-t", "fab", "square"]


@pytest.fixture(scope="module")
def victim(mlp_victim):
    m, _, xte, yte = mlp_victim
    return m, xte[:100], yte[:100]


@pytest.fixture(scope="module")
def conv(digits):
    """The registry's small CNN, 8 epochs on digits (seed 0): the trained conv net of the issue's check."""
    from robustsweep.ops.train import TrainConfig, fit_loss, seed_everything
    from robustsweep.registry import MODELS

    seed_everything(0)
    m = MODELS.get("cnn").fn(input_shape=digits.input_shape, num_classes=10, channels=8, hidden=64)
    fit_loss(m, digits.x_train, digits.y_train, TrainConfig(epochs=8, batch_size=64, lr=3e-3), torch.device("cpu"),
             seed=0)
    for p in m.parameters():
        p.requires_grad_(False)
    m.eval()
    assert accuracy(m, digits.x_test, digits.y_test) > 0.85
    return m, digits.x_test[:150], digits.y_test[:150]


class Counting(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


# ------------------------------------------------------------------------------------------------------ (a) oracle
@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 1.0)])
def test_standard_equals_torchattacks_autoattack(victim, norm, eps):
    """torchattacks' AutoAttack keeps its classes' 10 steps; ours defaults to the original's 100, so steps=10.
    (Its Square makes 5000 queries on whatever survives: 50 points keep the test short.)"""
    m, x, y = victim
    x, y = x[:50], y[:50]
    ref = torchattacks.AutoAttack(m, norm=norm, eps=eps, version="standard", n_classes=10, seed=5)(x, y)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    ours = AA(m, x, y, eps=eps, norm=norm, steps=10, seed=5)
    assert torch.equal(ours, ref)
    assert torch.equal(torch.rand(1), before), "a fixed seed leaves the caller's random stream alone"
    assert accuracy(m, ours, y) < accuracy(m, x, y) - 0.2


def test_rand_equals_torchattacks_autoattack(victim):
    m, x, y = victim
    x, y = x[:40], y[:40]
    ref = torchattacks.AutoAttack(m, norm="Linf", eps=0.08, version="rand", n_classes=10, seed=2)(x, y)
    assert torch.equal(AA(m, x, y, eps=0.08, version="rand", steps=10, seed=2), ref)


def test_same_trial_seed_same_adversarials(victim):
    m, x, y = victim
    x, y = x[:30], y[:30]
    kw = {"eps": 0.1, "version": "custom", "attacks": ["apgd-ce", "square"], "steps": 5, "queries": 50}
    torch.manual_seed(7)
    a = AA(m, x, y, **kw)
    torch.manual_seed(7)
    assert torch.equal(a, AA(m, x, y, **kw))


# --------------------------------------------------------------------------------------------- (b) stronger than PGD
@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_autoattack_at_most_pgd_on_a_trained_conv_net(conv, eps):
    """No tolerance: AutoAttack's first component alone is APGD-CE, at least PGD's match (tests/attacks/test_apgd),
    and three more only add successes."""
    m, x, y = conv
    torch.manual_seed(0)
    a_aa = accuracy(m, AA(m, x, y, eps=eps, steps=20, queries=1000), y)
    torch.manual_seed(0)
    a_pgd = accuracy(m, ATTACKS.get("pgd").fn(m, x, y, eps=eps, steps=40, step_size=eps / 10), y)
    assert a_aa <= a_pgd, (a_aa, a_pgd)
    assert a_aa < accuracy(m, x, y)


# -------------------------------------------------------------------------------------------- (c) component rows
def _rows(model, x, y, spec, batch_size=64):
    return list(evaluate(model, x, y, [spec], batch_size=batch_size))


def test_component_rows_are_kept_and_cumulative(conv):
    m, x, y = conv
    spec = {"name": "autoattack", "eps": [0.0, 0.1], "steps": 10, "queries": 200, "seed": 3}
    rows = _rows(m, x, y, spec)  # batch 64 < 150 points: components are batched like any attack
    labels = [r["attack"] for r in rows]
    stages = ["autoattack/apgd-ce", "autoattack/apgd-t", "autoattack/fab-t", "autoattack/square", "autoattack"]
    assert labels == stages * 2
    zero, full = rows[:5], rows[5:]
    assert all(r["eps"] == 0.0 and r["adv_accuracy"] == r["clean_accuracy"] and r["attack_time_s"] == 0 for r in zero)
    acc = [r["adv_accuracy"] for r in full]
    assert all(b <= a for a, b in zip(acc, acc[1:])), acc
    assert acc[-1] == acc[-2] and acc[0] < full[0]["clean_accuracy"]
    times = [r["attack_time_s"] for r in full]
    assert all(b >= a for a, b in zip(times, times[1:])) and times[-1] == times[-2]
    assert {r["attack_params"] for r in full} == {full[-1]["attack_params"]}  # the entry's parameters on every row


def test_the_final_row_is_the_attack_called_directly(conv):
    m, x, y = conv
    spec = {"name": "autoattack", "eps": 0.1, "steps": 10, "queries": 200, "seed": 3, "label": "aa"}
    rows = _rows(m, x, y, spec, batch_size=1000)
    assert [r["attack"] for r in rows][0] == "aa/apgd-ce" and rows[-1]["attack"] == "aa"
    direct = AA(m, x, y, eps=0.1, steps=10, queries=200, seed=3)
    assert rows[-1]["adv_accuracy"] == pytest.approx(accuracy(m, direct, y))


def test_custom_version_rows_follow_the_list(victim):
    m, x, y = victim
    spec = {"name": "autoattack", "eps": 0.1, "version": "custom", "attacks": ["square", "apgd-dlr"], "steps": 5,
            "queries": 50}
    assert split_grid(AA, spec)[0] is None  # `attacks` is a list-valued parameter, not a grid
    assert [r["attack"] for r in _rows(m, x, y, spec)] == ["autoattack/square", "autoattack/apgd-dlr", "autoattack"]


# -------------------------------------------------------------------------------------- (d) stochastic, rand + EOT
@pytest.fixture(scope="module")
def gfz(digits):
    return trained_gfz(digits, epochs=3, lr=3e-3)


def test_rand_version_uses_eot_on_a_stochastic_model(gfz, digits):
    from robustsweep.models.draws import is_stochastic

    assert is_stochastic(gfz)
    x, y = digits.x_test[:40], digits.y_test[:40]
    calls = {}
    for eot in (None, 1):
        c = Counting(gfz)
        torch.manual_seed(0)
        xa = AA(c, x, y, eps=0.15, version="rand", steps=5, eot=eot)
        calls[eot] = c.calls
        assert (xa - x).abs().max() <= 0.15 + 1e-6
    assert calls[None] >= 2 * 5 * 20 and calls[1] < calls[None] / 10, calls  # 20 draws per gradient by default
    assert [c.params["eot"] for c in components({"version": "rand"})] == [20, 20]
    assert [c.params["eot"] for c in components({"version": "standard"}) if "eot" in c.params] == [1, 1]
    assert {c.params["restarts"] for c in components({"restarts": 3})} == {3}
    assert len({c.params["seed"] for c in components({})}) == 1  # one seed, drawn once, for every component


def test_rand_rows_on_a_stochastic_model(gfz, digits):
    x, y = digits.x_test[:40], digits.y_test[:40]
    torch.manual_seed(0)
    rows = _rows(gfz, x, y, {"name": "autoattack", "eps": 0.15, "version": "rand", "steps": 5})
    assert [r["attack"] for r in rows] == ["autoattack/apgd-ce", "autoattack/apgd-dlr", "autoattack"]
    acc = [r["adv_accuracy"] for r in rows]
    # a stochastic model's points already fooled are not predicted again, so the cumulative accuracy cannot rise
    assert acc[0] >= acc[1] == acc[2] and acc[0] < rows[0]["clean_accuracy"]


# ------------------------------------------------------------------------------------------ components, registry
@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 0.6)])
def test_inside_the_ball_of_the_norm_parameter(victim, name, norm, eps):
    """The contract tests cannot read the ball off a norm that is a parameter; checked here for both norms."""
    m, x, y = victim
    x, y = x[:40], y[:40]
    small = {"autoattack": {"steps": 5, "queries": 100}, "apgd-t": {"steps": 5}, "fab": {"steps": 5},
             "square": {"queries": 100}}[name]
    torch.manual_seed(0)
    xa = ATTACKS.get(name).fn(m, x, y, eps=eps, norm=norm, **small)
    d = (xa - x).flatten(1)
    size = d.abs().max(1).values if norm == "Linf" else d.norm(dim=1)
    assert (size <= eps + 1e-5).all() and xa.min() >= 0 and xa.max() <= 1
    assert accuracy(m, xa, y) < accuracy(m, x, y)
    assert torch.equal(ATTACKS.get(name).fn(m, x, y, eps=0.0, norm=norm, **small), x)


def test_fab_targeted_is_fab_t(victim):
    m, x, y = victim
    x, y = x[:40], y[:40]
    ours = ATTACKS.get("fab").fn(m, x, y, eps=0.1, steps=10, targeted=True, seed=0)
    ref = torchattacks.FAB(m, eps=0.1, steps=10, multi_targeted=True, n_classes=10, seed=0)(x, y)
    assert torch.equal(ours, ref)


def test_non_image_inputs_go_through(victim):
    """torchattacks assumes (N, C, H, W); flat inputs are passed as (N, D, 1, 1) and reshaped back."""
    m, x, y = victim
    flat = Counting(m)  # the MLP flattens its input: it takes (N, 64) as well

    def as_image(xf):
        return xf.view(-1, 1, 8, 8)

    xf = x[:30].flatten(1)
    torch.manual_seed(0)
    out = AA(flat, xf, y[:30], eps=0.1, steps=5, queries=50)
    torch.manual_seed(0)
    ref = AA(m, as_image(xf), y[:30], eps=0.1, steps=5, queries=50)
    assert out.shape == xf.shape and torch.equal(as_image(out), ref)


def test_attack_norm_of_every_kind_of_entry():
    assert attack_norm(ATTACKS.get("pgd"), {}) == "linf"
    assert attack_norm(ATTACKS.get("pgd-l2"), {"eps": 1.0}) == "l2"
    assert attack_norm(ATTACKS.get("cw"), {}) is None
    for name in NEW:
        assert attack_norm(ATTACKS.get(name), {}) == "linf"  # the signature default, Linf
        assert attack_norm(ATTACKS.get(name), {"norm": "L2", "eps": 0.5}) == "l2"
        assert ATTACKS.get(name).meta["budget"] == "eps"
    assert ATTACKS.get("square").meta["threat"] == "score" and ATTACKS.get("autoattack").meta["queries"] == "queries"


@pytest.mark.parametrize("kw,match", [
    ({"version": "custom"}, "needs attacks"),
    ({"version": "custom", "attacks": ["apgd-ce", "pgd"]}, "unknown component"),
    ({"attacks": ["apgd-ce"]}, "list of a custom version"),
    ({"version": "plus"}, "standard, rand or custom"),
    ({"norm": "linf"}, "Linf or L2"),
])
def test_bad_settings_are_refused_at_every_eps(victim, kw, match):
    m, x, y = victim
    for eps in (0.0, 0.1):
        with pytest.raises(ValueError, match=match):
            AA(m, x[:4], y[:4], eps=eps, **kw)


def test_apgd_t_needs_four_classes():
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    with pytest.raises(ValueError, match="at least 4 classes"):
        ATTACKS.get("apgd-t").fn(m, torch.rand(4, 6), torch.zeros(4, dtype=torch.long), eps=0.1)
