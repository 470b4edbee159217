"""Evaluation steps register themselves on import (one file each); :func:`active_steps` lists a run's steps in order.

See :mod:`robustsweep.core.steps.base` for what a step is and when each hook runs.
"""
from __future__ import annotations

from robustsweep.core.steps.base import Evaluation, Step, TrialEnv
from robustsweep.registry import STEPS, import_submodules

import_submodules(__name__, __path__, skip=("base",))

__all__ = ["Evaluation", "Step", "TrialEnv", "active_steps"]


def active_steps(ev: Evaluation) -> list[Step]:
    """The registered steps that apply to ``ev``, in their registered ``order`` (ties: by name)."""
    steps = sorted(STEPS.entries(), key=lambda e: (e.meta.get("order", 100), e.name))
    made = [e.fn() for e in steps]
    return [s for s in made if s.active(ev)]
