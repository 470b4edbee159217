"""The one check that a path the tool writes stays inside the folder it was given (``--results``, the model cache,
the data root), and that a sweep or trial name can only ever name one folder / file inside it.

Why: a sweep name becomes a folder (``<results>/<name>``), a trial id a file name, and both can come from a user's
experiment file, ``--name``, ``--set name=…`` or a ``sweep.json`` read back from disk. ``name: ../../etc`` once wrote
its sweep folder into the results folder's grandparent. Names are restricted where they enter
(:func:`robustsweep.config.domains.name_violation`); this module re-checks the resolved path where folders and files
are created, so a symlink or a name that slipped past cannot lead a write elsewhere either.
"""
from __future__ import annotations

from pathlib import Path

from robustsweep.config.domains import name_violation
from robustsweep.errors import UsageError


class OutsideRoot(UsageError):
    """A path the tool was about to write resolves outside the folder it belongs in; nothing was written."""


def ensure_inside(path: str | Path, root: str | Path, what: str = "path") -> Path:
    """``path`` resolved (symlinks followed), after checking it lies inside ``root`` (also resolved); else
    :class:`OutsideRoot` naming both."""
    p = Path(path).expanduser().resolve()
    r = Path(root).expanduser().resolve()
    if p != r and r not in p.parents:
        raise OutsideRoot(f"{what} {p} resolves outside {r}; refusing to write there")
    return p


def check_name(name: object, key: str) -> str:
    """``name`` if it is a valid sweep / trial name, else a :class:`UsageError` naming ``key`` (where it came from:
    ``name``, ``--name``, ``sweep.json`` …)."""
    if (msg := name_violation(key, name)) is not None:
        raise UsageError(msg)
    return str(name)
