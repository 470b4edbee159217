"""A real two-node Ray cluster on this machine, brought up by the SLURM ``ray`` mode's own entry points.

Two processes run ``python -m robustsweep.runners.slurm.job`` with the variables SLURM gives the two tasks of a
two-node allocation (``SLURM_PROCID`` 0 and 1): rank 0 starts the Ray head with the job's ports and token, publishes
its address, waits for the worker node and drives the sweep; rank 1 reads the address, starts a Ray worker node that
joins it and stays until the head is done. That is the code a two-node allocation runs, minus ``srun``.

One sweep of six tiny digits MLP trials (two short, three training for a few seconds, one diverging at once) runs on the two nodes
(one CPU each). When a second trial has started on the worker node, the worker's whole Ray node (``ray start``
and everything it spawned: raylet, the trial's worker process) is SIGKILLed, as when a node is lost. Checked:
trials ran on both nodes into one results folder; the lost trial is retried on the surviving node with no user
action and every good trial ends ok with exactly one result file; the diverging trial fails once and is not
retried; ``status`` shows the retry.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from robustsweep.runners.slurm import ray_cluster as rc
from robustsweep.store.markers import read_retries
from robustsweep.store.parquet import trial_status

pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and Linux ray start")]

# Tune starts the grid in this order, one trial per node at a time: the two short trials go first, one on each node,
# so the second trial the worker node gets is a long one (a few seconds of training: it is killed mid-way)
# 400 epochs of this MLP take several seconds even on an idle machine (60 took about one second there, too short
# for the test to catch the trial mid-training before it finished)
GOOD = [{"epochs": 4 if i < 2 else 400, "batch_size": 32, "lr": round(0.01 + 0.001 * i, 4)} for i in range(5)]
BAD = {"epochs": 1, "lr": 1e30}  # the loss becomes NaN in the first steps: the trial's own code raises
SPEC = {"name": "twonode", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 16},
        "eval": {"n_eval": 40}, "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}],
        "search": {"train": {"grid": [*GOOD, BAD]}}}
HEADER = re.compile(r"^\S+ trial (\w+) on .* pid (\d+), ray node (\w+), attempt (\d+)$")


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether process ``pid`` is ``ancestor`` or runs under it (the oracle for "runs on the worker node")."""
    seen = 0
    while pid and pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        pid, seen = _parent(pid) or 0, seen + 1
    return False


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _wait_for(cond, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: process {p.args[-4:]} exited with {p.returncode} first")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _headers(log: Path) -> list[tuple[str, int, str, int]]:
    """(trial id, pid, ray node id, attempt) of each attempt's first log line."""
    out = []
    with contextlib.suppress(OSError):
        for line in log.read_text().splitlines():
            if m := HEADER.match(line):
                out.append((m.group(1), int(m.group(2)), m.group(3), int(m.group(4))))
    return out


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    if rc.is_loopback(rc.node_ip()):
        pytest.skip("no non-loopback network interface: a two-node Ray head refuses a loopback address")
    tmp = tmp_path_factory.mktemp("multinode")
    spec, results = tmp / "twonode.yaml", tmp / "results"
    spec.write_text(yaml.safe_dump(SPEC))
    job = str(700000 + os.getpid() % 100000)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RAY_"))}
    procs: dict[int, subprocess.Popen] = {}
    for rank in (0, 1):
        env = base | {"SLURM_JOB_ID": job, "SLURM_PROCID": str(rank), "SLURM_JOB_NUM_NODES": "2",
                      "SLURM_CPUS_ON_NODE": "1", "SLURM_MEM_PER_NODE": "2000", "RAY_USAGE_STATS_ENABLED": "0",
                      "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        procs[rank] = subprocess.Popen(
            [sys.executable, "-m", "robustsweep.runners.slurm.job", "--spec", str(spec), "--results", str(results),
             "--head-timeout", "120"],
            stdout=(tmp / f"rank{rank}.out").open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    head, worker = procs[0], procs[1]
    try:
        # the worker's Ray node: the `ray start --block` child of rank 1 (its own process group)
        ray_start = _wait_for(lambda: next(iter(_children(worker.pid)), None), 120, "the worker's ray start",
                              [worker])
        sweep = results / "twonode"
        seen: dict[str, int] = {}  # trial id -> pid of its attempt on the worker node

        def second_trial_on_worker() -> str | None:
            for log in (sweep / "logs").glob("*.log") if (sweep / "logs").is_dir() else []:
                for tid, pid, _node, _attempt in _headers(log):
                    if _descends_from(pid, ray_start):
                        seen.setdefault(tid, pid)
            running = [t for t in seen if (sweep / "running" / f"{t}.json").exists()
                       and trial_status(results, "twonode").get(t) is None]
            return running[0] if len(seen) >= 2 and running else None

        killed = _wait_for(second_trial_on_worker, 180, "a second trial training on the worker node", [head])
        os.killpg(ray_start, signal.SIGKILL)  # the node is lost: raylet, its workers, everything of that node
        killed_pid = seen[killed]
        # exit 1: the diverging trial failed (by design); every other trial must be ok (checked below)
        assert head.wait(timeout=240) == 1, (tmp / "rank0.out").read_text()[-3000:]
        worker.wait(timeout=60)
        status = subprocess.run([sys.executable, "-m", "robustsweep", "status", "twonode", "--results",
                                 str(results)], capture_output=True, text=True, env=base, timeout=60)
        yield {"results": results, "sweep": sweep, "killed": killed, "killed_pid": killed_pid,
               "worker_trials": dict(seen), "ray_start": ray_start, "head_out": (tmp / "rank0.out").read_text(),
               "worker_out": (tmp / "rank1.out").read_text(), "status": status, "job": job}
    finally:
        for p in procs.values():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)


def _trial_ids(sweep: Path) -> dict[str, dict]:
    return {t["trial_id"]: t for t in json.loads((sweep / "sweep.json").read_text())["trials"]}


def _bad_id(sweep: Path) -> str:
    return next(tid for tid, t in _trial_ids(sweep).items() if t["train"].get("lr") == BAD["lr"])


def test_head_starts_with_the_job_ports_and_token_and_waits_for_the_worker(scenario):
    rdv = scenario["sweep"] / "slurm" / "ray" / f"{scenario['job']}.0"
    head = json.loads((rdv / "head.json").read_text())
    assert head["port"] == rc.ports_for_block(rc.block_for_job(scenario["job"])).gcs  # the job's port block
    assert (rdv / "auth_token").stat().st_mode & 0o077 == 0  # the job's token, private to the user
    assert "1 worker node(s) to join" in scenario["head_out"]
    assert (rdv / "done").exists()  # the head told the workers it is done
    assert re.search(r"robustsweep: 5/6 trials ok, 1 failed", scenario["head_out"]), scenario["head_out"][-2000:]


def test_trials_run_on_both_nodes_and_write_into_one_results_folder(scenario):
    sweep = scenario["sweep"]
    nodes = {h[2] for log in (sweep / "logs").glob("*.log") for h in _headers(log)}
    assert len(nodes) == 2, nodes  # two Ray node ids among the attempts
    on_worker = set(scenario["worker_trials"])
    assert len(on_worker) >= 2  # one finished there before the node was lost, one was training there
    files = sorted(p.name for p in (sweep / "trials").glob("*.parquet"))
    assert files == sorted(f"{tid}.parquet" for tid in _trial_ids(sweep))  # one folder, one file per trial
    finished_on_worker = on_worker - {scenario["killed"]}
    status = trial_status(scenario["results"], "twonode")
    assert any(status[t]["status"] == "ok" for t in finished_on_worker)


def test_lost_node_trial_is_retried_on_the_surviving_node_and_ends_ok_once(scenario):
    sweep, killed = scenario["sweep"], scenario["killed"]
    attempts = _headers(sweep / "logs" / f"{killed}.log")
    assert [a[3] for a in attempts] == [1, 2], attempts  # retried once, by Tune, with no resume
    assert attempts[0][1] == scenario["killed_pid"] and _descends_from(scenario["killed_pid"],
                                                                      scenario["ray_start"]) is False  # gone
    assert attempts[0][2] != attempts[1][2]  # the retry ran on the other (surviving) node
    log = (sweep / "logs" / f"{killed}.log").read_text()
    assert "RETRY 1/2 after node lost" in log or "RETRY 1/2 after worker process died" in log, log
    retries = read_retries(scenario["results"], "twonode")
    assert list(retries) == [killed] and len(retries[killed]) == 1
    status = trial_status(scenario["results"], "twonode")
    bad = _bad_id(sweep)
    assert {t: s["status"] for t, s in status.items() if t != bad} == {t: "ok" for t in _trial_ids(sweep)
                                                                       if t != bad}
    import pyarrow.parquet as pq

    rows = pq.read_table(sweep / "trials" / f"{killed}.parquet").to_pylist()
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok"}  # one row per eps, no duplicate


def test_trial_whose_code_raises_is_not_retried(scenario):
    sweep = scenario["sweep"]
    bad = _bad_id(sweep)
    attempts = _headers(sweep / "logs" / f"{bad}.log")
    assert [a[3] for a in attempts] == [1], attempts
    assert "RETRY" not in (sweep / "logs" / f"{bad}.log").read_text()
    st = trial_status(scenario["results"], "twonode")[bad]
    assert st["status"] == "failed" and "TrainingDiverged" in (st.get("error") or "")
    assert bad not in read_retries(scenario["results"], "twonode")


def test_status_shows_the_retry(scenario):
    out = scenario["status"].stdout
    assert scenario["status"].returncode == 0, scenario["status"].stderr
    line = next(ln for ln in out.splitlines() if scenario["killed"] in ln and "retried" in ln)
    assert re.search(r"retried 1×: (node lost|worker process died), then done", line), out
    assert "5 done" in out and "1 failed" in out
