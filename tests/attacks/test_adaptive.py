"""Detector-aware attacks as one mechanism (issue 19): presets, λ = 0, the λ grid in the rows, error messages.

Every test here has an independent oracle: the pre-issue-19 HE-PGD implementation (copied below, frozen), plain
PGD for λ = 0, or a hand-computed gradient.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from robustsweep.attacks.adaptive import EnergyEvasion, detector_term
from robustsweep.attacks.base import linf_random_start, linf_steps
from robustsweep.core.evaluate import evaluate
from robustsweep.detect import fit_detectors
from robustsweep.registry import ATTACKS

GRADIENT_ATTACKS = ("pgd", "pgd-l2", "fgsm", "mim", "ifgsm", "bim", "apgd", "cw")


def _he_pgd_before_issue_19(model, x, y, eps, steps, step_size, lam, eot=1):
    """The he-pgd of commit 45b30c9, verbatim in behaviour: the oracle the preset must reproduce bit for bit."""
    def loss(logits, yy):
        energy = -torch.logsumexp(logits, dim=1)
        return F.cross_entropy(logits, yy, reduction="sum") + lam * energy.sum()

    x_adv = linf_random_start(x, eps)
    return linf_steps(model, x, y, x_adv, eps, steps, step_size, eot, loss_fn=None if lam == 0 else loss)


@pytest.mark.parametrize("lam", [0.0, 1.2, 5.0])
def test_he_pgd_preset_is_bit_identical_to_the_old_attack(mlp_victim, lam):
    model, _, xte, yte = mlp_victim
    x, y = xte[:64], yte[:64]
    torch.manual_seed(3)
    old = _he_pgd_before_issue_19(model, x, y, 0.1, 5, 0.02, lam)
    torch.manual_seed(3)
    new = ATTACKS.get("he-pgd").fn(model, x, y, eps=0.1, steps=5, step_size=0.02, lam=lam)
    assert torch.equal(old, new)
    if lam:  # not vacuous: the energy term changes the adversarials
        torch.manual_seed(3)
        assert not torch.equal(new, ATTACKS.get("pgd").fn(model, x, y, eps=0.1, steps=5, step_size=0.02))


def test_pgd_with_energy_detector_raw_is_he_pgd(mlp_victim):
    """The mechanism with a FITTED energy detector (raw form) gives exactly the preset's adversarials: same score."""
    model, xtr, xte, yte = mlp_victim
    det = fit_detectors([{"name": "energy", "rule": "fpr"}], model, xtr[:300], model(xtr[:300]).argmax(1))["energy"]
    x, y = xte[:48], yte[:48]
    torch.manual_seed(5)
    preset = ATTACKS.get("he-pgd").fn(model, x, y, eps=0.1, steps=4, step_size=0.03, lam=2.0)
    torch.manual_seed(5)
    mech = ATTACKS.get("pgd").fn(model, x, y, eps=0.1, steps=4, step_size=0.03,
                                 detector_aware={"detector": det, "form": "raw"}, det_lambda=2.0)
    assert torch.equal(preset, mech)


@pytest.mark.parametrize("name", GRADIENT_ATTACKS)
def test_every_gradient_attack_takes_detector_aware_and_lambda_zero_is_the_plain_attack(mlp_victim, name):
    model, _, xte, yte = mlp_victim
    x, y = xte[:16], yte[:16]
    fn = ATTACKS.get(name).fn
    kw = {"c": 10.0, "steps": 15, "lr": 0.1, "abort_early": False} if name == "cw" else {"eps": 0.1}
    if name in ("pgd", "pgd-l2", "mim", "ifgsm", "bim", "apgd"):
        kw["steps"] = 3
    torch.manual_seed(0)
    plain = fn(model, x, y, **kw)
    torch.manual_seed(0)
    zero = fn(model, x, y, **kw, detector_aware={"detector": EnergyEvasion(), "form": "raw"}, det_lambda=0.0)
    assert torch.equal(plain, zero)
    torch.manual_seed(0)
    big = fn(model, x, y, **kw, detector_aware={"detector": EnergyEvasion(), "form": "raw"}, det_lambda=50.0)
    assert big.shape == x.shape and not torch.equal(big, plain), f"{name}: the detector term changed nothing"


def test_loss_gradient_includes_minus_lambda_times_evasion():
    """One FGSM step on a linear model: the sign of d/dx [CE - λ·raw score] with a hand-computed gradient."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    x, y = torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])

    class Sum:  # raw score = sum of the logits: gradient = W.sum(0) for every input
        def evasion(self, model, xx, form="hinge", logits=None):
            return (model(xx) if logits is None else logits).sum(1)

    lam = 100.0  # dominates the CE term
    adv = ATTACKS.get("fgsm").fn(lin, x, y, eps=0.01, detector_aware={"detector": Sum(), "form": "raw"},
                                 det_lambda=lam)
    expected = (x - 0.01 * lin.weight.detach().sum(0).sign()).clamp(0, 1)
    assert torch.allclose(adv, expected)


def test_errors_name_the_problem(mlp_victim):
    model = mlp_victim[0]
    with pytest.raises(ValueError, match="is a label"):
        detector_term(model, {"detector": "logit"})
    with pytest.raises(ValueError, match="form"):
        detector_term(model, {"detector": EnergyEvasion(), "form": "square"})
    with pytest.raises(ValueError, match="unknown key"):
        detector_term(model, {"detector": EnergyEvasion(), "lamda": 1.0})
    with pytest.raises(ValueError, match="give detector_aware"):
        detector_term(model, None, det_lambda=1.0)
    with pytest.raises(TypeError, match="NoEvasion has no differentiable evasion"):
        class NoEvasion:
            pass
        detector_term(model, {"detector": NoEvasion()})
    with pytest.raises(ValueError, match="no fitted threshold"):  # the threshold-free energy term cannot be a hinge
        EnergyEvasion().evasion(model, torch.rand(2, 1, 8, 8), form="hinge")


def test_evaluate_resolves_the_label_and_records_the_lambda_grid(mlp_victim):
    model, xtr, xte, yte = mlp_victim
    dets = fit_detectors([{"name": "logit"}, {"name": "kl", "label": "kl5"}], model, xtr[:400], model(xtr[:400]).argmax(1))
    spec = {"name": "pgd", "eps": 0.1, "steps": 3, "step_size": 0.04,
            "detector_aware": {"detector": "kl5", "form": "hinge", "lambda": [0.0, 30.0]}}
    rows = list(evaluate(model, xte[:40], yte[:40], [spec], dets))
    assert [r["param"] for r in rows] == ["det_lambda", "det_lambda"]
    assert [r["value"] for r in rows] == [0.0, 30.0]
    params = json.loads(rows[1]["attack_params"])
    assert params["detector_aware"] == {"detector": "kl5", "form": "hinge"} and params["det_lambda"] == 30.0
    for r in rows:  # the joint columns for every detector of the trial, not only the one attacked
        for label in ("logit", "kl5"):
            assert 0.0 <= r[f"det.{label}.attacker_success"] <= 1.0
    with pytest.raises(ValueError, match="not a detector of this trial; have: logit, kl5"):
        list(evaluate(model, xte[:8], yte[:8], [{**spec, "detector_aware": {"detector": "tv"}}], dets))
    with pytest.raises(ValueError, match="only one parameter may be a list"):
        list(evaluate(model, xte[:8], yte[:8], [{**spec, "eps": [0.1, 0.2]}], dets))
