"""SLURM options: time parsing, merging the experiment file with flags, messages that name the key to fix,
and the submitit parameters built from them (no SLURM needed)."""
from __future__ import annotations

import pytest

from robustsweep.runners.slurm.options import (
    SlurmOptionsError,
    parse_time_minutes,
    resolve_options,
)
from robustsweep.runners.slurm.submit import executor_parameters, validate_resources


@pytest.mark.parametrize("text,minutes", [
    (90, 90), ("90", 90), ("1:30:00", 90), ("01:00:00", 60), ("0:0:30", 1), ("2-00:00:00", 2880),
    ("1-12", 2160), ("1-0:30", 1470), ("10:30", 11),  # M:S rounds up
])
def test_parse_time_minutes(text, minutes):
    assert parse_time_minutes(text) == minutes


@pytest.mark.parametrize("bad", ["1h", "", "-5", "1:2:3:4", 0, True])
def test_parse_time_rejects(bad):
    with pytest.raises(ValueError):
        parse_time_minutes(bad)


def test_flags_override_spec_and_none_flags_do_not():
    opts = resolve_options({"partition": "gpu", "nodes": 2, "mem": "16g"}, {"partition": "debug", "nodes": None})
    assert opts.partition == "debug"  # the flag wins
    assert opts.nodes == 2  # unset flag keeps the file's value
    assert opts.mem == "16G"  # normalised


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(SlurmOptionsError) as e:
        resolve_options({"partitoin": "gpu"})
    msg = str(e.value)
    assert "slurm.partitoin: unknown key" in msg and "partition" in msg.split("allowed:")[1]


@pytest.mark.parametrize("section,needle", [
    ({"mem": "lots"}, "slurm.mem"),
    ({"time": "forever"}, "slurm.time"),
    ({"nodes": 0}, "slurm.nodes"),
    ({"partition": "two words"}, "slurm.partition"),
    ({"mode": "array", "nodes": 3}, "nodes: 1"),
    ({"mode": "mpi"}, "slurm.mode"),
])
def test_bad_values_name_the_key(section, needle):
    with pytest.raises(SlurmOptionsError) as e:
        resolve_options(section)
    assert needle in str(e.value)


def test_ray_mode_parameters():
    opts = resolve_options({"partition": "gpu", "nodes": 2, "gpus_per_node": 4, "cpus_per_node": 32, "mem": "64G",
                            "time": "02:00:00", "account": "proj", "qos": "high", "constraint": "a100",
                            "additional": {"mail-type": "END"}})
    p = executor_parameters(opts, sweep_name="s", cpus_per_trial=2, gpus_per_trial=0.25)
    assert p["nodes"] == 2 and p["ntasks_per_node"] == 1  # one submitit task (Ray node) per node
    assert p["cpus_per_task"] == 32 and p["gpus_per_node"] == 4
    assert p["time"] == 120 and p["mem"] == "64G"
    assert (p["partition"], p["account"], p["qos"], p["constraint"]) == ("gpu", "proj", "high", "a100")
    assert p["additional_parameters"] == {"requeue": True, "mail-type": "END"}
    assert "array_parallelism" not in p
    assert any("PYTHONPATH" in line for line in p["setup"])


def test_array_mode_parameters_round_trial_resources_up():
    opts = resolve_options({"mode": "array", "array_parallelism": 3})
    p = executor_parameters(opts, sweep_name="s", cpus_per_trial=1.5, gpus_per_trial=0.5)
    assert p["array_parallelism"] == 3 and p["nodes"] == 1
    assert p["cpus_per_task"] == 2 and p["gpus_per_node"] == 1
    assert "partition" not in p and "mem" not in p  # unset -> cluster defaults


def test_cpu_only_job_requests_no_gpus():
    p = executor_parameters(resolve_options({}), sweep_name="s", cpus_per_trial=1, gpus_per_trial=0)
    assert "gpus_per_node" not in p and "cpus_per_task" not in p


def test_trial_that_cannot_fit_a_node_is_rejected():
    with pytest.raises(SlurmOptionsError, match="--cpus-per-node"):
        validate_resources(resolve_options({"cpus_per_node": 2}), cpus_per_trial=4, gpus_per_trial=0)
    with pytest.raises(SlurmOptionsError, match="--gpus-per-node"):
        validate_resources(resolve_options({}), cpus_per_trial=1, gpus_per_trial=0.5)
    validate_resources(resolve_options({"gpus_per_node": 1}), cpus_per_trial=1, gpus_per_trial=0.25)  # packs 4
