"""A trial that no node can hold is refused before anything runs (it used to wait for ever: Tune only logs
"insufficient resources"): on the command line before Ray starts or a folder is made, and in the runner itself
(``--address``, the SLURM head, the Python API) before Tune starts."""
from __future__ import annotations

import pytest

from robustsweep import cli
from robustsweep.runners.capacity import CapacityError, capacity_problem

QUICKSTART = "experiments/quickstart.yaml"


@pytest.mark.parametrize(("cpus", "gpus", "nodes", "fits"), [
    (1, 0, [{"CPU": 1}], True),
    (2, 0, [{"CPU": 1}], False),
    (2, 0, [{"CPU": 1}, {"CPU": 1}], False),  # per node, not summed: one trial runs on one node
    (2, 0, [{"CPU": 1}, {"CPU": 4}], True),
    (0.5, 0, [{"CPU": 1}], True),
    (1, 1, [{"CPU": 8}], False),  # a GPU trial on CPU-only nodes
    (1, 0.25, [{"CPU": 8, "GPU": 1}], True),
    (1, 2, [{"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}], False),
    (1, 0, [], False),
])
def test_a_trial_fits_only_on_a_node_that_holds_all_it_asks_for(cpus, gpus, nodes, fits):
    problem = capacity_problem(cpus, gpus, nodes, "the test cluster")
    assert (problem is None) == fits, problem
    if not fits:
        assert "resources." in problem and "the test cluster" in problem  # names the setting and the nodes


def test_run_refuses_a_trial_larger_than_the_local_ray_before_starting_anything(tmp_path, capsys):
    results = tmp_path / "res"
    code = cli.main(["run", QUICKSTART, "--cpus", "1", "--set", "resources.cpus_per_trial=2",
                     "--results", str(results)])
    err = capsys.readouterr().err
    assert code == 2
    assert "2 CPUs" in err and "--cpus 2" in err and "resources.cpus_per_trial=1" in err
    assert not results.exists()  # no sweep folder, no Ray: nothing was started


def test_run_refuses_a_gpu_trial_on_a_machine_without_one(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    code = cli.main(["run", QUICKSTART, "--set", "resources.gpus_per_trial=1", "--results", str(tmp_path / "r")])
    assert code == 2 and "has no GPU" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_runner_refuses_it_on_a_running_ray_before_tune_starts(tmp_path):
    import ray

    from robustsweep.config.spec import spec_from_dict
    from robustsweep.core.runtime import runtime_for
    from robustsweep.runners import tune as runner
    from robustsweep.sweep.folder import prepare_sweep

    spec = {"name": "cap", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
            "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}]}
    sw = prepare_sweep(spec_from_dict(spec), tmp_path / "r")
    ray.init(address="local", num_cpus=1, include_dashboard=False)
    try:
        with pytest.raises(CapacityError, match="2 CPUs"):
            runner.run_pending(sw, runtime_for(sw), cpus_per_trial=2)
    finally:
        ray.shutdown()
    assert not (sw.dir / runner.TUNE_DIR).exists() and sw.pending() == sw.trials  # Tune never started
