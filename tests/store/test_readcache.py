"""The read cache (``<sweep>/readcache/``, :mod:`robustsweep.store.readcache`): every query path answers exactly what
it answers without the cache -- after a refresh, from the cache alone, after a trial file is rewritten (even with the
same size), after a compaction, while a compaction runs, and when the cache is corrupt, deleted under a reader or
cannot be written. ``REFRESH_AT`` is lowered so the 24-trial sweep of the compaction tests uses the cache."""
from __future__ import annotations

import json
import os
import threading

import polars as pl
import pytest

from robustsweep.store import parquet as store
from robustsweep.store import readcache
from robustsweep.store.compact import compact
from robustsweep.store.parquet import write_trial
from tests.store.test_compact import KEY, N, _assert_same, _rows, _views, make_sweep, read_during_slow_compaction


def _direct(sw, monkeypatch) -> dict:
    """Every view read with the cache off (the oracle)."""
    with monkeypatch.context() as m:
        m.setattr(readcache, "REFRESH_AT", 10**9)
        return _views(sw)


def _current(sw) -> dict:
    return json.loads((sw.dir / readcache.CACHE_DIR / readcache.CURRENT).read_text())


@pytest.fixture
def sweep(tmp_path):
    return make_sweep(tmp_path)


@pytest.fixture(autouse=True)
def small_refresh(monkeypatch):
    monkeypatch.setattr(readcache, "REFRESH_AT", 4)


def test_cached_reads_equal_direct_reads_and_a_warm_cache_is_not_rewritten(sweep, monkeypatch):
    oracle = _direct(sweep, monkeypatch)
    assert not (sweep.dir / readcache.CACHE_DIR).exists()  # the oracle wrote nothing
    first = _views(sweep)  # refreshes the cache
    cur = _current(sweep)
    assert len(cur["keys"]) == N and (sweep.dir / readcache.CACHE_DIR / cur["file"]).is_file()
    _assert_same(oracle, first)
    second = _views(sweep)  # every trial is covered: read from the one cache file, nothing written
    assert _current(sweep) == cur
    _assert_same(oracle, second)
    # the cache really serves the rows: a cached trial's own file is not opened (it is not even needed)
    cache = readcache.load(sweep.dir)
    assert sorted(cache.covered(readcache.own_keys(sweep.dir / "trials", cache.keys))) == sorted(cur["keys"])


def test_a_sweep_below_the_refresh_size_writes_no_cache(sweep, monkeypatch):
    monkeypatch.setattr(readcache, "REFRESH_AT", N + 1)
    store.read_sweep(sweep.results, sweep.name)
    assert not (sweep.dir / readcache.CACHE_DIR).exists()


@pytest.mark.parametrize("rewrites", [1, 5])  # fewer than REFRESH_AT (read from their files), then enough to refresh
def test_a_rewritten_trial_is_never_read_from_stale_cache_rows(sweep, monkeypatch, rewrites):
    _views(sweep)
    ok = [t for t in sweep.trials[:N] if t["seed"] % 7 != 3][:rewrites]
    failed = next(t for t in sweep.trials[:N] if t["seed"] % 7 == 3)
    for t in ok:  # same rows, same column types, other values: the file keeps its size, not its inode
        rows = [{**r, "adv_accuracy": r["adv_accuracy"] + 0.01} for r in _rows(sweep, t)]
        old = os.stat(store.trial_path(sweep.results, sweep.name, t["trial_id"])).st_size
        write_trial(rows, sweep.results, sweep.name, t["trial_id"])
        assert os.stat(store.trial_path(sweep.results, sweep.name, t["trial_id"])).st_size == old
    write_trial(_rows(sweep, failed), sweep.results, sweep.name, failed["trial_id"])  # resume: failed -> ok
    got = _views(sweep)
    _assert_same(_direct(sweep, monkeypatch), got)
    new = got["rows"].filter(pl.col("trial_id") == ok[0]["trial_id"])["adv_accuracy"].to_list()
    assert new == [r["adv_accuracy"] + 0.01 for r in _rows(sweep, ok[0])]
    assert got["trial_status"][failed["trial_id"]]["status"] == "ok"
    refreshed = rewrites + 1 >= readcache.REFRESH_AT
    covered = readcache.load(sweep.dir).covered(readcache.own_keys(sweep.dir / "trials", [t["trial_id"] for t in ok]))
    assert bool(covered) == refreshed


def test_queries_equal_across_compaction_with_the_cache_and_after_later_trials(sweep, monkeypatch):
    before = _views(sweep)
    compact(sweep.results, sweep.name)
    _assert_same(before, _views(sweep))  # the cache's rows of now-compacted trials are not read twice
    for t in sweep.trials[N:]:  # the two missing trials run after the compaction
        write_trial(_rows(sweep, t), sweep.results, sweep.name, t["trial_id"])
    _assert_same(_direct(sweep, monkeypatch), _views(sweep))


def test_readers_through_the_cache_during_compaction_see_before_or_after(sweep):
    before = _views(sweep)  # warm cache
    seen = read_during_slow_compaction(
        sweep, lambda: store.read_sweep(sweep.results, sweep.name).sort(KEY).equals(before["rows"]))
    assert len(seen) >= 5 and all(seen)


@pytest.mark.parametrize("damage", ["garbage", "deleted", "bad-json"])
def test_a_damaged_or_vanished_cache_is_read_around(sweep, monkeypatch, damage):
    oracle = _direct(sweep, monkeypatch)
    _views(sweep)
    cur = _current(sweep)
    f = sweep.dir / readcache.CACHE_DIR / cur["file"]
    if damage == "garbage":
        f.write_bytes(b"PAR1 not a parquet file PAR1")
    elif damage == "deleted":
        f.unlink()
    else:
        (sweep.dir / readcache.CACHE_DIR / readcache.CURRENT).write_text("{")
    _assert_same(oracle, _views(sweep))


def test_a_cache_deleted_under_a_planned_reader_replans(sweep, monkeypatch):
    _views(sweep)
    lf = store.scan_sweep(sweep.results, sweep.name)  # planned on the current cache file...
    real = readcache.load

    def load_then_vanish(sdir):
        c = real(sdir)
        if c.file is not None and c.file.exists():
            c.file.unlink()  # ...which a concurrent refresh deletes before the reader opens it
        return c

    monkeypatch.setattr(readcache, "load", load_then_vanish)
    got = lf.collect().sort(KEY)
    monkeypatch.undo()
    assert got.equals(_direct(sweep, monkeypatch)["rows"])


def test_an_unwritable_results_folder_reads_without_a_cache(sweep, monkeypatch):
    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(readcache, "atomic_open", refuse)
    _assert_same(_direct(sweep, monkeypatch), _views(sweep))
    assert not (sweep.dir / readcache.CACHE_DIR / readcache.CURRENT).exists()


def test_concurrent_refreshes_leave_one_consistent_cache(sweep, monkeypatch):
    oracle = _direct(sweep, monkeypatch)["rows"]
    out, errors = [], []

    def read() -> None:
        try:
            out.append(store.read_sweep(sweep.results, sweep.name).sort(KEY).equals(oracle))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and out == [True] * 4
    assert store.read_sweep(sweep.results, sweep.name).sort(KEY).equals(oracle)
    assert len(_current(sweep)["keys"]) == N
