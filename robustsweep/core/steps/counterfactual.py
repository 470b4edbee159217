"""``eval.counterfactual``: paper 000's counterfactual speed, one row per method after the attack rows.

The speed is the fewest attack iterations after which accuracy is below the threshold
(:func:`robustsweep.ops.metrics.counterfactual_speed`, from :func:`robustsweep.attacks.speed.accuracy_per_iteration`).
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.ops.metrics import counterfactual_speed
from robustsweep.registry import STEPS
from robustsweep.store import columns as col


@STEPS.register("counterfactual", order=50)
class Counterfactual(Step):
    """Counterfactual-speed rows (``attack = cf-<method>``, ``kind = counterfactual``)."""

    option = "counterfactual"

    def adds_rows(self, ev: Evaluation) -> bool:
        return True

    def rows(self, ev: Evaluation, pts: AttackPoints) -> Iterator[dict[str, Any]]:
        from robustsweep.attacks.speed import accuracy_per_iteration

        cf = ev.options.counterfactual
        assert cf is not None
        for method in cf.methods:
            t0 = time.time()
            accs = accuracy_per_iteration(ev.model, pts.x, pts.y, method=method, eps=cf.eps,
                                          step_size=cf.step_size, max_iter=cf.max_iter)
            speed = counterfactual_speed(accs, cf.threshold, cf.max_iter)
            ev.say(f"counterfactual speed ({method}): {speed['cf_speed']:.0f} iterations")
            yield {**pts.base, "attack": f"cf-{method}", col.KIND: col.COUNTERFACTUAL, "param": "iterations",
                   "value": speed["cf_speed"], "eps": float(cf.eps),
                   "attack_params": json.dumps(cf.model_dump(), sort_keys=True),
                   "adv_accuracy": accs[int(speed["cf_speed"])], "attack_time_s": time.time() - t0,
                   col.metric("cf_speed"): speed["cf_speed"], col.metric("cf_reached"): speed["cf_reached"],
                   col.metric("acc_curve"): accs}
