"""Validation refuses iterative attacks that cannot reach their ε (seeds README rule): without a random start
steps × step_size >= eps; with one, refused below eps/2 and warned (once per attack entry) below eps."""
from __future__ import annotations

import pytest
import yaml

from robustsweep.cli import main
from robustsweep.config import reach as reach_mod
from robustsweep.config.spec import SpecError, spec_from_dict
from robustsweep.errors import EXIT_USAGE
from robustsweep.registry import ATTACKS
from tests.config.test_spec import BASE  # the one minimal valid experiment file of the spec tests

PAPER_PGD = {"name": "pgd", "eps": [0.1, 0.2, 0.3, 0.4, 0.5], "steps": 40, "step_size": 0.01, "random_start": True}


def spec(attack: dict, **over) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["attacks"].append(attack)
    doc.update(over)
    return doc


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(reach_mod, "_WARNED", set())  # each test sees its warnings, whatever ran before


def reach_warnings(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines()
            if ln.startswith("robustsweep: warning:") and "steps × step_size" in ln]


def test_iterative_declaration_is_what_is_checked():
    """The classic iterative attacks are declared ``iterative`` (so the reach check runs on them), and every attack
    so declared has the knobs that check reads -- a new iterative attack needs no edit here."""
    declared = ATTACKS.where(iterative=True)
    assert {"pgd", "pgd-l2", "he-pgd", "mim", "ifgsm", "bim"} <= {e.name for e in declared}
    for e in declared:
        assert {"eps", "steps", "step_size"} <= set(ATTACKS.settable_params(e.name)), e.name


def test_paper_pgd_accepted_with_one_warning(capsys):
    """40 × 0.01 with a random start at ε = 0.5 (the deep-Bayes code): accepted, one warning for the whole sweep,
    although validation runs once per expanded trial and the spec is expanded twice."""
    s = spec_from_dict(spec(PAPER_PGD, search={"seed": {"grid": [0, 1, 2]}}))
    assert len(s.expand()) == 3
    msgs = reach_warnings(capsys)
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith("robustsweep: warning: attacks.1 (pgd)")
    assert "40 × 0.01 = 0.4 < eps = 0.5" in msgs[0] and "random start" in msgs[0]


def test_far_too_short_refused_naming_key():
    with pytest.raises(SpecError, match=r"attacks\.1: steps × step_size = 0\.05 cannot reach eps = 0\.5 .*"
                                        r"raise steps or step_size"):
        spec_from_dict(spec({**PAPER_PGD, "steps": 5}))


@pytest.mark.parametrize("attack, ok", [
    # no random start: must travel eps
    ({"name": "pgd", "eps": 0.5, "steps": 40, "step_size": 0.01, "random_start": False}, False),
    ({"name": "pgd", "eps": 0.4, "steps": 40, "step_size": 0.01, "random_start": False}, True),
    ({"name": "pgd", "eps": 0.3, "steps": 30, "step_size": 0.01, "random_start": False}, True),  # float tolerance
    ({"name": "bim", "eps": 0.3, "steps": 10, "step_size": 0.02}, False),
    ({"name": "ifgsm", "eps": 0.3, "steps": 10}, True),            # step_size None = eps / steps: exact
    ({"name": "mim", "eps": 0.5, "steps": 40, "step_size": 0.01}, False),  # mim has no random start
    ({"name": "mim", "eps": 0.5, "steps": 100, "step_size": 0.01, "decay": 1.0}, True),  # the paper's MIM
    ({"name": "mim", "eps": 0.5}, True),                          # defaults: 10 steps of eps / 10
    ({"name": "pgd-l2", "eps": 2.0, "steps": 10, "step_size": 0.05}, False),  # 0.5 < 1.0 = eps / 2
    # absent keys take the signature defaults: pgd 40 × 0.01 with a random start
    ({"name": "pgd", "eps": 0.9}, False),                          # 0.4 < 0.45
    ({"name": "he-pgd", "eps": 0.1}, False),                       # 10 × 1/255 = 0.039 < 0.05
    ({"name": "he-pgd", "eps": 8 / 255}, True),
    ({"name": "apgd", "eps": 0.5, "steps": 1}, True),              # adaptive step, not iterative-declared
])
def test_rule_per_attack(attack, ok):
    doc = spec(attack)
    if ok:
        spec_from_dict(doc)
    else:
        with pytest.raises(SpecError, match=r"attacks\.1: steps × step_size = .* cannot reach eps"):
            spec_from_dict(doc)


def test_every_grid_value_is_checked():
    with pytest.raises(SpecError, match="cannot reach eps = 0.9"):
        spec_from_dict(spec({**PAPER_PGD, "eps": [0.1, 0.2, 0.9]}))
    with pytest.raises(SpecError, match=r"0\.04 cannot reach eps = 0\.1"):  # a grid over steps: 4 × 0.01
        spec_from_dict(spec({"name": "bim", "eps": 0.1, "step_size": 0.01, "steps": [20, 10, 4]}))


def test_every_search_draw_is_checked():
    ok = spec({"name": "pgd", "eps": 0.1, "steps": 10, "random_start": False},
              search={"attacks.1.step_size": {"uniform": [0.01, 0.05]}}, num_samples=5)
    assert len(spec_from_dict(ok).expand()) == 5
    bad = spec({"name": "pgd", "eps": 0.1, "steps": 10, "random_start": False},
               search={"attacks.1.step_size": {"loguniform": [0.001, 0.05]}}, num_samples=20)
    with pytest.raises(SpecError, match=r"attacks\.1: steps × step_size"):
        spec_from_dict(bad)
    with pytest.raises(SpecError, match="cannot reach eps"):
        spec_from_dict(spec(PAPER_PGD, search={"attacks.1.steps": {"grid": [40, 10]}}))


def test_cli_exit_code_2_and_warning_on_stderr(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec({**PAPER_PGD, "steps": 5})))
    assert main(["run", str(bad), "--dry-run"]) == EXIT_USAGE == 2
    assert "attacks.1: steps × step_size = 0.05 cannot reach eps = 0.5" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(spec(PAPER_PGD)))
    assert main(["run", str(good), "--dry-run"]) == 0
    assert len(reach_warnings(capsys)) == 1  # load_spec and the command's own expand(): still one line


def test_transfer_attacks_are_held_to_the_reach_rule():
    """The transfer attacks run PGD / MIM on a substitute: 10 steps of the default 0.01 cannot carry an ε = 0.3 MIM
    (it repeated the ε = 0.1 attack at every larger ε of paper 001's ci transfer rows), so validation refuses it."""
    assert {"transfer-greybox", "transfer-blackbox"} <= {e.name for e in ATTACKS.where(iterative=True)}
    for name in ("transfer-greybox", "transfer-blackbox"):
        with pytest.raises(SpecError, match=r"cannot reach eps = 0\.3"):
            spec_from_dict(spec({"name": name, "method": "mim", "eps": [0.1, 0.3], "steps": 10}))
        spec_from_dict(spec({"name": name, "method": "mim", "eps": [0.1, 0.3], "steps": 10, "step_size": 0.04}))


def test_transfer_craft_starts_at_random_for_both_methods():
    """Paper 001's public code runs its PGD and MIM with ``rand_init`` on the substitute too: two draws differ with
    ``random_start`` and coincide without it."""
    import torch

    from robustsweep.attacks.transfer import _craft

    sub = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    for method in ("pgd", "mim"):
        a, b = (_craft(sub, x, y, method, 0.3, 3, 0.01, 1.0, random_start=True) for _ in range(2))
        c, d = (_craft(sub, x, y, method, 0.3, 3, 0.01, 1.0, random_start=False) for _ in range(2))
        assert not torch.equal(a, b) and torch.equal(c, d), method
        assert (a - x).abs().max() <= 0.3 + 1e-6
