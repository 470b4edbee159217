"""Retries of infrastructure failures without a cluster: how a failure is named, the retry record and what ``status``
says about it (without torch or Ray), Tune's real retry/give-up sequence against our callbacks, and exactly-once
when an attempt Tune gave up on finishes late."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from robustsweep.store.markers import read_retries, record_retry, retry_path
from robustsweep.store.parquet import trial_path, trial_status
from robustsweep.store.rows import failed_row, write_failure

SPEC = {"name": "late", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
        "train": {"epochs": 1}, "eval": {"n_eval": 30}, "attacks": [{"name": "fgsm", "eps": [0.0, 0.1]}],
        "search": {"seed": {"grid": [0]}}}


@pytest.mark.parametrize("text, reason", [
    ("The actor died because its node has died. Node Id: 5954c5e0", "node lost"),
    ("ActorUnavailableError: The actor abc is unavailable: The actor is temporarily unavailable: RpcError: "
     "RPC Error message: Socket closed; RPC Error details:", "node lost"),
    ("The actor died unexpectedly before finishing this task. The worker process has died (SIGKILL)",
     "worker process died"),
    # Ray's text for any dead worker names the OOM killer as a possible cause: still a dead worker, not OOM
    ("ActorDiedError: The actor died unexpectedly before finishing this task. The actor is dead because its worker "
     "process has died. Some common causes include: (1) the process was killed by the OOM killer due to high memory "
     "usage, (2) ray stop --force was called", "worker process died"),
    ("ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.", "out of memory"),
    ("", "infrastructure failure"),
])
def test_failures_are_named_by_what_killed_the_trial(text, reason):
    from robustsweep.runners.tune_callbacks import classify_failure, last_failure

    assert classify_failure(text) == reason
    # Tune appends one block per failure to error.txt: the retry is named after the last one
    two = f"Failure # 1 (occurred at 2026-01-01)\nsomething else\nFailure # 2 (occurred at 2026-01-02)\n{text}\n"
    assert classify_failure(last_failure(two)) == reason


def test_retry_record_accumulates_and_status_shows_it_without_torch_or_ray(tmp_path):
    from robustsweep.config.spec import load_spec
    from robustsweep.sweep.folder import prepare_sweep

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SPEC | {"search": {"seed": {"grid": [0, 1]}}}))
    sw = prepare_sweep(load_spec(tmp_path / "s.yaml", []), tmp_path / "r")
    tid = sw.trials[0]["trial_id"]
    assert record_retry(sw.results, sw.name, tid, "worker process died", "x" * 2000, 2) == 1
    assert record_retry(sw.results, sw.name, tid, "node lost", "gone", 2) == 2
    got = read_retries(sw.results, sw.name)
    assert list(got) == [tid] and [r["reason"] for r in got[tid]] == ["worker process died", "node lost"]
    assert len(got[tid][0]["detail"]) == 500  # capped
    assert not list(retry_path(sw.results, sw.name, tid).parent.glob(".*"))  # no temp file left behind
    code = (
        "import sys, io\n"
        "from robustsweep.sweep.status import sweep_status, print_status\n"
        f"st = sweep_status({str(sw.results)!r}, {sw.name!r})\n"
        "buf = io.StringIO(); print_status(st, buf); print(buf.getvalue())\n"
        "print('HEAVY', sorted(m for m in ('torch', 'ray') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    # the trial never ran after its retries here: pending, and still shown with its retries once it is running/done
    st_line = next(ln for ln in out.splitlines() if ln.startswith("trials:"))
    assert "2 pending" in st_line
    from robustsweep.sweep.status import sweep_status

    st = sweep_status(sw.results, sw.name)
    one = next(t for t in st.trials if t.trial_id == tid)
    assert (one.retries, one.retry_reason, one.retry_text) == (2, "node lost", "retried 2×: node lost")
    assert all(t.retries == 0 for t in st.trials if t.trial_id != tid)


def _prepared(tmp_path: Path):
    from robustsweep.config.spec import load_spec
    from robustsweep.core.runtime import runtime_for
    from robustsweep.sweep.folder import prepare_sweep

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SPEC))
    sw = prepare_sweep(load_spec(tmp_path / "s.yaml", []), tmp_path / "r")
    return sw, runtime_for(sw)


def test_late_finisher_of_a_given_up_attempt_leaves_one_ok_file(tmp_path):
    """The retry finishes ok first; then the attempt Tune gave up on (cut off, not dead) finishes too -- it had
    passed the store check before the retry wrote its file. One file, ok, the same rows; and a late *failure* of
    that attempt does not replace the ok result."""
    from robustsweep.core.trial import run_logged, run_trial

    sw, rt = _prepared(tmp_path)
    cfg = sw.trials[0]
    retry_rows = run_logged(cfg, rt)
    assert retry_rows is not None
    late_rows = run_trial(cfg, rt)  # the late attempt, already past run_logged's check
    files = sorted((sw.dir / "trials").glob("*.parquet"))
    assert files == [trial_path(sw.results, sw.name, cfg["trial_id"])]
    assert trial_status(sw.results, sw.name)[cfg["trial_id"]]["status"] == "ok"
    keys = ("attack", "value", "clean_accuracy", "adv_accuracy")
    stored = pq.read_table(files[0]).to_pylist()
    assert [[r[k] for k in keys] for r in stored] == [[r[k] for k in keys] for r in retry_rows] \
        == [[r[k] for k in keys] for r in late_rows]
    # a late failure of the given-up attempt: refused, the ok file stays
    row = failed_row(cfg, sw.name, "RuntimeError: late")
    assert write_failure([row], sw.results, sw.name, cfg["trial_id"]) is False
    assert pq.read_table(files[0]).column("status").to_pylist() == ["ok", "ok"]
    # ...while a failure with no ok result is written (and a rerun's failure replaces an earlier failure)
    other = tmp_path / "other"
    assert write_failure([row], other, sw.name, cfg["trial_id"]) is True
    assert write_failure([failed_row(cfg, sw.name, "again")], other, sw.name, cfg["trial_id"]) is True
    assert trial_status(other, sw.name)[cfg["trial_id"]]["error"] == "again"


# ------------------------------------------------------------------------------- Tune's retry sequence, for real
def _dies_until(config):
    """A trainable whose process is SIGKILLed (as by the OOM killer) on its first ``config['deaths']`` attempts."""
    from ray import tune

    marker = Path(config["trial"]["count"])
    n = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(n + 1))
    if n < config["trial"]["deaths"]:
        os.kill(os.getpid(), signal.SIGKILL)
    tune.report({"clean_accuracy": 1.0, "rows": 1})


def test_tune_retries_a_killed_process_and_writes_the_failed_row_only_when_retries_are_used_up(tmp_path, capsys):
    import ray
    from ray import tune

    from robustsweep.runners import tune_callbacks

    results = tmp_path / "r"
    # t0 dies once then succeeds; t1 dies more often than max_retries allows
    cfgs = [{"trial_id": f"t{k}", "seed": 0, "model": {"name": "mlp"}, "dataset": {"name": "digits"},
             "count": str(tmp_path / f"t{k}.n"), "deaths": deaths} for k, deaths in enumerate((1, 5))]
    space = {"trial": tune.grid_search(cfgs), "runtime": {"results": str(results), "sweep": "s"}}
    tune_callbacks.start_run(["t0", "t1"], 2)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tune.Tuner(
            _dies_until, param_space=space,
            run_config=tune.RunConfig(name="tune", storage_path=str(tmp_path / "tune"), verbose=0,
                                      callbacks=[tune_callbacks.progress_callback(),
                                                 tune_callbacks.lost_trials_callback()],
                                      failure_config=tune.FailureConfig(max_failures=2)),
        ).fit()
    finally:
        ray.shutdown()
    assert (tmp_path / "t0.n").read_text() == "2" and (tmp_path / "t1.n").read_text() == "3"  # 1 + 2 retries
    retries = read_retries(results, "s")
    assert {t: len(r) for t, r in retries.items()} == {"t0": 1, "t1": 2}
    assert {r["reason"] for rs in retries.values() for r in rs} == {"worker process died"}
    status = trial_status(results, "s")
    assert "t0" not in status  # retried, then fine: no failed row was ever written for it
    assert status["t1"]["status"] == "failed" and "died" in status["t1"]["error"]
    log = (results / "s" / "logs" / "t1.log").read_text().splitlines()
    assert [ln.split(" after ")[0].split()[-2:] for ln in log] == [["RETRY", "1/2"], ["RETRY", "2/2"]]
    out = capsys.readouterr().out
    assert out.count("retry ") == 3 and out.count("FAIL ") == 1 and "done 1" in out
    assert json.loads((results / "s" / "retries" / "t0.json").read_text())["trial_id"] == "t0"


def test_late_failure_of_a_given_up_attempt_keeps_the_ok_result(tmp_path, monkeypatch):
    """An attempt Tune gave up on that fails *after* the retry finished ok must not replace the ok file with its
    failed row (core/trial.py writes failures through store.rows.write_failure)."""
    from robustsweep.core import evaluate as ev
    from robustsweep.core.trial import run_logged, run_trial
    from robustsweep.errors import TrialFailed

    sw, rt = _prepared(tmp_path)
    cfg = sw.trials[0]
    assert run_logged(cfg, rt) is not None
    monkeypatch.setattr(ev, "run", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("late")))
    with pytest.raises(TrialFailed):
        run_trial(cfg, rt)
    assert trial_status(sw.results, sw.name)[cfg["trial_id"]]["status"] == "ok"
