"""After a run the read cache is already warm, so an analyst's first ``results`` reads one file, not a footer per
trial: the Tune runner refreshes it at the end of a run, and in ``--mode array`` (no driver) the task that leaves no
trial without a file does. ``REFRESH_AT`` is lowered so a few real trials stand for 10,000."""
from __future__ import annotations

import json

import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.core.runtime import runtime_for
from robustsweep.store import readcache
from robustsweep.store.parquet import read_sweep, warm_read_cache
from robustsweep.sweep.folder import prepare_sweep

SPEC = {"name": "warm", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
        "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
        "search": {"seed": {"grid": [0, 1, 2]}}}


def _covered(sw) -> set[str]:
    cur = sw.dir / readcache.CACHE_DIR / readcache.CURRENT
    return set(json.loads(cur.read_text())["keys"]) if cur.exists() else set()


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(readcache, "REFRESH_AT", 2)
    return prepare_sweep(spec_from_dict(SPEC), tmp_path / "r")


def test_the_array_task_that_finishes_the_sweep_warms_the_cache(sweep, monkeypatch):
    from robustsweep.runners.slurm.array import ArrayTrial

    task = ArrayTrial(str(sweep.results), sweep.name, runtime_for(sweep).__dict__)
    ids = [t["trial_id"] for t in sweep.trials]
    for i, t in enumerate(sweep.trials):
        task(t)
        assert _covered(sweep) == (set(ids) if i == len(ids) - 1 else set()), i  # only the last task writes it
    rows = read_sweep(sweep.results, sweep.name)
    assert sorted(rows["trial_id"].unique()) == sorted(ids)


def test_warming_covers_exactly_what_a_reader_would_read(sweep):
    from robustsweep.core.trial import run_trial

    rt = runtime_for(sweep)
    for t in sweep.trials:
        run_trial(t, rt)
    assert _covered(sweep) == set()
    assert warm_read_cache(sweep.results, sweep.name) is True
    ids = {t["trial_id"] for t in sweep.trials}
    assert _covered(sweep) == ids
    cached = read_sweep(sweep.results, sweep.name).sort("trial_id", "eps")
    readcache.discard(sweep.dir)
    direct = read_sweep(sweep.results, sweep.name).sort("trial_id", "eps")
    assert cached.equals(direct)  # the warmed cache answers with the files' own rows


def test_warming_a_read_only_or_missing_store_is_a_quiet_no_op(tmp_path):
    assert warm_read_cache(tmp_path, "nope") is False
