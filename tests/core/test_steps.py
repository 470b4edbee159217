"""The evaluation pipeline (core/evaluate.py + core/steps/): a new per-row measurement is one registered step, the
loop calls its hooks in order, and every row says what it measures in its ``kind`` column."""
from __future__ import annotations

from typing import Any

import pytest
import torch

from robustsweep.config.eval_options import EvalOptions
from robustsweep.core.craft import GridPoint
from robustsweep.core.evaluate import evaluate
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps import Evaluation, Step, active_steps
from robustsweep.detect.base import Detector
from robustsweep.registry import DETECTORS, STEPS
from robustsweep.store import columns as col


def _case(n: int = 40, d: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    y = (x[:, 0] > 0.5).long()
    model = torch.nn.Linear(d, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1, 0], model.weight[0, 0] = 4.0, -4.0
        model.bias[1], model.bias[0] = -2.0, 2.0  # class 1 iff x0 > 0.5: every point is classified correctly
    return model.eval(), x, y


class _Margin(Step):
    """Throw-away step: the clean-minus-adversarial accuracy of each point, and the grid size after each attack."""

    def columns(self, ev: Evaluation, pts: AttackPoints, point: GridPoint) -> dict[str, Any]:
        adv = (point.pred_adv == pts.y).float().mean().item()
        return {col.metric("drop"): pts.base["clean_accuracy"] - adv}

    def attack_done(self, ev, pts, points, rows) -> None:
        for r in rows:
            r[col.metric("grid_size")] = len(points)


@pytest.fixture
def margin_step():
    STEPS.register("test-margin", order=99)(_Margin)
    yield
    STEPS.unregister("test-margin")


def test_a_new_row_measurement_is_one_registered_step(margin_step):
    model, x, y = _case()
    rows = list(evaluate(model, x, y, [{"name": "fgsm", "eps": [0.0, 0.2, 0.4]}, {"name": "pgd", "eps": 0.3}]))
    assert len(rows) == 4
    for r in rows:
        assert r["m.drop"] == pytest.approx(r["clean_accuracy"] - r["adv_accuracy"])
    assert [r["m.grid_size"] for r in rows] == [3, 3, 3, 1]
    assert rows[0]["m.drop"] == 0.0  # eps 0: the clean prediction is reused
    assert rows[2]["m.drop"] > 0  # a working attack on a working classifier


def test_steps_run_in_registered_order_and_the_unneeded_ones_are_off():
    model, x, y = _case()
    names = [type(s).__name__ for s in active_steps(Evaluation(model))]
    assert names == ["MinPerturbation", "Outcomes"]  # no detectors, no eval options, no trial
    opts = EvalOptions(examples={"n": 2}, counterfactual={"methods": ["pgd"]})
    ev = Evaluation(model, opts, {"d": object()})
    names = [type(s).__name__ for s in active_steps(ev)]
    assert names == ["Examples", "Detection", "Reclassification", "MinPerturbation", "Counterfactual", "Outcomes"]


def test_every_row_has_the_kind_its_attack_name_implies():
    """The ``kind`` column agrees with the old name-prefix rule (store/columns.kind_of_attack) on every kind of row
    the evaluator writes: clean-only, attack, counterfactual."""
    model, x, y = _case()
    (clean,) = evaluate(model, x, y, [])
    assert clean[col.KIND] == col.CLEAN and clean["attack"] == "none"
    cf = {"methods": ["ifgsm"], "eps": 0.3, "step_size": 0.05, "max_iter": 3, "threshold": 0.4}
    rows = list(evaluate(model, x, y, [{"name": "fgsm", "eps": 0.1}], counterfactual=cf))
    assert [r[col.KIND] for r in rows] == [col.ATTACK, col.COUNTERFACTUAL]
    for r in [clean, *rows]:
        assert r[col.KIND] == col.kind_of_attack(r["attack"])


def test_a_prefix_is_cut_in_one_place():
    model, x, y = _case()
    pred = model(x).argmax(1)
    pts = AttackPoints(x, y, pred, {"n_eval": len(x), "clean_accuracy": (pred == y).float().mean().item()})
    sub = pts.prefix(7)
    assert len(sub) == 7 and sub.base["n_eval"] == 7
    assert sub.base["clean_accuracy"] == pytest.approx((pred[:7] == y[:7]).float().mean().item())
    assert pts.prefix(None) is pts and pts.prefix(1000) is pts


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_registered_detector_declares_the_contract(name):
    """The evaluator asks a detector questions instead of probing it with getattr: each registered one is a
    Detector, so the answers it does not override are the declared defaults."""
    det = DETECTORS.get(name).fn()
    assert isinstance(det, Detector)
    for method in ("fit", "score", "evasion"):  # the three a detector must implement itself
        assert getattr(type(det), method) is not getattr(Detector, method), f"{name} lacks {method}"
    assert isinstance(det.refits("pgd"), bool) and isinstance(det.reclassifies("pgd"), bool)
    assert isinstance(det.class_averaged, bool) and isinstance(det.hist_bins, int)


def test_the_loop_names_no_paper_measurement():
    """evaluate.py stays a loop: every measurement beyond an attack point's metrics lives in a step's own file."""
    import inspect

    import robustsweep.core.evaluate as ev_mod

    src = inspect.getsource(ev_mod.run)
    for word in ("det.", "goal", "cf-", "roar", "examples", "reclass", "getattr", "min_perturbation"):
        assert word not in src, word


def test_attack_settings_are_columns_as_well_as_json():
    """``atk.<key>`` columns hold the row's attack settings (the same as its ``attack_params`` JSON), so an analyst
    filters on ``atk.steps`` instead of parsing JSON."""
    import json

    model, x, y = _case()
    spec = {"name": "pgd", "eps": [0.1, 0.3], "steps": 3, "step_size": 0.05, "label": "pgd3"}
    for r in evaluate(model, x, y, [spec]):
        params = json.loads(r["attack_params"])
        atk = {k[len(col.ATTACK_PARAM):]: v for k, v in r.items() if k.startswith(col.ATTACK_PARAM)}
        assert atk == params and atk["eps"] == r["eps"] and atk["steps"] == 3
