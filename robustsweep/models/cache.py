"""Trained-model cache: weights stored under a content hash of everything that determines them.

Why: a sweep whose trials differ only in attack, epsilon, alpha or lambda must train each distinct model once,
also when those trials run in parallel processes (Ray workers, SLURM array tasks sharing a file system) and when
a sweep is resumed. So:

- the key (model config, data set + split seed, seed, train config) is hashed as canonical JSON (sha256);
- ``<hash>.pt`` holds the state dict, ``<hash>.json`` its sha256 and the key; both are written atomically
  (temp file in the same folder, fsync, ``os.replace``), the ``.json`` last, so a reader never sees a half entry;
- an entry whose checksum does not match, or that ``torch.load(weights_only=True)``/``load_state_dict`` rejects,
  is reported through ``progress`` and retrained over -- a corrupt cache never fails a trial;
- the whole check/train/write runs under an exclusive ``fcntl.flock`` on ``<hash>.lock``: a second process that
  wants the same model blocks until the first has written it, then loads it.

Everything a model needs after training (thresholds, normalisation statistics) must live in its state dict
(buffers), because only the state dict is cached.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from robustsweep.store.atomic import atomic_write_bytes

Progress = Callable[[str], None]
FORMAT_VERSION = 1
ENV_CACHE_DIR = "ROBUSTSWEEP_MODEL_CACHE"
_default_dir: Path | None = None


def set_default_cache_dir(path: str | os.PathLike | None) -> None:
    """Where models that cache sub-models themselves (fusion backbones) put them; see :func:`default_cache_dir`."""
    global _default_dir
    _default_dir = Path(path) if path is not None else None


def default_cache_dir() -> Path | None:
    """The folder set by :func:`set_default_cache_dir`, else ``$ROBUSTSWEEP_MODEL_CACHE``, else None (no cache)."""
    if _default_dir is not None:
        return _default_dir
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env) if env else None


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if hasattr(o, "item") and callable(o.item):  # numpy / torch scalars
        return o.item()
    raise TypeError(f"cache key value {o!r} of type {type(o).__name__} is not JSON-serialisable")


def canonical_json(key: dict) -> str:
    """Key order, whitespace and tuple-vs-list do not change the text; float repr is Python's shortest."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True)


def key_hash(key: dict) -> str:
    return hashlib.sha256(canonical_json({"v": FORMAT_VERSION, "key": key}).encode()).hexdigest()


@contextmanager
def _locked(lock_path: Path, progress: Progress | None) -> Iterator[None]:
    with open(lock_path, "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(f"waiting for another process that is training this model ({lock_path.stem[:12]})")
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def entry_paths(cache_dir: Path, key: dict) -> tuple[Path, Path, Path]:
    """(weights, metadata, lock) paths of the entry for `key`."""
    h = key_hash(key)
    return cache_dir / f"{h}.pt", cache_dir / f"{h}.json", cache_dir / f"{h}.lock"


def _try_load(model: nn.Module, weights: Path, meta: Path) -> str | None:
    """Load a valid entry into `model`; return None on success or the reason the entry is unusable."""
    if not meta.exists() or not weights.exists():
        return "missing"
    try:
        info = json.loads(meta.read_text())
        data = weights.read_bytes()
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            return "checksum mismatch (truncated or corrupt weights file)"
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as e:  # noqa: BLE001 -- any unreadable entry is retrained, never fatal
        return f"{type(e).__name__}: {e}"
    return None


def save_entry(model: nn.Module, key: dict, cache_dir: Path) -> None:
    """Write the entry (weights, then metadata) atomically; callers hold the entry's lock."""
    weights, meta, _ = entry_paths(cache_dir, key)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    data = buf.getvalue()
    if meta.exists():
        meta.unlink()  # invalidate first: a crash between the two writes leaves "missing", not "mismatched"
    atomic_write_bytes(weights, data)
    info = {"sha256": hashlib.sha256(data).hexdigest(), "key": json.loads(canonical_json(key)),
            "created": time.time(), "torch": torch.__version__}
    atomic_write_bytes(meta, json.dumps(info, indent=1).encode())


def load_or_train(
    key: dict,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], None],
    cache_dir: Path | str | None,
    progress: Progress | None = None,
) -> tuple[nn.Module, bool]:
    """Return (model, loaded_from_cache). ``train`` trains the built model in place (it may move it to a device).

    Without a ``cache_dir`` the model is simply built and trained. A loaded model is on CPU; both paths return
    it in eval mode.
    """
    if cache_dir is None:
        model = build()
        train(model)
        return model.eval(), False
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    weights, meta, lock = entry_paths(cache_dir, key)
    with _locked(lock, progress):
        model = build()
        why = _try_load(model, weights, meta)
        if why is None:
            if progress:
                progress(f"loaded cached model {weights.stem[:12]}")
            return model.eval(), True
        if why != "missing" and progress:
            progress(f"cached model {weights.stem[:12]} unusable ({why}); retraining")
        model = build()  # a failed load_state_dict may have left the first one half-overwritten
        train(model)
        save_entry(model, key, cache_dir)
        return model.eval(), False
