"""report/select.py and report/declare.py: the model lists match the registry's ``kind`` metadata, tolerant float
matching and grids, and a declared table's layout is what the reference validator checks before any run."""
from __future__ import annotations

import polars as pl
import pytest

from robustsweep.report import select
from robustsweep.report.declare import Axis, TableSpec
from robustsweep.report.paper import check_reference_tables
from robustsweep.report.papers import load_papers
from robustsweep.report.reference import Reference


def test_model_lists_are_the_registry_kinds():
    from robustsweep.registry import MODELS  # loads the models (torch): the report itself must not

    kinds = {m: MODELS.get(m).meta["kind"] for m in select.DEEP_BAYES}
    assert select.GENERATIVE == [m for m in select.DEEP_BAYES if kinds[m] == "generative"]
    assert select.DISCRIMINATIVE == [m for m in select.DEEP_BAYES if kinds[m] == "discriminative"]
    assert set(select.NO_BOTTLENECK) < set(select.DISCRIMINATIVE)


def test_near_grid_and_nth():
    rows = pl.DataFrame({"status": ["ok", "ok", "ok", "failed"], "attack": ["pgd", "pgd", "fgsm", "pgd"],
                         "value": [0.1 + 0.2, 0.5, 0.7, 0.9]})
    assert rows.filter(select.near("value", 0.3)).height == 1  # 0.1 + 0.2 != 0.3 exactly
    assert select.grid(rows, "pgd") == [0.1 + 0.2, 0.5]  # failed rows are not part of the grid that ran
    assert select.nth([1, 2], 2) == 2 and select.nth([], 0) is None and select.middle([1, 2, 3]) == 2


def test_declared_layout_is_validated_before_a_run():
    spec = TableSpec("t", "T", metric="m", rows=Axis("r", ["a"], {"a": "A"}), cols=Axis("c", ["x"]))
    assert spec.layout() == (["A"], ["x"])
    assert TableSpec("u", "U", rows=Axis("r", lambda rows: []), cols=Axis("c", ["x"])).layout() is None
    paper = load_papers()["002"]
    check_reference_tables(paper, [Reference("table3", "GFZ", "DeepFool", 0.5)])
    with pytest.raises(ValueError, match="row 'GFX'"):
        check_reference_tables(paper, [Reference("table3", "GFX", "DeepFool", 0.5)])
