"""How a trial becomes rows: the identity columns every row carries, and the one shape of a ``failed`` row.

Two writers produce failed rows -- the trial itself (an exception inside it, with provenance) and the runner (the
trial's process died without writing anything) -- and ``resume``/``status`` read both the same way, so both are
built here.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from robustsweep.config.trial import Trial, TrialConfig, component_label
from robustsweep.store import columns
from robustsweep.store.locks import trial_lock
from robustsweep.store.parquet import finished_ok, sweep_dir, trial_path, write_trial
from robustsweep.store.provenance import host
from robustsweep.store.schema import flatten_config


def wire(cfg: TrialConfig | Trial) -> TrialConfig:
    """The wire dict of a trial given either way: rows are built from it, so a typed trial gives the same rows."""
    return cfg.to_dict() if isinstance(cfg, Trial) else cfg


def identity(cfg: TrialConfig | Trial, sweep: str) -> dict[str, Any]:
    """Columns that say which trial a row belongs to: sweep, ids, seed and the flattened config (``cfg.*``)."""
    cfg = wire(cfg)
    return {
        "sweep": sweep,
        "trial_id": cfg["trial_id"],
        "config_hash": cfg.get("config_hash"),
        "seed": int(cfg.get("seed", 0)),
        **flatten_config({k: v for k, v in cfg.items() if k not in ("trial_id", "config_hash")}),
    }


def failed_row(cfg: TrialConfig | Trial, sweep: str, error: str, **extra: Any) -> dict[str, Any]:
    """The single row a failed trial leaves in the store (``extra``: provenance, timings)."""
    cfg = wire(cfg)
    return {
        **identity(cfg, sweep),
        "host": host(),
        "config_json": json.dumps(cfg, sort_keys=True),
        **extra,
        "status": "failed",
        "error": error,
        "finished_at": dt.datetime.now(dt.timezone.utc),
    }


def record_lost_trial(cfg: TrialConfig | Trial, results: str | Path, sweep: str, error: str) -> bool:
    """Write a ``failed`` row for a trial whose process died before writing anything. Never overwrites.

    Returns True when a row was written.
    """
    cfg = wire(cfg)
    if trial_path(results, sweep, cfg["trial_id"]).exists() or finished_ok(results, sweep, cfg["trial_id"]):
        return False  # its own file, or an ok result already merged into a compacted part
    write_trial([failed_row(cfg, sweep, error)], results, sweep, cfg["trial_id"])
    return True


def write_failure(rows: list[dict[str, Any]], results: str | Path, sweep: str, trial_id: str) -> bool:
    """Write a trial's ``failed`` rows unless the store already holds an ok result for it; True when written.

    Why: with retries, an attempt Tune gave up on (its node cut off, not dead) can still be running while the retry
    finishes ok. If that late attempt then fails, its failure must not replace the retry's ok file. (A late *ok*
    attempt may replace it: same trial id, same rows, one atomically replaced file.) An earlier ``failed`` file is
    replaced, as a rerun by ``resume`` should.
    """
    with trial_lock(sweep_dir(results, sweep), trial_id):  # no ok file can land between the check and the write
        if finished_ok(results, sweep, trial_id) is not None:
            return False
        write_trial(rows, results, sweep, trial_id, locked=True)
    return True


#: per-detector columns every report frame has (``det.<label>.<metric>``): detection, then the joint fool-and-evade
#: rates of :func:`robustsweep.ops.metrics.joint_metrics` (names kept in step with ``ops.metrics.JOINT_FPRS``;
#: store sits below ops and cannot import it)
DETECTOR_METRICS = ("tpr", "fpr", "auc", "attacker_success", "attacker_success_fpr1", "attacker_success_fpr5",
                    "attacker_success_fpr10", "fpr_correct", "fpr_wrong")


def empty_rows(trials: list[TrialConfig | Trial], sweep: str) -> Any:
    """A zero-row polars frame with the columns these trials' rows will have (store columns, ``cfg.*`` of every
    trial, ``det.<label>.<m>`` for every m of DETECTOR_METRICS and every detector). A paper report of an experiment
    that has not run yet gets it, so its tables keep the paper's layout with "—" cells instead of failing on an absent column."""
    import polars as pl

    from robustsweep.store.schema import to_table

    cols: dict[str, Any] = {}
    for t in map(wire, trials):
        cols.update(identity(t, sweep))
        for d in t.get("detectors", []):
            cols.update({columns.det(component_label(d), m): 0.0 for m in DETECTOR_METRICS})
    frame = pl.from_arrow(to_table([cols | {"status": "ok"}]))
    return frame.clear()
