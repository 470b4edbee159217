"""The one place that gives a gradient attack its ``detector_aware`` / ``det_lambda`` settings and the ε = 0 guard
(:func:`robustsweep.attacks.base.detector_aware`): what the registry and the spec validation read, and what runs."""
from __future__ import annotations

import inspect
import typing

import pytest
import torch

from robustsweep.attacks.adaptive import DetectorTerm, EnergyEvasion
from robustsweep.attacks.base import detector_aware
from robustsweep.registry import ATTACKS

#: every attack written on a bound term; the list is read off the registry, so a new one is covered when it registers
DETECTOR_AWARE = [e.name for e in ATTACKS.entries() if "detector_aware" in e.params()]


def test_the_gradient_attacks_take_the_settings():
    assert {"fgsm", "pgd", "pgd-l2", "mim", "ifgsm", "bim", "apgd", "cw"} <= set(DETECTOR_AWARE)


@pytest.mark.parametrize("name", DETECTOR_AWARE)
def test_settings_in_signature_and_type_hints(name):
    fn = ATTACKS.get(name).fn
    params = inspect.signature(fn).parameters
    assert "term" not in params and params["detector_aware"].default is None and params["det_lambda"].default is None
    names = list(params)
    assert names.index("det_lambda") == names.index("detector_aware") + 1
    hints = typing.get_type_hints(fn)  # the spec validation type-checks settings with these
    assert hints["detector_aware"] == (dict[str, typing.Any] | None) and hints["det_lambda"] == (float | None)
    assert "term" not in hints and "detector_aware" in ATTACKS.settable_params(name)


class Victim(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(6, 3)
        self.num_classes = 3

    def forward(self, x):
        return self.lin(x.flatten(1))


def _toy(budget="eps"):
    seen = {}

    @detector_aware(budget)
    def attack(model, x, y, eps: float = 0.1, steps: int = 2, term: DetectorTerm | None = None, tail: int = 0):
        seen.update(term=term, eps=eps, steps=steps, tail=tail)
        return x + eps

    return attack, seen


def test_the_wrapped_attack_gets_the_bound_term():
    attack, seen = _toy()
    assert list(inspect.signature(attack).parameters) == ["model", "x", "y", "eps", "steps", "detector_aware",
                                                          "det_lambda", "tail"]
    m, x, y = Victim(), torch.rand(4, 6), torch.tensor([0, 1, 2, 0])
    attack(m, x, y, 0.2, tail=3)
    assert seen == {"term": None, "eps": 0.2, "steps": 2, "tail": 3}
    attack(m, x, y, detector_aware={"detector": EnergyEvasion(), "form": "raw"}, det_lambda=0.5)
    term = seen["term"]
    assert isinstance(term, DetectorTerm) and term.lam == 0.5 and term.form == "raw" and term.model is m
    attack(m, x, y, detector_aware={"detector": EnergyEvasion(), "form": "raw"}, det_lambda=0.0)
    assert seen["term"] is None  # λ = 0 adds nothing: the plain attack


def test_zero_budget_returns_the_inputs_after_checking_the_settings():
    attack, seen = _toy()
    m, x, y = Victim(), torch.rand(4, 6), torch.tensor([0, 1, 2, 0])
    out = attack(m, x, y, eps=0.0)
    assert torch.equal(out, x) and out is not x and not seen  # the body never ran
    with pytest.raises(ValueError, match="det_lambda"):
        attack(m, x, y, eps=0.0, det_lambda=1.0)  # λ without a detector fails at ε = 0 as at every ε
    no_ball, seen = _toy(budget=None)
    no_ball(m, x, y, eps=0.0)
    assert seen["eps"] == 0.0  # no ε-ball (CW): nothing is skipped


@pytest.mark.parametrize("name", [n for n in DETECTOR_AWARE if ATTACKS.get(n).meta.get("budget")])
def test_zero_budget_is_the_clean_input(name):
    m, x, y = Victim(), torch.rand(4, 6), torch.tensor([0, 1, 2, 0])
    budget = ATTACKS.get(name).meta["budget"]
    out = ATTACKS.get(name).fn(m, x, y, **{budget: 0.0})
    assert torch.equal(out, x)
