"""The one definition of the result columns (README "Result schema" documents the same list).

One row per (trial, attack, attack-grid value); a failed trial is one row with ``status = 'failed'`` and its
``error``. Besides the fixed columns below a row carries:

- ``cfg.<dotted.key>``: the trial config flattened (``cfg.model.name``, ``cfg.model.dim_z``, ``cfg.train.lr``…);
  lists and dicts are JSON strings, scalars keep their type;
- ``det.<detector>.<metric>``: per detector, ``tpr`` (on successful adversarials), ``fpr`` (on clean test inputs),
  ``auc`` and the ROC points ``roc_fpr`` / ``roc_tpr`` (lists of float64) so ROC plots can be redrawn;
- ``m.<name>``: extra metrics (e.g. ``m.min_perturbation``, ``m.cf_speed``; ``m.val_accuracy`` with a validation split);
- ``ex.<name>``: example images as flat float lists, only with ``eval.examples`` (``core/examples.py``);
- ``atk.<dotted.key>``: the row's attack settings flattened like ``cfg.*`` (``atk.eps``, ``atk.steps``…; the same
  settings as the ``attack_params`` JSON, which stays for older readers). Names: ``store/columns.py``.
"""
from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from robustsweep.store import columns

SCHEMA_VERSION = 1

CORE: dict[str, pa.DataType] = {
    # identity
    "sweep": pa.string(),
    "trial_id": pa.string(),  # hash of the whole trial config (seed included): the store's primary key
    "config_hash": pa.string(),  # same hash without the seed: groups a config's seeds for mean/std
    "seed": pa.int64(),
    "status": pa.string(),  # 'ok' | 'failed'
    "error": pa.string(),  # exception type and message of a failed trial (null when ok)
    # attack point
    "attack": pa.string(),  # registry name; 'none' for the clean-only row of a trial without attacks
    "kind": pa.string(),  # what the row measures: clean | attack | counterfactual | retrain (store/columns.py)
    "param": pa.string(),  # which attack hyperparameter the grid runs over ('eps', 'c', 'lam'…), null if none
    "value": pa.float64(),  # its value for this row
    "eps": pa.float64(),  # the attack budget when the attack has one (null for CW/DeepFool)
    "attack_params": pa.string(),  # JSON of every attack hyperparameter used for this row
    # metrics
    "n_eval": pa.int64(),
    "clean_accuracy": pa.float64(),
    "adv_accuracy": pa.float64(),
    "success_rate": pa.float64(),  # on inputs the model classified correctly before the attack
    "mean_linf": pa.float64(),  # of successful adversarials
    "mean_l2": pa.float64(),
    "rho": pa.float64(),  # mean ‖η‖₂ / ‖x‖₂ over successful adversarials (paper 002)
    "n_success": pa.float64(),
    "attack_time_s": pa.float64(),
    "train_time_s": pa.float64(),  # 0 when the model came from the cache
    "model_cached": pa.bool_(),
    "trial_time_s": pa.float64(),
    # provenance
    "host": pa.string(),
    "started_at": pa.timestamp("us", tz="UTC"),
    "finished_at": pa.timestamp("us", tz="UTC"),
    "versions": pa.string(),  # JSON: python, torch, ray, polars, pyarrow, robustsweep
    "git_rev": pa.string(),
    "config_json": pa.string(),  # the whole trial config, for exact reproduction
    "schema_version": pa.int64(),
}


def _arrow_type(values: list[Any]) -> pa.DataType:
    vals = [v for v in values if v is not None]
    if not vals:  # typeless: unifies with whatever type another trial's file has for this column
        return pa.null()
    if all(isinstance(v, bool) for v in vals):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return pa.float64()
    if all(isinstance(v, (list, tuple)) for v in vals):
        return pa.list_(pa.float64())
    return pa.string()


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows -> Arrow table with the fixed types for core columns and inferred types for the rest."""
    names: list[str] = list(CORE)
    for r in rows:
        for k in r:
            if k not in CORE and k not in names:
                names.append(k)
    unknown = [k for k in names if k not in CORE and not k.startswith(columns.PREFIXES)]
    if unknown:
        raise KeyError(f"result columns {unknown} are not in store/schema.py (use {'/'.join(columns.PREFIXES)} prefixes)")
    cols = {}
    for k in names:
        vals = [r.get(k) for r in rows]
        typ = CORE.get(k) or _arrow_type(vals)
        if typ == pa.string():
            vals = [None if v is None else str(v) for v in vals]
        else:  # an undefined metric (no successful attack, no correct input) is null, not NaN
            vals = [None if isinstance(v, float) and math.isnan(v) else v for v in vals]
        cols[k] = pa.array(vals, type=typ)
    return pa.table(cols)


def unify(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for a set of result files: the union of their columns (``null`` and ``int64`` promote to the
    other file's type, ``int64`` with ``float64`` to ``float64``), in a canonical order -- ``CORE`` first, then the
    other columns by name -- so a sweep reads with the same column order whether its trials sit in their own files
    or in compacted parts (queries before and after ``compact`` are equal, ``SELECT *`` included)."""
    if not schemas:
        return pa.schema([])
    u = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    names = [n for n in CORE if n in u.names] + sorted(n for n in u.names if n not in CORE)
    return pa.schema([u.field(n) for n in names])


def flatten_config(cfg: dict[str, Any], prefix: str = "cfg") -> dict[str, Any]:
    """``{"model": {"name": "gfz"}}`` -> ``{"cfg.model.name": "gfz"}``; lists become JSON strings."""
    import json

    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v, sort_keys=True, default=str)
        else:
            out[key] = v
    return out
