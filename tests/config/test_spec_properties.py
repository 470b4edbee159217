"""Issue 16, part 4: random experiment files through the validator (hypothesis; no training, seconds).

Property: a file either validates, or is refused with a :class:`UsageError` (exit 2) whose message names one of the
file's keys -- never another exception -- and preparing a valid file's sweep writes only inside the results folder.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustsweep.config.spec import load_spec
from robustsweep.errors import UsageError
from robustsweep.sweep.folder import prepare_sweep

BASE: dict[str, Any] = {"name": "p", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
                        "train": {"epochs": 1}, "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}]}

scalars = (st.none() | st.booleans() | st.integers(-3, 70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["mlp", "gfz", "pgd", "fgsm", "digits", "logit", "../x", "a", ""]))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["name", "eps", "hidden", "x", "grid", "uniform", "steps"]), c, max_size=3), max_leaves=6)
pairs = st.tuples(scalars, scalars)
search_dims = st.one_of(
    st.fixed_dictionaries({"grid": st.lists(scalars, max_size=3)}),
    st.fixed_dictionaries({"choice": st.lists(scalars, max_size=3)}),
    st.fixed_dictionaries({"uniform": pairs}), st.fixed_dictionaries({"loguniform": pairs}),
    st.fixed_dictionaries({"randint": pairs}), values)
PLACES = ["name", "dataset.name", "dataset.test_size", "model.name", "model.hidden", "model.dim_z", "model.K",
          "train.epochs", "train.lr", "train.batch_size", "eval.n_eval", "eval.batch_size", "seed", "num_samples",
          "attacks.0.eps", "attacks.0.name", "attacks.0.steps", "attacks.0.step_size", "attacks", "detectors",
          "detectors.0", "search", "typo", "model.typo", "resources.cpus_per_trial", "eval.counterfactual"]
SEARCH_KEYS = ["train.lr", "model.hidden", "model.dim_z", "attacks.0.eps", "seed", "model", "train", "nope.x",
               "attacks.3.eps", "model.name"]


def put(doc: dict[str, Any], place: str, value: Any) -> None:
    node: Any = doc
    parts = place.split(".")
    for p in parts[:-1]:
        if isinstance(node, list):
            node = node[int(p)] if p.isdigit() and int(p) < len(node) else None
        elif isinstance(node, dict):
            node = node.setdefault(p, {})
        if not isinstance(node, (dict, list)):
            return
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value


@st.composite
def experiment_files(draw: st.DrawFn) -> dict[str, Any]:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    for _ in range(draw(st.integers(0, 2))):
        put(doc, draw(st.sampled_from(PLACES)), draw(values))
    if draw(st.booleans()):
        doc["search"] = draw(st.dictionaries(st.sampled_from(SEARCH_KEYS), search_dims, max_size=2))
    return doc


def keys_of(obj: Any) -> set[str]:
    """Every key at any depth (the words an error message may name)."""
    if isinstance(obj, dict):
        return {str(k) for k in obj} | {x for v in obj.values() for x in keys_of(v)}
    if isinstance(obj, list):
        return {x for v in obj for x in keys_of(v)}
    return set()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=experiment_files())
def test_random_files_validate_or_exit_2_naming_a_key(doc):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec_file = root / "exp.yaml"
        spec_file.write_text(yaml.safe_dump(doc))
        results = root / "sandbox" / "results"
        try:
            spec = load_spec(spec_file)
            trials = spec.expand()
            if len(trials) > 200:
                return
            sw = prepare_sweep(spec, results)
        except UsageError as e:
            msg = str(e)
            assert any(k in msg for k in keys_of(doc) | {"search", "name"}), msg
            written = [p for p in root.rglob("*") if p != spec_file]
            assert not [p for p in written if p.is_file()], written  # a refused file writes nothing
            return
        assert len(trials) >= 1 and sw.dir.parent == results.resolve()
        for t in trials:  # what was accepted lies in its domains (spot checks of the cases)
            assert t["train"]["epochs"] >= 1 and t["train"]["lr"] > 0 and math.isfinite(t["train"]["lr"])
            assert all(e >= 0 for a in t["attacks"] for e in (a.get("eps") if isinstance(a.get("eps"), list)
                                                              else [a.get("eps", 0)]) if e is not None)
        outside = [p for p in root.rglob("*") if p.is_file() and p != spec_file and results not in p.parents]
        assert not outside, outside
