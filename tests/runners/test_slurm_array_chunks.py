"""Issue 36, arrays of any size, on the real local SLURM (``eval "$(slurm/local_slurm.sh start)"``): trials packed
several to an array task so that the array stays within ``MaxArraySize`` (set low here with ``--max-array-size``),
each trial still its own Parquet file, exactly once; ``resume`` submits only what is missing."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robustsweep.runners.slurm.array import DEFAULT_MAX_ARRAY_SIZE, cluster_max_array_size, pack, trials_per_task
from robustsweep.runners.slurm.records import SlurmJob
from tests.runners.test_slurm_e2e import assert_exactly_once, records, rs, slurm_env, status_json  # noqa: F401


def test_packing_keeps_the_array_within_the_limit():
    assert trials_per_task(10_000, 1001) == 10 and trials_per_task(5, 1001) == 1
    assert trials_per_task(5, 2, wanted=2) == 3 and trials_per_task(6, 2, wanted=3) == 3
    assert [len(c) for c in pack(list(range(5)), 3)] == [3, 2]
    assert cluster_max_array_size() >= 1 and DEFAULT_MAX_ARRAY_SIZE == 1001
    job = SlurmJob(job_id="7", mode="array", sweep="s", folder="/f/%j", trial_ids=list("abcde"), trials_per_task=3)
    assert job.task_ids() == ["7_0", "7_1"] and job.chunks() == [("a", "b", "c"), ("d", "e")]
    one = SlurmJob(job_id="8", mode="array", sweep="s", folder="/f/%j", trial_ids=list("ab"), trials_per_task=2)
    assert one.task_ids() == ["8"] and one.chunks() == [("a", "b")]  # submitit submits one task as a plain job


def _spec(tmp_path: Path, name: str, n: int) -> Path:
    doc = {"name": name, "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
           "train": {"epochs": 1, "batch_size": 64}, "eval": {"n_eval": 20},
           "attacks": [{"name": "fgsm", "eps": [0.1]}], "search": {"seed": {"grid": list(range(n))}},
           "resources": {"cpus_per_trial": 1}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.slurm
def test_chunked_array_runs_each_trial_once_and_resume_takes_only_the_missing(slurm_env, tmp_path):  # noqa: F811
    results, sweep = tmp_path / "results", "chunks"
    res = rs(slurm_env, "submit", str(_spec(tmp_path, sweep, 5)), "--results", str(results), "--mode", "array",
             "--trials-per-task", "2", "--max-array-size", "2", "--array-parallelism", "2", "--time", "10",
             "--wait")
    assert "packing 3 trials per task" in res.stderr  # 5 trials at 2 per task would need 3 > 2 tasks
    assert "an array of 2 task(s), 3 trials each" in res.stdout
    (rec,) = records(results / sweep)
    assert rec["trials_per_task"] == 3 and len(rec["trial_ids"]) == 5
    s = status_json(slurm_env, results, sweep)
    assert [j["task_id"] for j in s["jobs"]] == [f"{rec['job_id']}_0", f"{rec['job_id']}_1"]
    assert all(j["state"] == "COMPLETED" for j in s["jobs"]), s["jobs"]
    assert s["counts"]["done"] == 5
    assert_exactly_once(results, sweep)
    # two results lost: resume submits exactly those two (one task each), the other three are never rerun
    trials = results / sweep / "trials"
    lost = sorted(trials.glob("*.parquet"))[:2]
    kept = {p.name: p.stat().st_mtime_ns for p in sorted(trials.glob("*.parquet"))[2:]}
    for p in lost:
        p.unlink()
    res = rs(slurm_env, "resume", sweep, "--results", str(results), "--time", "10", "--max-array-size", "2",
             "--wait")
    assert "resuming 2 of 5 trials" in res.stdout
    rec2 = records(results / sweep)[-1]
    assert sorted(rec2["trial_ids"]) == sorted(p.stem for p in lost) and rec2["trials_per_task"] == 1
    assert_exactly_once(results, sweep)
    assert {p.name: p.stat().st_mtime_ns for p in trials.glob("*.parquet") if p.name in kept} == kept
