"""Per-attack ``n_eval`` (config/grid.py ATTACK_META): an attack entry may take only the first n of the trial's
attacked points (a query attack too slow for all of them, paper 002 at mini scale) and keep every setting."""
from __future__ import annotations

import pytest
import torch

from robustsweep.config.spec import SpecError, spec_from_dict
from robustsweep.core.evaluate import evaluate


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()


def _data(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = _model()(x).argmax(1)  # every point initially correct, so success counts are visible
    y[::5] = (y[::5] + 1) % 10  # ... except every fifth
    return x, y


def test_an_attack_with_n_eval_sees_exactly_the_first_n_points() -> None:
    x, y = _data()
    model = _model()
    attacks = [{"name": "fgsm", "eps": [0.0, 0.05, 0.2]},
               {"name": "pgd", "eps": 0.1, "steps": 3, "step_size": 0.05, "n_eval": 7, "label": "pgd7"}]
    rows = {(r["attack"], r["value"]): r for r in evaluate(model, x, y, attacks)}
    # the oracle: the same attack run on the first 7 points as a trial of its own
    (alone,) = evaluate(model, x[:7], y[:7], [{"name": "pgd", "eps": 0.1, "steps": 3, "step_size": 0.05}])
    sub = rows["pgd7", None]
    assert sub["n_eval"] == 7 and alone["n_eval"] == 7
    for k in ("clean_accuracy", "adv_accuracy", "success_rate"):
        assert sub[k] == pytest.approx(alone[k]), k
    assert sub["clean_accuracy"] == pytest.approx(5 / 7)  # points 0 and 5 carry the wrong labels
    # the other attack keeps the trial's 40 points and its own clean accuracy
    full = rows["fgsm", 0.2]
    assert full["n_eval"] == 40 and full["clean_accuracy"] == pytest.approx(32 / 40)
    assert rows["fgsm", 0.0]["adv_accuracy"] == full["clean_accuracy"]


def test_n_eval_at_or_above_the_trials_points_changes_nothing() -> None:
    x, y = _data(12)
    a = {"name": "fgsm", "eps": 0.1}
    (plain,) = evaluate(_model(), x, y, [a])
    (big,) = evaluate(_model(), x, y, [{**a, "n_eval": 500}])
    assert big["n_eval"] == plain["n_eval"] == 12 and big["adv_accuracy"] == plain["adv_accuracy"]
    assert "n_eval" not in big["attack_params"]  # not an attack parameter


def _doc(attack: dict) -> dict:
    return {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp"}, "attacks": [attack]}


@pytest.mark.parametrize("attack, needle", [
    ({"name": "fgsm", "eps": 0.1, "n_eval": 0}, "attacks.0.n_eval = 0 is outside its domain n_eval ≥ 1"),
    ({"name": "fgsm", "eps": 0.1, "n_eval": [5, 10]}, "attacks.0.n_eval: one number"),
    ({"name": "fgsm", "eps": 0.1, "n_evals": 5}, "attacks.0.n_evals: not a parameter of attack 'fgsm'"),
])
def test_bad_n_eval_is_refused_before_anything_runs(attack: dict, needle: str) -> None:
    with pytest.raises(SpecError) as e:
        spec_from_dict(_doc(attack))
    assert needle in str(e.value)


def test_a_good_n_eval_passes_and_reaches_the_trial_config() -> None:
    (cfg,) = spec_from_dict(_doc({"name": "zoo", "steps": 2, "n_eval": 5})).expand()
    assert cfg["attacks"][0]["n_eval"] == 5


def test_trial_level_metrics_come_from_a_row_on_all_the_trials_points() -> None:
    """A report reading clean accuracy once per trial must not take it from an attack run on a subset."""
    import polars as pl

    from robustsweep.report.aggregate import one_row_per_trial

    df = pl.DataFrame({"trial_id": ["a", "a", "a", "b"], "attack": ["zoo", "fgsm", "pgd", "zoo"],
                       "n_eval": [2, 20, 20, 2], "clean_accuracy": [0.5, 0.9, 0.9, 1.0]})
    one = one_row_per_trial(df)
    assert one.select("trial_id", "attack", "clean_accuracy").rows() == [("a", "fgsm", 0.9), ("b", "zoo", 1.0)]
