"""Issue 36, the report chained after the jobs: ``reproduce P --backend <scheduler>`` submits, after the experiments'
jobs, one small job running ``reproduce P --report-only`` with the same folders (SLURM: ``--dependency=afterany``),
and prints its id; ``--no-report-job`` leaves it to the user. The sbatch side runs on the real local SLURM."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from robustsweep import cli
from robustsweep.registry import BACKENDS
from robustsweep.runners.base import register_backend
from robustsweep.runners.slurm.followup import dependency, sbatch_args, submit_after
from robustsweep.runners.slurm.options import SlurmOptions
from tests.runners.fake_scheduler import FakeScheduler
from tests.runners.test_slurm_e2e import slurm_env, wait_job_done, wait_until  # noqa: F401


def test_dependency_string_and_sbatch_line(tmp_path):
    assert dependency(["12", "13_4", "12"]) == "afterany:12:13"  # an array task stands for its array, once
    with pytest.raises(ValueError):
        dependency([])
    args = sbatch_args(SlurmOptions(partition="debug", account="lab"), ["7", "9"], tmp_path, "rs-report-001")
    assert "--dependency=afterany:7:9" in args and "--partition=debug" in args and "--account=lab" in args
    assert f"--output={tmp_path / '%j.out'}" in args and "--parsable" in args


class Chaining(FakeScheduler):
    """The fake scheduler, able to chain a job: it remembers what it was asked."""

    asked: list = []

    def submit_after(self, runner, argv, after, folder, name):
        self.asked.append((argv, [r.job_id for r in after], folder, name))
        return "99"


@pytest.fixture
def chaining():
    Chaining.asked.clear()
    register_backend(Chaining)
    yield Chaining.asked
    BACKENDS.unregister("fake")


def _reproduce(tmp_path: Path, *extra: str) -> list[str]:
    return ["reproduce", "002", "--scale", "ci", "--smoke", "--backend", "fake", "--results", str(tmp_path / "res"),
            "--out", str(tmp_path / "rep"), *extra]


def test_reproduce_chains_the_report_after_the_experiments_jobs(chaining, tmp_path, capsys):
    assert cli.main(_reproduce(tmp_path)) == 0
    out = capsys.readouterr().out
    ((argv, after, folder, name),) = chaining
    assert argv[:2] == ["reproduce", "002"] and "--report-only" in argv and "--smoke" in argv
    assert argv[argv.index("--results") + 1] == str((tmp_path / "res").resolve())
    assert argv[argv.index("--out") + 1] == str((tmp_path / "rep").resolve())
    assert after and all(a.isdigit() for a in after) and name == "rs-report-002"
    assert "report job 99 runs" in out and "--report-only` once they end" in out


def test_no_report_job_prints_the_command_instead(chaining, tmp_path, capsys):
    assert cli.main(_reproduce(tmp_path, "--no-report-job")) == 0
    assert chaining == [] and "--report-only --results" in capsys.readouterr().out


@pytest.mark.slurm
def test_dependent_job_waits_for_the_jobs_on_slurm(slurm_env, tmp_path):  # noqa: F811
    first = subprocess.run(["sbatch", "--parsable", "--time=2", f"--output={tmp_path / 'w.out'}",
                            "--wrap", "sleep 3"], capture_output=True, text=True, check=True).stdout.strip()
    job = submit_after(SlurmOptions(), ["--help"], [first], tmp_path / "report-job", "rs-report-test")
    show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert f"Dependency=afterany:{first}" in show or "Dependency=(null)" in show  # null once the first has ended
    assert wait_job_done(job, timeout=180) == "COMPLETED"
    log = wait_until(lambda: next((tmp_path / "report-job").glob("*.out"), None), 30, "the job's log")
    assert "usage: robustsweep" in log.read_text()
