"""Every paper-scale experiment runs one training step and one attack step on random tensors of the real data shape
(core/shape_check.py), so a paper-scale file cannot crash on a cluster after the queue because of a shape or a
missing key. Every distinct model config and every attack set once (see _cases); parametrised over the files on disk."""
from __future__ import annotations

import json

import pytest
import yaml

from robustsweep.config.spec import load_spec
from robustsweep.core.shape_check import data_shape, fake_split, shape_check
from tests.conftest import REPO


def _cases() -> list[tuple[str, dict]]:
    """Every distinct (model, dataset, training) of any file once, and every file's attack/detector set at least once.

    Why across files: the paper-scale files share their models (the transfer matrix and the adaptive file reuse the
    white-box file's seven classifiers; ROAR reuses p000_cifar10's), so checking each model again per file would
    train the same shapes many times in CI while adding no shape that is not already covered; a file whose attacks
    or detectors are new still gets a case, with its first model."""
    out, models, attack_sets = [], set(), set()
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        scale = "paper" if "paper" in [doc.get("scale") or "paper", *(doc.get("scales") or {})] else None
        if scale is None:
            continue
        for t in load_spec(path, scale=scale).expand():
            mkey = json.dumps([t["model"], t["dataset"], t["train"]], sort_keys=True)
            akey = json.dumps([t["attacks"], t.get("detectors"), t["eval"]], sort_keys=True)
            if mkey in models and akey in attack_sets:
                continue
            models.add(mkey)
            attack_sets.add(akey)
            out.append((f"{path.stem}:{t['model']['name']}:{len(out)}", t))
    return out


CASES = _cases()


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_paper_scale_trial_runs_one_step_on_real_shaped_random_data(case):
    rows = shape_check(case)
    assert rows and all(r["status"] == "ok" for r in rows)
    shape, k = data_shape(case["dataset"])
    assert rows[0]["n_eval"] == 4 and k >= 2 and len(shape) in (1, 3)


def test_fake_split_has_the_registered_shape():
    d = fake_split({"name": "tiny-imagenet"})
    assert d.input_shape == (3, 64, 64) and d.num_classes == 200 and set(d.y_train.tolist()) == set(range(200))
    assert fake_split({"name": "cifar10"}).input_shape == (3, 32, 32)
    assert fake_split({"name": "imagenette", "image_size": 96}).input_shape == (3, 96, 96)
