"""A trial's identity: the one rule that turns its config into ``trial_id`` and ``config_hash``.

The rule (identity version :data:`ID_VERSION`, recorded in ``sweep.json``):

1. A trial's identity is its wire dict -- the plain dict every runner pickles and every row stores as
   ``config_json`` -- hashed as canonical JSON (sorted keys, compact separators), SHA-256, first 16 hex digits.
   ``trial_id`` covers everything; ``config_hash`` leaves the seed out, so it groups a config's seeds.
2. The typed sections of that dict (``train``, ``eval`` and their sub-sections, all :class:`Section`) dump every
   field, except a field marked :data:`ADDED` while it is at its default. A field added after the first release is
   marked ``ADDED`` when it is added, so every trial id of every existing sweep stays what it was -- no per-field
   workaround (a custom serializer, an ``if value != DEFAULT`` in the dump) is needed for the next one.
3. A value a ``search:`` dimension sets lands in the dict as written (``train.adversarial: {grid: [null, …]}``
   keeps its explicit ``null``): what the user named is part of the identity.

A field that was hashed at its default before this rule existed (``eval.n_eval``, ``train.epochs``,
``eval.examples.labels`` …) is not marked and stays hashed. Changing the rule itself (not adding a field) would
change ids: bump :data:`ID_VERSION` then, so a sweep can tell which rule its ids were made by.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, model_serializer

#: version of the identity rule above; ``sweep.json`` records the version its trial ids were made by
ID_VERSION = 1

#: the keys identity adds to a trial config (never part of what is hashed)
ID_KEYS = ("trial_id", "config_hash")


class Added:
    """Marker in a field's ``Annotated`` metadata: the field came after the first release (see the module rule)."""

    def __repr__(self) -> str:
        return "ADDED"


ADDED = Added()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(cfg: dict[str, Any], exclude: tuple[str, ...] = ID_KEYS) -> str:
    """Stable 16-hex-digit identity of a config (key order and float formatting independent)."""
    body = {k: v for k, v in cfg.items() if k not in exclude}
    return hashlib.sha256(_canonical(body).encode()).hexdigest()[:16]


def with_identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` (not copied) with ``config_hash`` (seed left out) and then ``trial_id`` (everything) set."""
    cfg["config_hash"] = config_hash(cfg, exclude=(*ID_KEYS, "seed"))
    cfg["trial_id"] = config_hash(cfg)
    return cfg


def is_added(model: type[BaseModel], name: str) -> bool:
    """Whether field ``name`` of ``model`` is marked :data:`ADDED`."""
    return any(isinstance(m, Added) for m in model.model_fields[name].metadata)


class Section(BaseModel):
    """A typed, frozen section of a trial config whose dump is its identity (rule 2 of the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _identity_dump(self, handler: Any) -> Any:
        out = handler(self)
        if isinstance(out, dict):
            fields = type(self).model_fields
            for name in [n for n in out if n in fields and is_added(type(self), n)]:
                if getattr(self, name) == fields[name].get_default(call_default_factory=True):
                    del out[name]
        return out
