"""Data-set registry: every loader module registers itself on import; :func:`load_dataset` is the one entry point.

Loaders are plain functions ``(root, seed, **options) -> DataSplit`` registered in
:data:`robustsweep.registry.DATASETS`; ``robustsweep list`` prints them with their one-line docstrings, and the
spec validator reads their keyword options (``DATASETS.settable_params(name)``).

Every loader returns a :class:`DataSplit` with train / validation / test parts. The validation part is held out of
the training data with the option ``val_size`` (a count of examples; default 0, i.e. empty, so existing experiments
get exactly the splits they always had) -- except ``mnist5k``, which holds out 500 by default.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..registry import DATASETS, import_submodules
from .base import DataNotStagedError, DataSplit, not_staged
from .rings import RingGeometry, two_rings_geometry

import_submodules(__name__, __path__, skip=("base",))  # every loader registers itself: a new data set is one file

ENV_VAR = "ROBUSTSWEEP_DATA"

__all__ = [
    "ENV_VAR", "DataNotStagedError", "DataSplit", "RingGeometry", "default_data_root", "load_dataset", "not_staged",
    "staging_error", "two_rings_geometry",
]


def default_data_root(root: str | Path | None = None) -> Path:
    """Where staged data live: ``root`` if given, else $ROBUSTSWEEP_DATA, else ~/.cache/robustsweep/data.

    The environment variable lets a cluster point every job at a shared, pre-staged folder without touching specs.
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "robustsweep" / "data"


def load_dataset(name: str, root: str | Path | None = None, seed: int = 0, **opts: Any) -> DataSplit:
    """Load data set ``name`` with its options; unknown option names fail before anything is read."""
    allowed = DATASETS.settable_params(name)  # KeyError listing the known names if ``name`` is unknown
    bad = sorted(set(opts) - set(allowed))
    if bad:
        raise TypeError(
            f"dataset {name!r} has no option(s) {', '.join(map(repr, bad))}; "
            f"allowed: {', '.join(allowed) if allowed else '(none)'}"
        )
    return DATASETS.get(name).fn(root=default_data_root(root), seed=int(seed), **opts)


def staging_error(name: str, root: str | Path | None = None, **opts: Any) -> Exception | None:
    """Why data set ``name`` (with its options) could not be loaded here, or None: the loader's own
    :class:`DataNotStagedError` text, found with ``stat`` calls only (registry meta ``check_staged``), so a sweep is
    refused before launch instead of failing in every trial. ``download: true`` is trusted (the node may reach the
    internet); a data set without the hook (bundled ones) is always there."""
    check = DATASETS.get(name).meta.get("check_staged")
    if check is None or opts.get("download"):
        return None
    return check(default_data_root(root), **{k: v for k, v in opts.items() if k != "download"})
