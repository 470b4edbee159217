"""Trial identity (config/identity.py): every existing experiment keeps its trial ids, by one rule."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest

from robustsweep.config.identity import ADDED, ID_VERSION, Section, config_hash, with_identity
from robustsweep.config.spec import Spec, spec_from_dict
from tests.config.dump_trial_ids import PINNED, pinned_ids
from tests.conftest import REPO

BASE = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp"}}


def test_pinned_experiments_keep_the_ids_the_code_before_the_typed_trial_gave_them():
    """tests/config/trial_ids.json was written by the code before the typed trial (``dump_trial_ids.py --pinned``);
    the full check over every file, scale and --smoke, wire dicts and sweep.json specs included, is that script."""
    want = json.loads((Path(__file__).parent / "trial_ids.json").read_text())
    assert {k.split()[0] for k in want} == set(PINNED)
    assert pinned_ids(REPO / "experiments") == want


def test_added_fields_leave_the_hash_while_at_their_default():
    class Opts(Section):
        old: int = 1
        new: Annotated[int | None, ADDED] = None

    assert Opts().model_dump() == {"old": 1}  # an old trial's dict, so its id, is unchanged
    assert Opts(new=3).model_dump() == {"old": 1, "new": 3}
    assert Opts(old=1, new=None).model_dump() == {"old": 1}  # at its default: left out, however it was given


def test_defaults_of_the_first_release_stay_hashed():
    cfg = Spec.model_validate(BASE).base_config()
    assert cfg["train"] == {"epochs": 20, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0}
    assert cfg["eval"] == {"n_eval": 500}  # n_fit, examples, counterfactual, … at their defaults: not hashed
    eval_ = Spec.model_validate({**BASE, "eval": {"n_fit": None, "batch_size": 7}}).base_config()["eval"]
    assert eval_ == {"n_eval": 500, "n_fit": None}  # batch_size is a run-time knob, never a trial's


def test_ids_are_the_hash_of_the_wire_dict():
    (t,) = spec_from_dict(BASE).expand()
    body = {k: v for k, v in t.items() if k not in ("trial_id", "config_hash")}
    assert t["trial_id"] == config_hash(body)
    assert t["config_hash"] == config_hash({k: v for k, v in body.items() if k != "seed"})
    assert with_identity(dict(body)) == t and list(t)[-2:] == ["config_hash", "trial_id"]
    assert ID_VERSION == 1


def test_a_searched_default_is_part_of_the_identity():
    """A value a search sets lands as written: ``train.adversarial: null`` is another trial than no key at all
    (paper 004 Fig. 4 has had these ids since before the rule)."""
    adv = {"eps": 0.1, "steps": 2, "step_size": 0.05}
    ts = spec_from_dict({**BASE, "search": {"train.adversarial": {"grid": [None, adv]}}}).expand()
    assert [t["train"].get("adversarial", "absent") for t in ts] == [None, adv]
    (plain,) = spec_from_dict(BASE).expand()
    assert ts[0]["trial_id"] != plain["trial_id"]


@pytest.mark.parametrize("over", [{"train": {"adversarial": None}}, {"eval": {"n_fit": 2000, "examples": None}}])
def test_a_default_written_in_the_file_is_not(over):
    (plain,) = spec_from_dict(BASE).expand()
    (same,) = spec_from_dict({**BASE, **over}).expand()
    assert same["trial_id"] == plain["trial_id"]


def test_sweep_json_records_the_identity_version(tmp_path):
    from robustsweep.sweep.folder import prepare_sweep

    sw = prepare_sweep(spec_from_dict(BASE), tmp_path)
    assert json.loads((sw.dir / "sweep.json").read_text())["id_version"] == ID_VERSION
