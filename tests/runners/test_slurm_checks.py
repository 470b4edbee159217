"""Login-node checks and job bookkeeping, without SLURM: every user mistake gets a message that says what to fix."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robustsweep.runners.slurm import checks as sc
from robustsweep.runners.slurm.records import SlurmJob as JobRecord
from robustsweep.runners.slurm.records import append_record, parse_squeue, read_records

PARTS = [sc.Partition("debug", "up", True), sc.Partition("gpu", "up", False), sc.Partition("old", "down", False)]


def test_unknown_partition_lists_the_real_ones():
    with pytest.raises(sc.SlurmSetupError) as e:
        sc.check_partition("gpux", PARTS)
    msg = str(e.value)
    assert "no partition 'gpux'" in msg and "debug (default)" in msg and "gpu" in msg and "--partition" in msg


def test_partition_ok_default_and_down():
    assert sc.check_partition("gpu", PARTS) is None
    assert sc.check_partition(None, PARTS) is None
    assert "down" in sc.check_partition("old", PARTS)
    with pytest.raises(sc.SlurmSetupError, match="no default partition"):
        sc.check_partition(None, PARTS[1:])


def test_missing_sbatch(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no SLURM client here
    with pytest.raises(sc.SlurmSetupError) as e:
        sc.require_slurm_commands()
    assert "sbatch" in str(e.value) and "login node" in str(e.value) and "robustsweep run" in str(e.value)


def _mounts(tmp_path: Path, lines: list[str]) -> str:
    f = tmp_path / "mounts"
    f.write_text("\n".join(lines) + "\n")
    return str(f)


def test_results_locality_by_prefix_and_fstype(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    mounts = _mounts(tmp_path, ["overlay / overlay rw 0 0", "srv:/home /home nfs4 rw 0 0",
                                "tmpfs /dev/shm tmpfs rw 0 0", "none /mnt/ram tmpfs rw 0 0"])
    assert sc.results_locality(Path("/home/alice/results"), mounts)[0] == "shared"
    assert sc.results_locality(Path("/tmp/results"), mounts)[0] == "local"
    assert sc.results_locality(Path("/mnt/ram/results"), mounts)[0] == "local"
    assert sc.results_locality(Path("/data/results"), mounts)[0] == "unknown"
    assert sc.filesystem_type(Path("/home/alice"), mounts) == "nfs4"


def test_node_local_results_refused_for_several_nodes(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    mounts = _mounts(tmp_path, ["overlay / overlay rw 0 0"])
    with pytest.raises(sc.SlurmSetupError) as e:
        sc.check_results_shared(Path("/tmp/r"), nodes=2, allow_local=False, mounts_file=mounts)
    assert "not on a shared path" in str(e.value) and "--allow-local-results" in str(e.value)
    # one node: allowed, but warned about; explicitly allowed: no error
    assert "node-local" in sc.check_results_shared(Path("/tmp/r"), 1, False, mounts_file=mounts)
    assert sc.check_results_shared(Path("/tmp/r"), 2, True, mounts_file=mounts)
    assert sc.check_results_shared(Path("/data/r"), 1, False, mounts_file=mounts) is None


@pytest.mark.parametrize("stderr,needle", [
    ("sbatch: error: invalid partition specified: gpux", "--partition"),
    ("sbatch: error: Batch job submission failed: Invalid account or account/partition combination", "--account"),
    ("sbatch: error: Memory specification can not be satisfied", "--mem"),
    ("sbatch: error: Batch job submission failed: Requested node configuration is not available", "--gpus-per-node"),
    ("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)", "scontrol"),
])
def test_sbatch_errors_are_explained(stderr, needle):
    msg = sc.explain_sbatch_error(stderr, "gpux")
    assert stderr.strip() in msg and "fix:" in msg and needle in msg


def test_parse_squeue_expands_pending_array_ranges():
    text = "12_[3-5%2]|PENDING|\n12_0|COMPLETED|vm\n12_1|RUNNING|vm\n13|CANCELLED|vm\n14_[7,9]|PENDING|\n"
    st = parse_squeue(text)
    assert st["12_3"] == st["12_5"] == ("PENDING", "")
    assert st["12_1"] == ("RUNNING", "vm") and st["13"] == ("CANCELLED", "vm")
    assert "14_7" in st and "14_9" in st and "14_8" not in st


def test_job_records_round_trip(tmp_path):
    folder = str(tmp_path / "slurm" / "logs" / "%j")
    append_record(tmp_path, JobRecord("5", "ray", "s", folder, ["a", "b"], nodes=2))
    append_record(tmp_path, JobRecord("6", "array", "s", folder, ["a", "b", "c"]))
    append_record(tmp_path, JobRecord("7", "array", "s", folder, ["d"]))
    r5, r6, r7 = read_records(tmp_path)
    assert r5.task_ids() == ["5"] and r6.task_ids() == ["6_0", "6_1", "6_2"]
    assert r7.task_ids() == ["7"]  # submitit submits a one-element array as a plain job
    assert r6.log_paths("6_1")[0] == tmp_path / "slurm" / "logs" / "6_1" / "6_1_0_log.out"
    assert r5.log_paths("5")[1] == tmp_path / "slurm" / "logs" / "5" / "5_0_log.err"


def _spec_file(tmp_path: Path, **extra) -> Path:
    doc = {"name": "unit", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
           "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
           "search": {"seed": {"grid": [0, 1]}}, **extra}
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_cli_submit_without_sbatch_exits_2_before_submitting(tmp_path, monkeypatch, capsys):
    from robustsweep.cli import main

    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    rc = main(["submit", str(_spec_file(tmp_path)), "--results", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert rc == 2 and "sbatch" in err and "login node" in err
    assert not (tmp_path / "res" / "unit" / "slurm" / "jobs.jsonl").exists()


def test_cli_submit_bad_slurm_section_exits_2(tmp_path, capsys):
    from robustsweep.cli import main

    rc = main(["submit", str(_spec_file(tmp_path, slurm={"mem": "lots"})), "--results", str(tmp_path / "r")])
    assert rc == 2 and "slurm.mem" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written


def test_sacct_standin_parses_job_ids(tmp_path):
    """The stand-in written by slurm/local_slurm.sh answers submitit's sacct call from squeue."""
    import os
    import subprocess

    script = Path(__file__).resolve().parents[2] / "slurm" / "local_slurm.sh"
    text = script.read_text()
    body = text[text.index("cat >\"$STATE/bin/sacct\" <<'EOF'\n") + len("cat >\"$STATE/bin/sacct\" <<'EOF'\n"):]
    body = body[:body.index("\nEOF\n")]
    (tmp_path / "sacct").write_text(body)
    fake_squeue = tmp_path / "squeue"  # records its arguments and answers like squeue
    fake_squeue.write_text("#!/usr/bin/env bash\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\n"
                           "for a in \"$@\"; do last=$a; done\necho \"$last|RUNNING|vm\"\n")
    for f in ("sacct", "squeue"):
        (tmp_path / f).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    out = subprocess.run([str(tmp_path / "sacct"), "-o", "JobID,State,NodeList", "--parsable2", "-j", "12",
                          "-j", "13"], capture_output=True, text=True, env=env, check=True).stdout
    assert out.splitlines() == ["JobID|State|NodeList", "12|RUNNING|vm", "13|RUNNING|vm"]
    assert "--states=all" in (tmp_path / "calls").read_text()
