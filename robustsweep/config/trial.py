"""The typed shape of one concrete trial config, and its human label.

A trial config is what :func:`robustsweep.config.spec.expand` produces and what every later layer receives (Tune,
SLURM array tasks, the store's ``config_json``). It stays a plain JSON-able dict on the wire -- Ray and submitit
pickle it, the store hashes it -- so the type is a ``TypedDict``: the same dict, with its keys documented and
checked by type checkers.
"""
from __future__ import annotations

from typing import Any, TypedDict


class TrialConfig(TypedDict, total=False):
    dataset: dict[str, Any]  # {"name": registry name, **loader options}
    model: dict[str, Any]  # {"name": registry name, **factory options}
    train: dict[str, Any]  # TrainSpec fields
    eval: dict[str, Any]  # {"n_eval": ..., "counterfactual": {...}}
    attacks: list[dict[str, Any]]  # [{"name": ..., one list-valued grid parameter, fixed params}]
    detectors: list[dict[str, Any]]
    seed: int
    config_hash: str  # hash without the seed: groups a config's seeds
    trial_id: str  # hash of everything: the store's key


def trial_label(cfg: TrialConfig | dict[str, Any]) -> str:
    """``gfz dim_z=8 seed=1``: the model and its options, used in progress lines and ``status``."""
    m = cfg.get("model", {})
    extra = " ".join(f"{k}={v}" for k, v in m.items() if k != "name")
    return f"{m.get('name', '?')}{' ' + extra if extra else ''} seed={cfg.get('seed')}"
