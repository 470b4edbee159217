"""Pre-flight: what must hold before a sweep is launched or submitted, checked on this machine in one pass.

Why: a data set that is not staged, a pretrained-weights file that is not there, or a results folder that cannot be
written used to surface per trial after launch -- on SLURM after the job waited in the queue. Every problem found
here is one line of a single exit-2 :class:`PreflightError` (with the loaders' own staging instructions), raised
before any folder is created, Ray is started or a job is submitted.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from robustsweep.errors import UsageError

#: component parameters that name a file to load (a string with a path separator or a weights suffix; plain names
#: such as torchvision's "IMAGENET1K_V1" are not files)
WEIGHT_KEYS = ("weights", "pretrained", "checkpoint", "init_from")
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".npz")


class PreflightError(UsageError):
    """The sweep cannot run here as it is; the message lists each problem and how to fix it. Nothing was started."""


def _writable_problem(folder: str | Path, what: str) -> str | None:
    """Whether files can be created in ``folder`` (or, when it does not exist yet, in its nearest existing
    ancestor), judged with ``access(2)`` so nothing is written; ``access`` also says no on a read-only mount."""
    p = Path(folder).expanduser().absolute()
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{what} {p}: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        why = "is read-only or not writable" if probe == p else f"cannot be created ({probe} is not writable)"
        return f"{what} {p} {why}; pick another folder (--results / --cache-dir) or fix its permissions"
    return None


def _weight_paths(trial: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, path) of every file a trial's components name as weights to load."""
    out = []
    comps = [("dataset", trial.get("dataset")), ("model", trial.get("model")),
             *[(f"attacks.{i}", c) for i, c in enumerate(trial.get("attacks") or [])],
             *[(f"detectors.{i}", c) for i, c in enumerate(trial.get("detectors") or [])]]
    for where, comp in comps:
        for k, v in (comp or {}).items():
            named = k in WEIGHT_KEYS or k.endswith(("_path", "_weights", "_checkpoint"))
            if named and isinstance(v, str) and ("/" in v or v.endswith(WEIGHT_SUFFIXES)):
                out.append((f"{where}.{k}", v))
    return out


def _imagenet_problem(model: dict[str, Any]) -> str | None:
    """``weights: imagenet`` / ``backbone_weights: imagenet`` names torchvision's staged file: is it there?"""
    for key in ("weights", "backbone_weights"):
        if model.get(key) == "imagenet":
            from robustsweep.models.pretrained import resolve_weights  # imports torch only on this rare path

            try:
                resolve_weights(model.get("backbone", model.get("name")), "imagenet")
            except UsageError as e:
                return f"model.{key}: {e}"
    return None


def preflight_problems(trials: list[dict[str, Any]], results: str | Path, *, data_root: str | None = None,
                       cache_dir: str | None = None) -> list[str]:
    """Every reason the trials cannot run here: unstaged data sets, missing weight files, unwritable folders."""
    from robustsweep.data import staging_error

    problems: list[str] = []
    seen: set[str] = set()
    for t in trials:
        ds = dict(t["dataset"])
        key = json.dumps(ds, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        name = ds.pop("name")
        if (e := staging_error(name, data_root, **ds)) is not None and str(e) not in problems:
            problems.append(str(e))
    for t in trials:
        if (line := _imagenet_problem(t.get("model") or {})) is not None and line not in problems:
            problems.append(line)
        for where, path in _weight_paths(t):
            line = f"{where}: weights file {path} does not exist (stage it where every node can read it)"
            if not Path(path).expanduser().is_file() and line not in problems:
                problems.append(line)
    for folder, what in ((results, "results folder"), (cache_dir, "model cache")):
        if folder is not None and (p := _writable_problem(folder, what)) is not None:
            problems.append(p)
    return problems


def preflight(trials: list[dict[str, Any]], results: str | Path, *, data_root: str | None = None,
              cache_dir: str | None = None) -> None:
    """Raise :class:`PreflightError` listing every problem of :func:`preflight_problems`; nothing is written."""
    problems = preflight_problems(trials, results, data_root=data_root, cache_dir=cache_dir)
    if problems:
        head = f"pre-flight check failed ({len(problems)} problem(s)); nothing was started"
        raise PreflightError(head + ":\n" + "\n".join(f"- {p}" for p in problems))
