"""Where detectors calibrate (issue 14): paper 004's energy threshold on the validation split, refitted per attack
point on that attack's validation adversarials; paper 001's detectors on clean training data; never the test set."""
from __future__ import annotations

import pytest
import torch

from robustsweep.config.spec import spec_from_dict
from robustsweep.core.evaluate import evaluate
from robustsweep.core.trial import Runtime, load_data, run_trial
from robustsweep.detect import density, energy, fit_detectors
from robustsweep.detect.energy import best_threshold

ATTACKS = [{"name": "fgsm", "eps": [0.0, 0.1]}, {"name": "pgd", "eps": 0.2, "steps": 5, "step_size": 0.05}]
DETECTORS = [{"name": "energy", "rule": "gmean", "fit_eps": 0.2, "fit_steps": 5, "fit_step_size": 0.05},
             {"name": "energy", "label": "energy-once", "per_attack": False, "fit_eps": 0.2, "fit_steps": 5,
              "fit_step_size": 0.05},
             {"name": "logit"}]


def _cfg(val_size: int):
    doc = {"name": "cal", "dataset": {"name": "digits", "val_size": val_size}, "model": {"name": "mlp", "hidden": 32},
           "train": {"epochs": 2, "lr": 3e-3}, "eval": {"n_eval": 60, "n_fit": 80}, "attacks": ATTACKS,
           "detectors": DETECTORS}
    (cfg,) = spec_from_dict(doc).expand()
    return cfg


def _rows_of(t: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in t.detach().cpu().float().contiguous()}


@pytest.fixture
def spied(monkeypatch):
    """Record every clean input a detector is fitted on: (detector class, inputs)."""
    seen: list[tuple[str, torch.Tensor]] = []
    fit_to, dens_fit = energy.EnergyDetector._fit_to, density.DensityDetector.fit

    def spy_energy(self, model, x, y, x_adv, neg=None):
        seen.append(("energy", x.clone()))
        return fit_to(self, model, x, y, x_adv, neg)

    def spy_density(self, model, x, y, logits=None):
        seen.append(("density", x.clone()))
        return dens_fit(self, model, x, y, logits)

    monkeypatch.setattr(energy.EnergyDetector, "_fit_to", spy_energy)
    monkeypatch.setattr(density.DensityDetector, "fit", spy_density)
    return seen


def test_thresholds_never_see_test_data(tmp_path, spied):
    """A real trial: every input the energy threshold is fitted or refitted on is a validation image, every input
    the logit detector is fitted on a training image, and none is a test image."""
    cfg = _cfg(val_size=120)
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="cal"))
    data = load_data(cfg["dataset"], int(cfg["seed"]), None)
    train, val, test = _rows_of(data.x_train), _rows_of(data.x_val), _rows_of(data.x_test)
    assert not (train & test) and not (val & test) and not (train & val)  # the split itself is disjoint
    kinds = [k for k, _ in spied]
    # one trial fit each + one refit per attack point with a budget (fgsm 0.1, pgd 0.2) for the per-attack one
    assert kinds.count("energy") == 2 + 2 and kinds.count("density") == 1
    for kind, x in spied:
        got = _rows_of(x)
        assert got and not (got & test), kind
        assert got <= (val if kind == "energy" else train), kind
    by = {(r["attack"], r["value"]): r for r in rows}
    for r in rows:
        assert r["det.energy.fit_split"] == "validation" and r["det.logit.fit_split"] == "train"
        assert r["det.energy-once.fit_adv"] == "pgd" and r["det.logit.fit_adv"] is None
    assert by[("fgsm", 0.1)]["det.energy.fit_adv"] == "fgsm" and by[("pgd", None)]["det.energy.fit_adv"] == "pgd"
    assert by[("fgsm", 0.0)]["det.energy.fit_adv"] == "pgd"  # ε = 0 is not attacked: the trial's own fit scores it
    assert [r["det.energy.refit"] for r in rows] == [False, True, True]
    assert not any(r["det.energy-once.refit"] or r["det.logit.refit"] for r in rows)


def test_per_attack_list_refits_only_the_listed_attacks(mlp_victim):
    """Paper 004's protocol: PGD points get their own thresholds; APGD meets the PGD-fitted one ("unseen")."""
    model, xtr, xte, yte = mlp_victim
    xv, yv = xtr[:120], model(xtr[:120]).argmax(1)
    spec = {**DETECTORS[0], "per_attack": ["pgd"]}
    dets = fit_detectors([spec], model, xtr[200:300], model(xtr[200:300]).argmax(1), val=(xv, yv))
    attacks = [{"name": "pgd", "eps": [0.1, 0.2], "steps": 5, "step_size": 0.05}, {"name": "apgd", "eps": 0.2, "steps": 5}]
    rows = list(evaluate(model, xte[:60], yte[:60], attacks, dets, calibration=(xv, yv)))
    assert [(r["attack"], r["det.energy.refit"]) for r in rows] == [("pgd", True), ("pgd", True), ("apgd", False)]
    assert rows[2]["det.energy.threshold"] == pytest.approx(dets["energy"].threshold)
    with pytest.raises(ValueError, match="per_attack"):
        fit_detectors([{**spec, "per_attack": "pgd"}], model, xv, yv)


def test_no_validation_split_falls_back_to_training_data_and_says_so(tmp_path, spied):
    logs: list[str] = []
    rows = run_trial(_cfg(val_size=0), Runtime(results=str(tmp_path), sweep="cal"), logs.append)
    assert any("no validation split: energy fitted on training images" in m for m in logs)
    assert {r["det.energy.fit_split"] for r in rows} == {"train"}


def test_refit_is_the_threshold_of_the_evaluated_attack(mlp_victim):
    """The per-attack threshold equals an independent G-mean fit on the validation clean scores and the scores of
    the successful validation adversarials of the row's attack; the trial's fitted detector is not changed."""
    model, xtr, xte, yte = mlp_victim
    xv, yv = xtr[:150], model(xtr[:150]).argmax(1)  # stand-in held-out set (labels = predictions: all correct)
    dets = fit_detectors([DETECTORS[0]], model, xtr[150:300], model(xtr[150:300]).argmax(1), val=(xv, yv))
    det = dets["energy"]
    base = det.threshold
    rows = list(evaluate(model, xte[:80], yte[:80], ATTACKS, dets, calibration=(xv, yv)))
    assert det.threshold == base and det.fit_split == "validation"
    from robustsweep.attacks.fgsm import fgsm

    adv = fgsm(model, xv, yv, eps=0.1)
    ok = model(adv).argmax(1) != yv
    want = best_threshold(det.score(model, xv), det.score(model, adv[ok]), "gmean")
    fg = next(r for r in rows if r["attack"] == "fgsm" and r["value"] == 0.1)
    assert fg["det.energy.threshold"] == pytest.approx(want)
    thresholds = {r["det.energy.threshold"] for r in rows}
    assert len(thresholds) >= 2  # FGSM 0.1 and PGD 0.2 adversarials give different fits here
