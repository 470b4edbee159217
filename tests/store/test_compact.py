"""``robustsweep compact``: every query answers the same before and after; a SIGKILL at any point of the protocol
loses nothing and keeps resume exactly-once; readers running during a compaction see the sweep before or after,
never both or half; a second compaction is a no-op; a trial written after it is read together with the parts."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from robustsweep.config.spec import spec_from_dict
from robustsweep.report.aggregate import query, sweep_table
from robustsweep.store import parquet as store
from robustsweep.store.compact import FAULT_ENV, POINTS, compact
from robustsweep.store.parquet import MANIFEST, PART_PREFIX, read_manifest, trial_status, write_trial
from robustsweep.sweep.folder import load_sweep, prepare_sweep
from robustsweep.sweep.resume import plan_resume
from robustsweep.sweep.status import sweep_status

N = 24
FAILED = sum(1 for i in range(N) if i % 7 == 3)  # seeds 3, 10, 17
KEY = ["trial_id", "attack", "value"]
SQL = ('SELECT "cfg.model.name" AS model, attack, value, avg(adv_accuracy) AS acc, count(*) AS n FROM results '
       "WHERE status = 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def _rows(sw, t, status: str = "ok") -> list[dict]:
    """Three rows of an ok trial (one of a failed one); GFZ and MLP trials carry different cfg.* columns, and
    cfg.train.lr is an int in some trials and a float in others (the unified schema must promote it)."""
    i = t["seed"]
    base = {"sweep": sw.name, "trial_id": t["trial_id"], "config_hash": t["config_hash"], "seed": i,
            "status": status, "cfg.model.name": "gfz" if i % 2 else "mlp",
            **({"cfg.model.dim_z": 8 + i} if i % 2 else {"cfg.model.hidden": 32}),
            "cfg.train.lr": 1 if i % 3 == 0 else 0.5}
    if status != "ok":
        return [{**base, "error": f"RuntimeError: trial {i} failed"}]
    return [{**base, "attack": "fgsm", "value": v, "adv_accuracy": 0.9 - v - i / 100, "clean_accuracy": 0.9,
             "det.logit.roc_fpr": [0.0, v, 1.0]} for v in (0.0, 0.1, 0.2)]


def make_sweep(tmp_path):
    """N trials written (1 in 7 failed), two more never run."""
    doc = {"name": "cp", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
           "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
           "search": {"seed": {"grid": list(range(N + 2))}}}
    sw = prepare_sweep(spec_from_dict(doc), tmp_path / "results")
    for t in sw.trials[:N]:  # the last two trials never ran (missing)
        write_trial(_rows(sw, t, "failed" if t["seed"] % 7 == 3 else "ok"), sw.results, sw.name, t["trial_id"])
    return sw


@pytest.fixture
def sweep(tmp_path):
    return make_sweep(tmp_path)


def _views(sw) -> dict:
    """Every query path: raw rows (sorted), status per trial, SQL, the report's aggregate, status and resume."""
    st = sweep_status(sw.results, sw.name)
    plan = plan_resume(load_sweep(sw.results, sw.name))
    return {"rows": store.read_sweep(sw.results, sw.name).sort(KEY),
            "trial_status": trial_status(sw.results, sw.name),
            "sql": query(sw.results, sw.name, SQL),
            "report": sweep_table(sw.results, sw.name),
            "status": [(t.trial_id, t.state, t.error) for t in st.trials],
            "resume": ([t["trial_id"] for t in plan.failed], [t["trial_id"] for t in plan.missing])}


def _assert_same(a: dict, b: dict) -> None:
    assert_frame_equal(a["rows"], b["rows"])  # same columns, order, dtypes and values
    assert_frame_equal(a["sql"], b["sql"], check_exact=False)
    assert_frame_equal(a["report"], b["report"], check_exact=False)
    for k in ("trial_status", "status", "resume"):
        assert a[k] == b[k], k


def _trial_files(sw) -> list[str]:
    return sorted(p.name for p in (sw.dir / "trials").iterdir() if not p.name.startswith(PART_PREFIX))


def test_queries_equal_before_and_after_and_second_compaction_is_noop(sweep):
    before = _views(sweep)
    assert before["rows"].height == 3 * (N - FAILED) + FAILED and before["rows"]["cfg.train.lr"].dtype == pl.Float64
    assert len(before["resume"][0]) == FAILED and len(before["resume"][1]) == 2
    r = compact(sweep.results, sweep.name)
    assert (r.merged_trials, r.parts, r.rows) == (N - FAILED, 1, 3 * (N - FAILED))
    # failed trials stay their own files (resume replaces them); ok ones are gone into the part
    failed_ids = {t["trial_id"] for t in sweep.trials[:N] if t["seed"] % 7 == 3}
    assert _trial_files(sweep) == sorted(f"{t}.parquet" for t in failed_ids)
    _assert_same(before, _views(sweep))
    manifest = (sweep.dir / MANIFEST).read_bytes()
    listing = sorted(os.listdir(sweep.dir / "trials"))
    again = compact(sweep.results, sweep.name)
    assert again.noop and (sweep.dir / MANIFEST).read_bytes() == manifest
    assert sorted(os.listdir(sweep.dir / "trials")) == listing
    # any Arrow tool: a plain glob over trials/*.parquet reads the same ok rows
    plain = pl.scan_parquet(str(sweep.dir / "trials" / "*.parquet"), missing_columns="insert",
                            extra_columns="ignore", cast_options=pl.ScanCastOptions(integer_cast="allow-float"))
    assert plain.filter(pl.col("status") == "ok").collect().height == 3 * (N - FAILED)


def test_trial_written_after_compaction_is_read_with_the_parts(sweep):
    compact(sweep.results, sweep.name)
    failed = next(t for t in sweep.trials[:N] if t["seed"] % 7 == 3)
    missing = sweep.trials[N]
    for t in (failed, missing):  # resume reruns them: each lands as its own file
        write_trial(_rows(sweep, t), sweep.results, sweep.name, t["trial_id"])
        assert store.trial_path(sweep.results, sweep.name, t["trial_id"]).exists()
        assert store.finished_ok(sweep.results, sweep.name, t["trial_id"]) == 3
    st = trial_status(sweep.results, sweep.name)
    assert st[failed["trial_id"]]["status"] == st[missing["trial_id"]]["status"] == "ok"
    rows = store.read_sweep(sweep.results, sweep.name)
    assert rows.filter(pl.col("trial_id") == failed["trial_id"])["status"].to_list() == ["ok"] * 3
    assert rows.filter(status="ok").height == 3 * (N - FAILED + 2)
    assert {t["trial_id"] for t in plan_resume(load_sweep(sweep.results, sweep.name)).trials} == (
        {t["trial_id"] for t in sweep.trials[:N] if t["seed"] % 7 == 3} - {failed["trial_id"]}
        | {sweep.trials[N + 1]["trial_id"]})
    before = _views(sweep)
    r = compact(sweep.results, sweep.name)  # the small part is rewritten together with the new ok trials
    assert r.merged_trials == 2 and r.parts == 1 and r.generation == 2
    _assert_same(before, _views(sweep))
    assert len([p for p in os.listdir(sweep.dir / "trials") if p.startswith(PART_PREFIX)]) == 1


def test_compacted_ok_result_wins_over_a_later_failed_file(sweep):
    """A runner that wrongly records a compacted trial as lost must not make resume run it twice."""
    compact(sweep.results, sweep.name)
    t = sweep.trials[0]
    write_trial(_rows(sweep, t, "failed"), sweep.results, sweep.name, t["trial_id"])
    assert trial_status(sweep.results, sweep.name)[t["trial_id"]]["status"] == "ok"
    assert t["trial_id"] not in {x["trial_id"] for x in plan_resume(load_sweep(sweep.results, sweep.name)).trials}
    assert store.read_sweep(sweep.results, sweep.name).filter(pl.col("trial_id") == t["trial_id"]).height == 3


def _compact_in_child(sw, fault: str) -> int:
    code = f"from robustsweep.store.compact import compact; compact({str(sw.results)!r}, {sw.name!r})"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, FAULT_ENV: fault}, timeout=120).returncode


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_point_loses_nothing_and_resume_stays_exactly_once(sweep, point):
    before = _views(sweep)
    assert _compact_in_child(sweep, f"{point}=kill") == -9
    _assert_same(before, _views(sweep))  # whatever the moment: same rows, same status, same resume plan
    r = compact(sweep.results, sweep.name)  # the next compaction finishes (or finds nothing left) and cleans up
    assert r.noop == (point in ("committed", "delete", "done"))
    _assert_same(before, _views(sweep))
    names = os.listdir(sweep.dir / "trials")
    assert not [n for n in names if n.startswith(".")]  # no pending part or temp file left
    assert [n for n in names if n.startswith(PART_PREFIX)] == [p["name"] for p in read_manifest(sweep.dir)[0].parts]
    assert len(_trial_files(sweep)) == FAILED  # only the failed trials' own files


def read_during_slow_compaction(sweep, read) -> list[bool]:
    """``read()`` (True: the reader saw the sweep as before) in a loop in a thread while a slow compaction (a pause
    at every step and after every deleted file) runs in a child process; every reader's error fails the test."""
    seen, errors = [], []

    def read_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                seen.append(read())
            except Exception as e:  # noqa: BLE001 -- any error is a failure of the reader's snapshot
                errors.append(e)

    stop = threading.Event()
    th = threading.Thread(target=read_loop, args=(stop,))
    th.start()
    try:
        assert _compact_in_child(sweep, "*=0.05") == 0
    finally:
        stop.set()
        th.join()
    assert not errors, errors[:3]
    return seen


def test_readers_during_compaction_see_before_or_after_never_both_or_half(sweep):
    before = _views(sweep)
    seen = read_during_slow_compaction(sweep, lambda: store.read_sweep(sweep.results, sweep.name).sort(KEY).equals(
        before["rows"]) and trial_status(sweep.results, sweep.name) == before["trial_status"])
    assert len(seen) >= 5 and all(seen)
    assert read_manifest(sweep.dir)[0].generation == 1


def test_compact_command(sweep, capsys):
    from robustsweep.cli import main

    assert main(["compact", sweep.name, "--results", str(sweep.results)]) == 0
    assert f"merged {N - FAILED} trial file(s) into 1 part(s)" in capsys.readouterr().out
    assert main(["compact", sweep.name, "--results", str(sweep.results)]) == 0
    assert "nothing to compact" in capsys.readouterr().out
    assert main(["compact", "nope", "--results", str(sweep.results)]) == 2
