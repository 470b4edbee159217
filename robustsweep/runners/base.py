"""The one interface every backend implements, so the command line never branches on ``if backend == ...``.

A backend takes the trials of a sweep that still need running and either runs them to the end (``local``: Ray
Tune on this machine or a given Ray address) or hands them to a scheduler and returns at once (``slurm``). Both
answer with an :class:`Outcome`; what happens to a single trial is the same everywhere
(:func:`robustsweep.core.trial.run_logged`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class RunSummary:
    """What a finished run did: counts, the failed trials' errors, wall time."""

    total: int
    ok: int
    failed: int
    errors: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


@dataclass
class Outcome:
    """``summary`` when the backend ran the trials here; ``job`` (a :class:`robustsweep.sweep.jobs.JobRecord`)
    when it submitted them; neither when there was nothing to do."""

    summary: RunSummary | None = None
    job: Any = None


class Backend(Protocol):
    name: str

    def run(self, sweep: Any, trials: list[dict[str, Any]], runtime: Any, *, restart_errored: bool = False,
            command: str = "run") -> Outcome:
        """Run (or submit) ``trials`` of ``sweep`` with ``runtime``; ``command`` is recorded with a submission."""
        ...
