"""The layering the README's architecture section promises, checked: no import cycles, login-node commands that never
import torch or Ray, small modules. (`lint-imports` checks the layer order itself; see pyproject.toml.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.store.parquet import write_trial
from robustsweep.sweep.folder import prepare_sweep
from tests.conftest import cli_in_fresh_python

PKG = Path(__file__).resolve().parent.parent / "robustsweep"


def test_no_import_cycle_between_modules():
    grimp = pytest.importorskip("grimp")  # installed with import-linter
    graph = grimp.build_graph("robustsweep")
    modules = sorted(graph.modules)
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(graph.find_modules_directly_imported_by(m)):
            if not n.startswith("robustsweep") or n == m or n == m.rsplit(".", 1)[0]:
                continue  # a module importing its own package (__init__) is not a cycle between modules
            if state.get(n) == 1:
                return [*path, m, n]
            if n not in state and (cycle := visit(n, [*path, m])):
                return cycle
        state[m] = 2
        return None

    for m in modules:
        if m not in state and (cycle := visit(m, [])):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules (one job each): {long}"


@pytest.fixture
def finished_sweep(tmp_path):
    """A 12-trial sweep with every trial in the store (rows written directly: no training needed)."""
    spec = spec_from_dict({"name": "arch", "dataset": {"name": "digits"}, "model": {"name": "mlp"},
                           "attacks": [{"name": "fgsm", "eps": [0.1]}],
                           "search": {"seed": {"grid": list(range(12))}}})
    sw = prepare_sweep(spec, tmp_path / "results")
    for t in sw.trials:
        write_trial([{"sweep": sw.name, "trial_id": t["trial_id"], "config_hash": t["config_hash"], "seed": t["seed"],
                      "status": "ok", "attack": "fgsm", "param": "eps", "value": 0.1, "clean_accuracy": 0.9,
                      "adv_accuracy": 0.5, "cfg.model.name": "mlp"}], sw.results, sw.name, t["trial_id"])
    return sw


@pytest.mark.parametrize("argv", [
    ["status", "arch"],
    ["status", "arch", "--json"],
    ["results", "arch"],
    ["query", "arch", "SELECT count(*) AS n FROM results"],
    ["list", "sweeps"],
])
def test_login_node_commands_never_import_torch_or_ray(finished_sweep, argv):
    out, verdict = cli_in_fresh_python([*argv, "--results", str(finished_sweep.results)], timeout=120)
    assert verdict == {"rc": 0, "heavy": []}, verdict
    if argv[0] == "status" and "--json" in argv:
        status = json.loads("\n".join(out.stdout.strip().splitlines()[:-1]))
        assert status["counts"] == {"done": 12, "running": 0, "failed": 0, "pending": 0}
