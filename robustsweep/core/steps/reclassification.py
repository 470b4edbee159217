"""Paper 003 eq. 9 (Table 2): the inputs a detector rejected, reclassified by that detector's ``reclassify``.

Runs for a detector whose ``reclassifies(attack)`` is true for the row's attack (label or registry name); the columns
are those of :func:`robustsweep.core.selective.reclass_columns` on the adversarials and, computed once per detector
and set of attacked points, :func:`~robustsweep.core.selective.clean_reclass_columns` on the clean inputs.
"""
from __future__ import annotations

from typing import Any

from robustsweep.core.craft import GridPoint
from robustsweep.core.points import AttackPoints
from robustsweep.core.selective import clean_reclass_columns, reclass_columns
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.core.steps.detection import ROW_DETECTORS
from robustsweep.registry import STEPS


@STEPS.register("reclassification", order=30)
class Reclassification(Step):
    """Eq. 9 columns (``det.<d>.reclass_*``, ``det.<d>.clean_*``) for detectors that reclassify what they reject."""

    def active(self, ev: Evaluation) -> bool:
        return bool(ev.detectors)

    def columns(self, ev: Evaluation, pts: AttackPoints, point: GridPoint) -> dict[str, Any]:
        if point.goal == "fooling":  # a fooling image has no true label to recover
            return {}
        out: dict[str, Any] = {}
        for dname, (det, _) in point.notes.get(ROW_DETECTORS, {}).items():
            if not (det.reclassifies(point.label) or det.reclassifies(point.name)):
                continue
            key = ("clean_reclass", dname, len(pts))
            if key not in ev.memo:
                ev.memo[key] = clean_reclass_columns(dname, det, ev.model, pts.x, pts.y, pts.correct)
            out.update(ev.memo[key])
            out.update(reclass_columns(dname, det, ev.model, point.x_adv, pts.y, pts.correct, point.success))
        return out
