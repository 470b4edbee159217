"""Every paper-scale experiment runs one training step and one attack step on random tensors of the real data shape
(core/shape_check.py), so a paper-scale file cannot crash on a cluster after the queue because of a shape or a
missing key. One case per (experiment file, distinct model config); parametrised over the files on disk."""
from __future__ import annotations

import json

import pytest
import yaml

from robustsweep.config.spec import load_spec
from robustsweep.core.shape_check import data_shape, fake_split, shape_check
from tests.conftest import REPO


def _cases() -> list[tuple[str, dict]]:
    out = []
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        scale = "paper" if "paper" in [doc.get("scale") or "paper", *(doc.get("scales") or {})] else None
        if scale is None:
            continue
        seen = set()
        for t in load_spec(path, scale=scale).expand():
            key = json.dumps([t["model"], t["dataset"]], sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((f"{path.stem}:{t['model']['name']}:{len(seen)}", t))
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
