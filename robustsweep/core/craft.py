"""One attack grid point: craft the adversarials of the attacked points and judge them.

An attack entry of an experiment file is a grid (one list-valued parameter, :mod:`robustsweep.config.grid`);
:func:`grid_points` walks it lazily, so a stochastic model's random draws happen in the same order as one
point's crafting, then its row's measurements, then the next point's crafting. What a point is judged by -- success
against the clean label, or against a target (paper 003's ``goal``) -- is decided here, once, because every row
measurement (detection, examples, …) reads the same success mask.

An entry whose registry meta declares ``components`` (AutoAttack) gives one point per component first, labelled
``<label>/<component>`` (``autoattack/apgd-ce``, …) with the cumulative adversarials after that component, then
its own point: each component's row is kept (:func:`_component_points`).
"""
from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from robustsweep.attacks.base import attack_norm, sequence
from robustsweep.config.grid import grid_keys, split_grid
from robustsweep.config.trial import component_label
from robustsweep.core.points import AttackPoints
from robustsweep.core.selective import goal_metrics
from robustsweep.ops.batching import batched, predict
from robustsweep.ops.metrics import attack_metrics
from robustsweep.registry import ATTACKS, Entry
from robustsweep.store import columns as col
from robustsweep.store.schema import flatten_config


@dataclass
class GridPoint:
    """One crafted attack point. ``params`` are the attack's settings as in the file (what the row records), ``call``
    the same with a detector label bound to the trial's fitted detector (what the attack was called with).
    ``zero``: a budget of exactly 0, not run (``x_adv`` is the clean input, ``pred_adv`` the clean prediction).
    ``notes`` lets one step hand what it computed to a later one (the detectors that scored this point)."""

    spec: dict[str, Any]
    entry: Entry
    key: str | None
    value: Any
    params: dict[str, Any]
    call: dict[str, Any]
    zero: bool
    x_adv: torch.Tensor
    pred_adv: torch.Tensor
    attack_time: float
    success: torch.Tensor
    metrics: dict[str, Any]
    target: torch.Tensor | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def label(self) -> str:
        """What the rows call the attack: the entry's ``label`` (tells two entries of one attack apart), else its name."""
        return component_label(self.spec)

    @property
    def goal(self) -> str | None:
        """The registry's ``goal`` ("target": eq. 10, "fooling": eq. 11 of paper 003) or None (the clean label)."""
        return self.entry.meta.get("goal")

    def row(self, pts: AttackPoints) -> dict[str, Any]:
        """The row's own columns: the points' shared ones, what was attacked with what, and the judged metrics."""
        return {
            **pts.base,
            "attack": self.label,
            col.KIND: col.ATTACK,
            "param": self.key,
            "value": None if self.key is None else float(self.value),
            "eps": float(self.params["eps"]) if isinstance(self.params.get("eps"), (int, float)) else None,
            "attack_params": json.dumps(self.params, sort_keys=True),
            **flatten_config(self.params, col.ATTACK_PARAM.rstrip(".")),
            "attack_time_s": self.attack_time,
            # what the report's worst case and sanity checks group by, written here because the report is torch-free
            # and cannot ask the attack registry: the ball's norm (None: no ε-ball) and the threat model
            col.metric("norm"): attack_norm(self.entry, self.params),
            col.metric("threat"): self.entry.meta.get("threat"),
            **self.metrics,
        }

    def progress_line(self, row: dict[str, Any]) -> str:
        shown = "" if self.key is None else f" {self.key}={self.value}"
        m_key, m_name = ("m.target_success", "success (target and accepted)") if self.goal else \
            ("adv_accuracy", "adv_accuracy")  # a fooling image has no clean label, so no adv_accuracy
        what = f"{m_name} " + ("n/a" if row[m_key] is None else f"{row[m_key]:.3f}")
        return f"{self.label}{shown}: {what} ({self.attack_time:.1f}s)"  # label: tells AutoAttack's components apart


def attack_grid(spec: dict[str, Any]) -> tuple[str | None, list[Any], dict[str, Any]]:
    """Split an attack entry into (grid key, grid values, fixed params) -- the rule of :mod:`robustsweep.config.grid`.

    ``detector_aware: {lambda: [...]}`` is the issue's spelling of a λ grid; it is moved to the attack's ordinary
    ``det_lambda`` parameter first, so a λ grid is one list like any other (``param = det_lambda`` in the rows)."""
    fn = ATTACKS.get(spec["name"]).fn
    return split_grid(fn, _lambda_as_param(fn, spec))


def _lambda_as_param(fn: Callable[..., Any], spec: dict[str, Any]) -> dict[str, Any]:
    da = spec.get("detector_aware")
    if not isinstance(da, dict) or "lambda" not in da:
        return spec
    if "det_lambda" in spec:
        raise ValueError(f"attack {spec['name']!r}: give λ once, detector_aware.lambda or det_lambda, not both")
    lam = da["lambda"]
    other = grid_keys(fn, spec)
    if isinstance(lam, list) and other:
        raise ValueError(f"attack {spec['name']!r}: detector_aware.lambda is a grid and so is {', '.join(other)}; "
                         f"only one parameter may be a list (use one attack entry per grid)")
    return {**spec, "detector_aware": {k: v for k, v in da.items() if k != "lambda"}, "det_lambda": lam}


def bind_detector(params: dict[str, Any], detectors: dict[str, Any]) -> dict[str, Any]:
    """The attack's keyword arguments with ``detector_aware.detector`` (a label, as in the experiment file)
    replaced by the trial's fitted detector -- fitted on clean training data before any attack runs, exactly as the
    defender deploys it. Attacks cannot import ``robustsweep.detect`` (it sits above them), so they only ever see
    the object and its ``evasion`` method (:mod:`robustsweep.attacks.adaptive`)."""
    da = params.get("detector_aware")
    if not isinstance(da, dict) or not isinstance(da.get("detector"), str):
        return params
    label = da["detector"]
    if label not in detectors:
        raise ValueError(f"detector_aware.detector = {label!r} is not a detector of this trial; "
                         f"have: {', '.join(detectors) or '(none: add it under detectors:)'}")
    return {**params, "detector_aware": {**da, "detector": detectors[label]}}


def zero_budget(params: dict[str, Any], budget: str | None) -> bool:
    """Whether this attack point has a perturbation budget of exactly 0 (its ball is the clean point)."""
    b = params.get(budget) if budget else None
    return isinstance(b, (int, float)) and not isinstance(b, bool) and float(b) == 0.0


def grid_points(model: torch.nn.Module, pts: AttackPoints, spec: dict[str, Any], detectors: dict[str, Any],
                batch_size: int) -> Iterator[GridPoint]:
    """Craft and judge every grid point of one attack entry, lazily (module docstring).

    Budget 0 (``eps: 0`` of an attack whose registry ``budget`` is ``eps``) is not run: the ball of radius 0 is
    {x}, so the point reuses the clean inputs AND the clean prediction (``attack_time_s = 0``). Why: a stochastic
    model (deep-Bayes logits are K-sample Monte-Carlo estimates) gives a fresh prediction on every call, so predicting
    x again could flip some initially-correct inputs and count them as attack "successes" at ε = 0 -- and the
    minimum-perturbation rule would then credit them with ε = 0. With the reuse, success_rate at ε = 0 is exactly 0
    and adv_accuracy equals clean_accuracy, on any model."""
    entry = ATTACKS.get(spec["name"])
    key, values, fixed = attack_grid(spec)
    x, y = pts.x, pts.y
    for v in values:
        params = dict(fixed) if key is None else {**fixed, key: v}
        t0 = time.time()
        zero = zero_budget(params, entry.meta.get("budget"))
        call = bind_detector(params, detectors)
        point = functools.partial(_judged, model, pts, entry, key, v, params, call, zero, batch_size=batch_size)
        if entry.meta.get("components"):
            yield from _component_points(model, pts, spec, entry, call, zero, batch_size, point)
            continue
        if zero:
            x_adv, pred_adv, attack_time = x, pts.pred_clean, 0.0
        else:
            x_adv = batched(functools.partial(entry.fn, model, **call), x, y, batch_size=batch_size)
            attack_time = time.time() - t0
            pred_adv = predict(model, x_adv, batch_size).to(y.device)
        yield point(spec, x_adv, pred_adv, attack_time)


def _judged(model: torch.nn.Module, pts: AttackPoints, entry: Entry, key: str | None, value: Any,
            params: dict[str, Any], call: dict[str, Any], zero: bool, spec: dict[str, Any], x_adv: torch.Tensor,
            pred_adv: torch.Tensor, attack_time: float, batch_size: int) -> GridPoint:
    """The crafted point judged: against the clean label, or against the entry's ``goal``."""
    x, y = pts.x, pts.y
    goal, target = entry.meta.get("goal"), None
    if goal is None:
        metrics = attack_metrics(x, x_adv, y, pts.pred_clean, pred_adv)
        success = pts.correct & (pred_adv != y)
    else:
        metrics, success, target = goal_metrics(model, goal, entry.fn, params, x, x_adv, y, pts.correct, pred_adv,
                                                batch_size)
    return GridPoint(spec, entry, key, value, params, call, zero, x_adv, pred_adv, attack_time, success, metrics, target)


def _component_points(model: torch.nn.Module, pts: AttackPoints, spec: dict[str, Any], entry: Entry,
                      call: dict[str, Any], zero: bool, batch_size: int,
                      point: Callable[..., GridPoint]) -> Iterator[GridPoint]:
    """An ensemble's grid point (registry ``components``: AutoAttack, :mod:`robustsweep.attacks.autoattack`): one
    point per component, labelled ``<label>/<component>`` and holding the cumulative adversarials after it
    (:func:`~robustsweep.attacks.base.sequence`: the attack's own bookkeeping), then the entry's own point, equal to
    the last. Crafted lazily, component by component, each batched like any attack; at budget 0 all are clean."""
    comps = entry.meta["components"](call)
    x, y = pts.x, pts.y
    pred = pts.pred_clean.to(y.device)
    if zero:
        stages = ((c.label, x, pred, 0.0) for c in comps)
    else:
        stages = sequence(comps, x, y, pred,
                          lambda c, xs, ys: batched(functools.partial(c.fn, model, **c.params), xs, ys,
                                                    batch_size=batch_size),
                          lambda xa: predict(model, xa, batch_size))
    last = (x, pred, 0.0)
    for label, x_adv, pred_adv, seconds in stages:
        last = (x_adv, pred_adv, seconds)
        yield point({**spec, "label": f"{component_label(spec)}/{label}"}, *last)
    yield point(spec, *last)
