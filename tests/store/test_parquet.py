"""The Parquet store: atomic files (a crash mid-write leaves nothing visible), schema, reading with polars."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pyarrow.parquet as pq
import pytest

from robustsweep.store import parquet as store
from robustsweep.store.schema import CORE, to_table


def _row(tid: str, **kw):
    return {"sweep": "s", "trial_id": tid, "status": "ok", "seed": 0, "attack": "fgsm", "value": 0.1, **kw}


def test_crash_mid_write_leaves_no_visible_file_and_keeps_old_version(tmp_path, monkeypatch):
    store.write_trial([_row("a", clean_accuracy=0.5)], tmp_path, "s", "a")
    real = pq.write_table

    def half_then_die(table, where, **kw):
        real(table.slice(0, 1), where, **kw)
        where.write(b"garbage")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(pq, "write_table", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.write_trial([_row("a", clean_accuracy=0.9), _row("a", clean_accuracy=0.9)], tmp_path, "s", "a")
    with pytest.raises(KeyboardInterrupt):
        store.write_trial([_row("b")], tmp_path, "s", "b")
    monkeypatch.setattr(pq, "write_table", real)
    assert [p.name for p in store.trial_files(tmp_path, "s")] == ["a.parquet"]
    assert list((tmp_path / "s" / "trials").iterdir()) == [tmp_path / "s" / "trials" / "a.parquet"]  # no temp left
    assert store.read_sweep(tmp_path, "s")["clean_accuracy"].to_list() == [0.5]


def _slow_writer(path: str) -> None:
    """Child process: write a large table through write_atomic (killed with SIGKILL while writing)."""
    from pathlib import Path

    import pyarrow as pa

    from robustsweep.store.parquet import write_atomic

    t = pa.table({"x": pa.array(range(3_000_000))})
    while True:
        write_atomic(t, Path(path))


def test_sigkill_during_writes_never_exposes_partial_file(tmp_path):
    dest = tmp_path / "s" / "trials" / "big.parquet"
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_slow_writer, args=(str(dest),))
    p.start()
    deadline = time.time() + 60
    while not dest.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    # whatever moment it died at, the visible file is complete and readable
    assert dest.exists()
    assert pq.read_table(dest).num_rows == 3_000_000
    assert [f.name for f in store.trial_files(tmp_path, "s")] == ["big.parquet"]


def test_schema_core_types_and_prefixed_extras():
    t = to_table([_row("a", **{"cfg.model.name": "gfz", "det.logit.roc_fpr": [0.0, 0.5, 1.0], "m.cf_speed": 3})])
    assert t.schema.field("seed").type == CORE["seed"]
    assert t.schema.field("error").type == CORE["error"]  # present even when every value is null
    assert t.column("det.logit.roc_fpr").to_pylist() == [[0.0, 0.5, 1.0]]
    with pytest.raises(KeyError, match="not in store/schema.py"):
        to_table([_row("a", accuracy=1.0)])


def test_union_of_columns_across_trials_and_status(tmp_path):
    store.write_trial([_row("a", **{"cfg.model.dim_z": 8})], tmp_path, "s", "a")
    store.write_trial([_row("b", status="failed", error="ValueError: x", **{"cfg.train.lr": 0.1})], tmp_path, "s", "b")
    (tmp_path / "s" / "trials" / "c.parquet").write_bytes(b"PAR1 not really")
    with pytest.warns(UserWarning, match="c.parquet"):
        df = store.read_sweep(tmp_path, "s").sort("trial_id")
    assert df["trial_id"].to_list() == ["a", "b"]
    assert df["cfg.model.dim_z"].to_list() == [8, None] and df["cfg.train.lr"].to_list() == [None, 0.1]
    st = store.trial_status(tmp_path, "s")
    assert st["a"]["status"] == "ok" and st["b"] == {"status": "failed", "error": "ValueError: x"}
    assert st["c"]["status"] == "corrupt"


def test_columns_null_in_one_trial_and_typed_in_another_read_together(tmp_path):
    """A config key that is null for one trial (labels_per_class: null) and an int or float in others."""
    store.write_trial([_row("a", **{"cfg.model.labels_per_class": None, "cfg.train.lr": 1})], tmp_path, "s", "a")
    store.write_trial([_row("b", **{"cfg.model.labels_per_class": 20, "cfg.train.lr": 0.5})], tmp_path, "s", "b")
    df = store.read_sweep(tmp_path, "s").sort("trial_id")
    assert df["cfg.model.labels_per_class"].to_list() == [None, 20]
    assert df["cfg.train.lr"].to_list() == [1.0, 0.5]


def test_status_from_index_names_without_opening_parquet_files(tmp_path, monkeypatch):
    store.write_trial([_row("a"), _row("a")], tmp_path, "s", "a")
    store.write_trial([_row("b", status="failed", error="ValueError: x")], tmp_path, "s", "b")

    def no_parquet(*a, **k):
        raise AssertionError("status opened a Parquet file")

    monkeypatch.setattr(pq, "ParquetFile", no_parquet)
    monkeypatch.setattr(pq, "read_table", no_parquet)
    assert store.trial_status(tmp_path, "s") == {"a": {"status": "ok", "error": None},
                                                  "b": {"status": "failed", "error": "ValueError: x"}}


@pytest.mark.parametrize("file_status", ["failed", "ok"])
def test_two_disagreeing_entries_for_one_inode_read_the_file(tmp_path, file_status):
    """An ok file deleted by hand, its rerun failing into a file that got the freed inode: the old ``ok`` entry and
    the new ``failed`` one name the same ``<trial>.<inode>``. Whichever was listed first used to win, so resume
    could skip a failed trial (or rerun an ok one). The file decides, and the next status is fast again."""
    kw = {"status": "failed", "error": "RuntimeError: rerun"} if file_status == "failed" else {}
    store.write_trial([_row("a", **kw)], tmp_path, "s", "a")
    idx = tmp_path / "s" / store.INDEX_DIR
    (mine,) = [p for p in idx.iterdir() if p.name.startswith("a.")]
    other = "ok" if file_status == "failed" else "failed"
    (idx / f"{mine.name.rsplit('.', 1)[0]}.{other}").write_text("")  # the deleted file's entry, same inode
    for _ in range(2):
        assert store.trial_status(tmp_path, "s")["a"]["status"] == file_status
        assert (store.finished_ok(tmp_path, "s", "a") is None) == (file_status == "failed")
    assert [p.name.rsplit(".", 1)[1] for p in idx.iterdir() if p.name.startswith("a.")] == [file_status]


def test_stale_or_missing_index_entries_fall_back_to_the_file(tmp_path):
    """A file rewritten behind the index's back (new inode) or written before the index existed is read, and
    its entry added, so the next status is fast again; the index never overrides what the file says."""
    store.write_trial([_row("a")], tmp_path, "s", "a")
    path = store.trial_path(tmp_path, "s", "a")
    tmp = path.with_name("x.tmp")
    pq.write_table(to_table([_row("a", status="failed", error="RuntimeError: rewritten")]), tmp)
    os.replace(tmp, path)  # same name, new inode, no index entry
    assert store.trial_status(tmp_path, "s")["a"] == {"status": "failed", "error": "RuntimeError: rewritten"}
    entries = sorted(p.name for p in (tmp_path / "s" / store.INDEX_DIR).iterdir() if not p.name.startswith("schema"))
    assert len(entries) == 2 and any(e.startswith(f"a.{os.stat(path).st_ino}.") and e.endswith(".failed")
                                     for e in entries)
    assert store.finished_ok(tmp_path, "s", "a") is None
    df = store.read_sweep(tmp_path, "s")
    assert df["status"].to_list() == ["failed"] and df["error"].to_list() == ["RuntimeError: rewritten"]


def test_a_late_failure_cannot_replace_an_ok_result_written_meanwhile(tmp_path, monkeypatch):
    """write_failure checks that no ok result exists, then writes. A retry's ok file landing between the two (the
    given-up attempt and its retry finishing together) was replaced by the failure; the trial's lock makes the ok
    write wait until the failure is written, so the ok result is what stays."""
    import threading

    from robustsweep.store import rows as rows_mod

    real = rows_mod.finished_ok
    ok_writer: list[threading.Thread] = []

    def check_then_race(results, sweep, tid):
        out = real(results, sweep, tid)
        t = threading.Thread(target=store.write_trial, args=([_row(tid)], results, sweep, tid))
        t.start()  # the retry finishing ok right after the check
        t.join(timeout=0.5)  # without the lock it lands here, before the failure is written
        ok_writer.append(t)
        return out

    monkeypatch.setattr(rows_mod, "finished_ok", check_then_race)
    written = rows_mod.write_failure([_row("a", status="failed", error="late attempt")], tmp_path, "s", "a")
    ok_writer[0].join(timeout=10)
    assert written and not ok_writer[0].is_alive()
    assert store.trial_status(tmp_path, "s")["a"]["status"] == "ok"
