"""Where and how fast a trial runs -- never what it computes -- and the one place that builds it from a sweep.

Kept free of torch so that the command line, the sweep layer and the runners can build and pass it around on a
login node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Runtime:
    """Settings that change where/how fast a trial runs, never its results (so they are not in the hash)."""

    results: str
    sweep: str
    data_root: str | None = None
    cache_dir: str | None = None  # None = <results>/.model-cache
    device: str = "auto"
    eval_batch_size: int = 500
    threads: int | None = None
    # `resume --restart-errored`: a trial's training ignores (and deletes) its training checkpoint and starts from
    # epoch 0. Not a result setting either: training continued from a checkpoint ends with the same weights
    fresh_training: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def runtime_for(sweep: Any, *, data_root: str | None = None, cache_dir: str | None = None,
                device: str | None = None) -> Runtime:
    """The runtime of ``sweep`` (a :class:`robustsweep.sweep.folder.Sweep`): command-line settings win over the
    experiment file's ``eval.device`` / ``eval.batch_size``."""
    return Runtime(results=str(sweep.results), sweep=sweep.name, data_root=data_root, cache_dir=cache_dir,
                   device=device or sweep.spec.eval.device, eval_batch_size=sweep.spec.eval.batch_size)
