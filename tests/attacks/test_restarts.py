"""``restarts: R`` on PGD, PGD-L2, APGD and MIM (:func:`robustsweep.attacks.base.restarted`).

R = 1 is the attack as it always was (same output, same random draws: trial ids and rows do not move); R > 1 keeps
per example the first fooling restart, so on a deterministic model an example fooled at R = 1 (same seed, hence
the same first restart) stays fooled and the accuracy can only fall. Weak settings (few steps, a small ε) leave
room for restarts to matter; the victim is the shared digits MLP.
"""
from __future__ import annotations

import pytest
import torch
import torchattacks

from robustsweep.config.domains import domain_for
from robustsweep.registry import ATTACKS

RESTARTING = ["pgd", "pgd-l2", "apgd", "mim"]
#: weak settings per attack: restarts have something to find
WEAK = {"pgd": {"eps": 0.06, "steps": 3, "step_size": 0.02}, "pgd-l2": {"eps": 0.4, "steps": 3, "step_size": 0.15},
        "apgd": {"eps": 0.06, "steps": 3}, "mim": {"eps": 0.06, "steps": 3}}


@pytest.fixture(scope="module")
def victim(mlp_victim):
    m, _, xte, yte = mlp_victim
    return m, xte[:200], yte[:200]


def _run(name, m, x, y, seed=0, **kw):
    torch.manual_seed(seed)
    out = ATTACKS.get(name).fn(m, x, y, **WEAK[name], **kw)
    return out, torch.rand(1)  # the RNG state after the attack: R = 1 must draw exactly what it always drew


@torch.no_grad()
def _fooled(m, xa, y):
    return m(xa).argmax(1) != y


def test_the_four_attacks_take_restarts_with_domain_at_least_one():
    for name in RESTARTING:
        assert ATTACKS.get(name).defaults()["restarts"] == 1
        assert domain_for("attack", name, "restarts").lo == 1  # `restarts: 0` is refused by the spec validation


@pytest.mark.parametrize("name", RESTARTING)
def test_one_restart_is_the_attack_as_before(victim, name):
    m, x, y = victim
    a, ra = _run(name, m, x, y)
    b, rb = _run(name, m, x, y, restarts=1)
    assert torch.equal(a, b) and torch.equal(ra, rb)


def test_one_restart_still_matches_torchattacks(victim):
    """An independent pin of "as before": PGD (same random start) and MIM equal torchattacks' bit for bit."""
    m, x, y = victim
    torch.manual_seed(1)
    ours = ATTACKS.get("pgd").fn(m, x, y, eps=0.1, steps=10, step_size=0.02, restarts=1)
    torch.manual_seed(1)
    ref = torchattacks.PGD(m, eps=0.1, alpha=0.02, steps=10, random_start=True)(x, y)
    assert torch.allclose(ours, ref, atol=1e-6)
    ours = ATTACKS.get("mim").fn(m, x, y, eps=0.1, steps=10, step_size=0.02, restarts=1)
    ref = torchattacks.MIFGSM(m, eps=0.1, alpha=0.02, steps=10, decay=1.0)(x, y)
    assert torch.allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("name", RESTARTING)
def test_more_restarts_never_unfool_an_example(victim, name):
    m, x, y = victim
    one, _ = _run(name, m, x, y, restarts=1)
    many, _ = _run(name, m, x, y, restarts=4)
    f1, f4 = _fooled(m, one, y), _fooled(m, many, y)
    assert not (f1 & ~f4).any(), "an example fooled by the first restart must stay fooled"
    assert f4.sum() >= f1.sum()
    assert torch.equal(many[f1], one[f1]), "the first fooling restart is kept"
    d = (many - x).flatten(1)
    if name == "pgd-l2":
        assert d.norm(dim=1).max() <= WEAK[name]["eps"] + 1e-5
    else:
        assert d.abs().max() <= WEAK[name]["eps"] + 1e-6
    assert many.min() >= 0 and many.max() <= 1


def test_restarts_find_more_somewhere(victim):
    """Restarts are not a no-op: over the four weak attacks, four restarts fool strictly more examples in total
    (on this victim PGD and PGD-L2 gain a few; APGD's adaptive step and MIM gain none at these settings)."""
    m, x, y = victim
    gained = {}
    for name in RESTARTING:
        f1 = _fooled(m, _run(name, m, x, y, restarts=1)[0], y).sum().item()
        f4 = _fooled(m, _run(name, m, x, y, restarts=4)[0], y).sum().item()
        gained[name] = f4 - f1
    assert sum(gained.values()) > 0 and min(gained.values()) >= 0, gained


def test_an_unfooled_example_takes_the_highest_loss_restart(victim):
    """Where no restart fools, the kept point is the highest-loss one: its loss is at least the first restart's."""
    m, x, y = victim
    one, _ = _run("pgd", m, x, y, restarts=1)
    many, _ = _run("pgd", m, x, y, restarts=4)
    still = ~_fooled(m, many, y)
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        l1, l4 = ce(m(one), y, reduction="none"), ce(m(many), y, reduction="none")
    assert still.any() and (l4[still] >= l1[still] - 1e-6).all()


def test_zero_restarts_is_refused(victim):
    m, x, y = victim
    with pytest.raises(ValueError, match="restarts"):
        ATTACKS.get("pgd").fn(m, x, y, eps=0.1, steps=2, restarts=0)


class _Rejects:
    """A detector whose hinge evasion term is +1 everywhere (it rejects every input) or -1 (accepts every one)."""

    def __init__(self, value: float):
        self.value = value

    def evasion(self, model, x, form="hinge", logits=None):
        return torch.full((len(x),), self.value)


@pytest.mark.parametrize("value,expect_all_restarts", [(1.0, True), (-1.0, False)])
def test_with_a_hinge_detector_fooled_means_fooled_and_accepted(victim, value, expect_all_restarts):
    """Detector-aware restarts stop at an example only when it is misclassified AND the detector accepts it: a
    detector that rejects everything keeps every example in every restart."""
    from robustsweep.attacks.adaptive import DetectorTerm
    from robustsweep.attacks.base import restarted

    m, x, y = victim
    term = DetectorTerm(_Rejects(value), m, 0.5, "hinge")
    sizes = []

    def attempt(xs, ys, first):
        sizes.append(len(xs))
        return ATTACKS.get("pgd").fn.__wrapped__(m, xs, ys, **WEAK["pgd"], term=term, random_start=True)

    torch.manual_seed(0)
    out = restarted(attempt, m, x, y, 3, term)
    assert out.shape == x.shape and len(sizes) == 3
    assert (sizes == [len(x)] * 3) == expect_all_restarts
    torch.manual_seed(0)
    aware = ATTACKS.get("pgd").fn(m, x, y, **WEAK["pgd"], restarts=3,
                                  detector_aware={"detector": _Rejects(value), "form": "hinge"}, det_lambda=0.5)
    assert torch.equal(aware, out)
