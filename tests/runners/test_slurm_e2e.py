"""End-to-end on a real single-node SLURM (``eval "$(slurm/local_slurm.sh start)"``; .ci/run does this).

Skipped only when ``SLURM_CONF`` is unset or its controller does not answer. Each test submits tiny sweeps
(1 epoch on the bundled digits data) through the real CLI and checks the Parquet store afterwards:

* submit the quickstart (shrunk with --set) in ray mode -> every trial ok;
* ``scancel`` a running job, ``resume`` -> every trial present exactly once, the finished one never rerun;
* SIGKILL a trial's process mid-run -> recorded as failed with the cause; ``resume`` completes it;
* array mode -> one task per trial;
* pre-emption (SIGUSR2, as SLURM sends before a time limit / pre-emption) -> submitit requeues the job and
  the requeued allocation restores Tune and finishes without rerunning finished trials.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "experiments" / "quickstart.yaml"
JOB_TIMEOUT_S = 300


def _slurm_reachable() -> str | None:
    """None when a SLURM controller answers, else why not (the skip reason)."""
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return "SLURM_CONF is not set (start the test cluster: eval \"$(slurm/local_slurm.sh start)\")"
    if not Path(conf).is_file():
        return f"SLURM_CONF={conf} does not exist"
    if shutil.which("scontrol") is None:
        return "scontrol not on PATH"
    try:
        res = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "scontrol ping timed out"
    if res.returncode != 0 or "UP" not in res.stdout:
        return f"SLURM controller not reachable: {res.stdout.strip()} {res.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def slurm_env():
    why = _slurm_reachable()
    if why:
        pytest.skip(why)
    env = dict(os.environ)
    # the local cluster has no accounting; its sacct stand-in sits next to the config (see local_slurm.sh)
    standin = Path(os.environ["SLURM_CONF"]).resolve().parent.parent / "bin"
    if (standin / "sacct").exists() and not env["PATH"].startswith(str(standin)):
        env["PATH"] = f"{standin}:{env['PATH']}"
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", env["PATH"])
        yield env


def rs(env: dict[str, str], *args: str, timeout: float = JOB_TIMEOUT_S,
       check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI (``python -m robustsweep ...``) as a user would."""
    res = subprocess.run([sys.executable, "-m", "robustsweep", *args], capture_output=True, text=True, env=env,
                         timeout=timeout, cwd=REPO)
    if check and res.returncode != 0:
        raise AssertionError(f"robustsweep {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def tiny_spec(tmp_path: Path, name: str, epochs: list[int], max_retries: int | None = None) -> Path:
    """One trial per entry of ``epochs`` (1 epoch: ~1 s warm; 250 epochs of a 256-unit MLP: ~15-30 s on one core,
    long enough that a cancel / kill / pre-emption always lands mid-run even on an idle machine).

    The slow trials are what a cancel / kill / pre-emption hits mid-run; with --max-concurrent 1 Tune runs the
    trials in this order, so a fast first trial finishes before the interruption.
    """
    doc = {"name": name, "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 256},
           "train": {"epochs": 1, "batch_size": 64}, "eval": {"n_eval": 30},
           "attacks": [{"name": "fgsm", "eps": [0.1]}], "search": {"train.epochs": {"grid": epochs}},
           "resources": {"cpus_per_trial": 1} | ({} if max_retries is None else {"max_retries": max_retries})}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def records(sweep_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (sweep_dir / "slurm" / "jobs.jsonl").read_text().splitlines()]


def job_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "--noheader", "--states=all", "-o", "%T", "-j", job_id],
                         capture_output=True, text=True).stdout.split()
    return out[0] if out else "UNKNOWN"


def wait_until(cond, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_job_done(job_id: str, timeout: float = JOB_TIMEOUT_S) -> str:
    active = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED"}
    return wait_until(lambda: (s := job_state(job_id)) not in active and s, timeout, f"job {job_id} to end")


def store(results: Path, sweep: str) -> dict[str, dict[str, Any]]:
    from robustsweep.store.parquet import trial_status

    return trial_status(results, sweep)


def status_json(env, results: Path, sweep: str, cli: bool = False) -> dict[str, Any]:
    """``robustsweep status --json`` (through the CLI when ``cli``; in-process otherwise, to save ~8 s)."""
    if cli:
        return json.loads(rs(env, "status", sweep, "--results", str(results), "--json").stdout)
    from robustsweep.sweep.status import sweep_status

    return sweep_status(results, sweep).to_dict()


def assert_exactly_once(results: Path, sweep: str) -> None:
    """Every trial of the sweep has one ok file, written by one run (one started_at), no stray files."""
    import polars as pl

    from robustsweep.store.parquet import read_sweep
    from robustsweep.sweep.folder import load_sweep

    sw = load_sweep(results, sweep)
    ids = {t["trial_id"] for t in sw.trials}
    files = {p.stem for p in (sw.dir / "trials").glob("*.parquet")}
    assert files == ids
    df = read_sweep(results, sweep)
    assert set(df["status"].unique()) == {"ok"}
    per_trial = df.group_by("trial_id").agg(pl.col("started_at").n_unique().alias("runs"), pl.len().alias("rows"))
    assert per_trial["runs"].to_list() == [1] * len(ids)
    assert set(per_trial["trial_id"]) == ids


# ------------------------------------------------------------------------------------------------ tests
def test_submit_quickstart_ray_mode(slurm_env, tmp_path):
    results = tmp_path / "results"
    t0 = time.monotonic()
    res = rs(slurm_env, "submit", str(QUICKSTART), "--results", str(results), "--name", "qs",
             "--set", "train.epochs=1", "--set", "eval.n_eval=30", "--set", "search.seed.grid=[0]",
             "--set", "attacks=[{name: fgsm, eps: [0.0, 0.1]}]",
             "--set", "search.model.grid=[{name: mlp, hidden: 16}, {name: gfz, dim_z: 4, hidden: 32, K: 2}]",
             "--time", "00:15:00", "--cpus-per-node", "2")
    assert time.monotonic() - t0 < 60  # returns right away, does not wait for the job
    assert "submitted SLURM job" in res.stdout
    (rec,) = records(results / "qs")
    assert rec["mode"] == "ray" and len(rec["trial_ids"]) == 2
    assert wait_job_done(rec["job_id"]) == "COMPLETED", (results / "qs" / "slurm").as_posix()
    st = store(results, "qs")
    assert len(st) == 2 and all(v["status"] == "ok" for v in st.values())
    assert_exactly_once(results, "qs")
    s = status_json(slurm_env, results, "qs", cli=True)
    assert s["counts"] == {"done": 2, "running": 0, "failed": 0, "pending": 0}
    assert s["jobs"][0]["state"] == "COMPLETED"
    log = Path(s["jobs"][0]["log"]).read_text()
    assert "Ray head" in log and "2/2 trials ok" in log


def test_scancel_then_resume_runs_each_trial_exactly_once(slurm_env, tmp_path):
    results, sweep = tmp_path / "results", "cancel"
    spec = tiny_spec(tmp_path, sweep, [1, 250])
    rs(slurm_env, "submit", str(spec), "--results", str(results), "--time", "15", "--cpus-per-node", "2",
       "--max-concurrent", "1")
    (rec,) = records(results / sweep)
    trials_dir = results / sweep / "trials"
    first = wait_until(lambda: sorted(trials_dir.glob("*.parquet")), JOB_TIMEOUT_S, "the first result file")[0]
    first_mtime = first.stat().st_mtime_ns
    subprocess.run(["scancel", rec["job_id"]], check=True)
    assert wait_job_done(rec["job_id"]) == "CANCELLED"
    s = status_json(slurm_env, results, sweep)
    assert s["counts"]["done"] == 1  # the fast trial; the slow one was cut off
    assert s["counts"]["running"] == 0  # nothing can be running in a cancelled job
    # resume goes to SLURM (the sweep was submitted there) and takes only what is left
    res = rs(slurm_env, "resume", sweep, "--results", str(results), "--time", "15", "--cpus-per-node", "2")
    assert "resuming 1 of 2 trials" in res.stdout
    rec2 = records(results / sweep)[-1]
    assert rec2["command"] == "resume" and len(rec2["trial_ids"]) == 1
    assert first.stem not in rec2["trial_ids"]
    assert wait_job_done(rec2["job_id"]) == "COMPLETED"
    assert_exactly_once(results, sweep)
    assert first.stat().st_mtime_ns == first_mtime  # the finished trial was not rerun
    # nothing left: a second resume submits nothing
    again = rs(slurm_env, "resume", sweep, "--results", str(results))
    assert "nothing to resume" in again.stdout and len(records(results / sweep)) == 2


def test_sigkilled_trial_is_recorded_failed_and_resume_completes_it(slurm_env, tmp_path):
    """With retries off (``resources.max_retries: 0``; by default Tune would retry the killed trial itself, see
    tests/runners/test_multinode.py) a killed trial is recorded failed at once and ``resume`` completes it."""
    results, sweep = tmp_path / "results", "killed"
    spec = tiny_spec(tmp_path, sweep, [250, 1], max_retries=0)
    rs(slurm_env, "submit", str(spec), "--results", str(results), "--time", "15", "--cpus-per-node", "2",
       "--max-concurrent", "1")
    (rec,) = records(results / sweep)
    running = results / sweep / "running"
    marker = wait_until(lambda: sorted(running.glob("*.json")), JOB_TIMEOUT_S, "a trial to start")[0]
    info = json.loads(marker.read_text())
    victim = info["trial_id"]
    os.kill(int(info["pid"]), signal.SIGKILL)  # the trial's own process, mid-run
    assert wait_job_done(rec["job_id"]) == "COMPLETED"  # the driver survives and finishes the other trial
    st = store(results, sweep)
    assert st[victim]["status"] == "failed"
    assert "died" in st[victim]["error"]
    other = next(t for t in rec["trial_ids"] if t != victim)
    assert st[other]["status"] == "ok"
    other_mtime = (results / sweep / "trials" / f"{other}.parquet").stat().st_mtime_ns
    s = status_json(slurm_env, results, sweep)
    failed = [t for t in s["trials"] if t["state"] == "failed"]
    assert [t["trial_id"] for t in failed] == [victim] and "died" in failed[0]["error"]
    assert failed[0]["job_log"] and Path(failed[0]["job_log"]).exists()
    # resume locally this time: only the killed trial runs
    res = rs(slurm_env, "resume", sweep, "--results", str(results), "--backend", "local", "--cpus", "2")
    assert "resuming 1 of 2 trials (1 failed, 0 never finished) on local" in res.stdout
    assert_exactly_once(results, sweep)
    assert (results / sweep / "trials" / f"{other}.parquet").stat().st_mtime_ns == other_mtime


def test_array_mode_one_task_per_trial(slurm_env, tmp_path):
    results, sweep = tmp_path / "results", "arr"
    spec = tiny_spec(tmp_path, sweep, [1, 2])
    res = rs(slurm_env, "submit", str(spec), "--results", str(results), "--mode", "array",
             "--array-parallelism", "2", "--time", "10", "--wait")
    assert "an array of 2 task(s)" in res.stdout
    (rec,) = records(results / sweep)
    assert rec["mode"] == "array"
    s = status_json(slurm_env, results, sweep)
    assert [j["task_id"] for j in s["jobs"]] == [f"{rec['job_id']}_0", f"{rec['job_id']}_1"]
    assert all(j["state"] == "COMPLETED" for j in s["jobs"])
    assert_exactly_once(results, sweep)


def test_preempted_job_requeues_and_finishes_without_rerunning(slurm_env, tmp_path):
    results, sweep = tmp_path / "results", "preempt"
    spec = tiny_spec(tmp_path, sweep, [1, 250])
    rs(slurm_env, "submit", str(spec), "--results", str(results), "--time", "60", "--cpus-per-node", "2",
       "--max-concurrent", "1")
    (rec,) = records(results / sweep)
    jid = rec["job_id"]
    trials_dir = results / sweep / "trials"
    first = wait_until(lambda: sorted(trials_dir.glob("*.parquet")), JOB_TIMEOUT_S, "the first result file")[0]
    first_mtime = first.stat().st_mtime_ns
    # what SLURM sends before pre-emption / the time limit (the job asks for it with --signal=USR2@...)
    subprocess.run(["scancel", "--signal=USR2", jid], check=True)
    wait_until(lambda: job_state(jid) == "PENDING", 60, "the job to be requeued")
    # a requeued job waits for its BeginTime; on the test cluster we let it start now
    subprocess.run(["scontrol", "update", f"jobid={jid}", "StartTime=now"], check=True)
    assert wait_job_done(jid) == "COMPLETED"
    log = (results / sweep / "slurm" / "logs" / jid / f"{jid}_0_log.out").read_text()
    assert "requeueing" in log and "restart 1" in log and "restoring Tune state" in log
    assert_exactly_once(results, sweep)
    assert first.stat().st_mtime_ns == first_mtime
