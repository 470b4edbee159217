"""Evaluate one trained model: clean accuracy, then every attack over its whole grid, then the detectors.

The expensive part of a trial (training) happens once; this module sweeps the cheap parts (attack, ε, c, λ, α) on
that one model. Attacks run batched over the evaluation set (``batch_size`` is only a memory knob).

Two opt-ins change what an attack row measures (paper 003, :mod:`robustsweep.attacks.gmm_vae` and
:mod:`robustsweep.detect.tau`):

- an attack registered with ``goal="target"`` (eq. 10) or ``goal="fooling"`` (eq. 11) is scored against its
  target class, not the clean label: :func:`robustsweep.core.selective.goal_metrics`;
- a detector whose ``reclassifies(attack)`` is true gets the inputs it rejected reclassified by its ``reclassify``
  (eq. 9, Table 2): :func:`robustsweep.core.selective.reclass_columns`.
"""
from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from robustsweep.config.grid import grid_keys, split_grid
from robustsweep.core import examples as ex
from robustsweep.core.selective import clean_reclass_columns, goal_metrics, reclass_columns
from robustsweep.ops.batching import batched, model_device, predict
from robustsweep.ops.metrics import (
    attack_metrics,
    counterfactual_speed,
    mean_minimum_perturbation,
)
from robustsweep.registry import ATTACKS


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


def _bind_detector(params: dict[str, Any], detectors: dict[str, Any]) -> dict[str, Any]:
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


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: list[dict[str, Any]],
    detectors: dict[str, Any] | None = None,
    batch_size: int = 500,
    progress: Callable[[str], None] | None = None,
    counterfactual: dict[str, Any] | None = None,
    examples: dict[str, Any] | None = None,
    calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one metrics row per (attack, grid value). ``x``/``y`` must already be on the model's device.

    An ε grid of two or more values also gets ``m.min_perturbation``: the mean over initially-correct inputs of
    the smallest ε that fooled each one, max(ε)+0.1 when none did (paper 001, footnote 4), on every row of that
    attack. ``counterfactual`` adds one row per method with the counterfactual speed of paper 000. ``examples``
    (``eval.examples``) adds the ``ex.*`` image columns of :mod:`robustsweep.core.examples` to every row.

    ``calibration`` (clean held-out inputs and labels, never test data) is where a detector whose ``per_attack``
    covers the attack (paper 004's energy threshold) is refitted for every attack point: the point's attack, with
    its settings, crafts adversarials of those inputs and the detector's ``refitted`` copy scores the row
    (:func:`_row_detectors`); ``det.<d>.fit_adv`` names the attack a row's threshold was fitted on and
    ``det.<d>.refit`` says whether it is this point's own threshold (else the trial's fit).

    Budget 0 (``eps: 0`` of an attack whose registry ``budget`` is ``eps``) is not run: the ball of radius 0 is
    {x}, so the row reuses the clean inputs AND the clean prediction (``x_adv = x``, ``pred_adv = pred_clean``,
    ``attack_time_s = 0``). Why: a stochastic model (deep-Bayes logits are K-sample Monte-Carlo estimates) gives a
    fresh prediction on every call, so predicting x again could flip some initially-correct inputs and count them
    as attack "successes" at ε = 0 -- and the minimum-perturbation rule would then credit them with ε = 0. With
    the reuse, success_rate at ε = 0 is exactly 0 and adv_accuracy equals clean_accuracy, on any model."""
    detectors = detectors or {}
    ex_idx = ex.example_indices(y, examples) if examples else None
    if ex_idx is not None and (order := ex.examples_first(ex_idx, len(x), _prefix_sizes(attacks))) is not None:
        x, y, ex_idx = x[order.to(x.device)], y[order.to(y.device)], torch.arange(len(ex_idx))
    pred_clean = predict(model, x, batch_size).to(y.device)
    clean_acc = (pred_clean == y).float().mean().item()
    base = {"n_eval": len(x), "clean_accuracy": clean_acc}
    if examples:
        base |= ex.trial_columns(model, x, y, pred_clean, examples, ex_idx)
    if not attacks and not counterfactual:  # clean only: each detector's rejection of the clean inputs (its FPR)
        with ex.forked_rng(model_device(model)):
            fpr = {f"det.{d}.fpr": float(det.reject(model, x).float().mean()) for d, det in detectors.items()}
        yield {**base, "attack": "none", **fpr}
        return
    correct = pred_clean == y
    # per (detector, attacked points): eq. 9 on the rejected clean inputs, computed once
    clean_reclass: dict[tuple[str, int], dict[str, Any]] = {}
    all_points = (x, y, pred_clean, correct, base, ex_idx)
    for spec in attacks:
        name = spec["name"]
        entry = ATTACKS.get(name)
        fn, budget, goal = entry.fn, entry.meta.get("budget"), entry.meta.get("goal")
        key, values, fixed = attack_grid(spec)
        x, y, pred_clean, correct, base, ex_idx = _first_points(all_points, spec.get("n_eval"))
        rows, successes = [], []
        for v in values:
            params = dict(fixed) if key is None else {**fixed, key: v}
            t0 = time.time()
            zero = _zero_budget(params, budget)
            call = _bind_detector(params, detectors)
            if zero:  # ε = 0: the clean point and the clean prediction (see docstring)
                x_adv, pred_adv = x, pred_clean
                attack_time = 0.0
            else:
                x_adv = batched(functools.partial(fn, model, **call), x, y, batch_size=batch_size)
                attack_time = time.time() - t0
                pred_adv = predict(model, x_adv, batch_size).to(y.device)
            label = spec.get("label") or name  # a label tells two entries of one attack apart
            target = None
            if goal is None:
                metrics, success = attack_metrics(x, x_adv, y, pred_clean, pred_adv), correct & (pred_adv != y)
            else:
                metrics, success, target = goal_metrics(model, goal, fn, params, x, x_adv, y, correct, pred_adv,
                                                         batch_size)
            row = {
                **base,
                "attack": label,
                "param": key,
                "value": None if key is None else float(v),
                "eps": float(params["eps"]) if isinstance(params.get("eps"), (int, float)) else None,
                "attack_params": json.dumps(params, sort_keys=True),
                "attack_time_s": attack_time,
                **metrics,
            }
            if examples and ex_idx is not None:
                row |= ex.row_columns(model, x_adv, pred_adv, examples, target, ex_idx)
            successes.append(success)
            row_dets = _row_detectors(detectors, model, fn, call, None if zero else calibration, batch_size,
                                      (label, name))
            for dname, (det, fit_adv) in row_dets.items():
                row[f"det.{dname}.fit_split"] = getattr(det, "fit_split", None)
                row[f"det.{dname}.fit_adv"] = fit_adv
                row[f"det.{dname}.refit"] = det is not detectors[dname]  # this point's own threshold
                row[f"det.{dname}.threshold"] = _num_or_none(getattr(det, "threshold", None))
                # a fooling image has no clean counterpart: the joint fool-and-evade columns would be meaningless
                row.update(_detection_columns(dname, det, model, x, x_adv, success,
                                              None if goal == "fooling" else correct,
                                              None if goal else pred_adv.to(y.device) == y))
                reclass = getattr(det, "reclassifies", None)
                if goal != "fooling" and callable(reclass) and (reclass(label) or reclass(name)):
                    if (dname, len(x)) not in clean_reclass:
                        clean_reclass[dname, len(x)] = clean_reclass_columns(dname, det, model, x, y, correct)
                    row.update(clean_reclass[dname, len(x)])
                    row.update(reclass_columns(dname, det, model, x_adv, y, correct, success))
            if progress:
                shown = "" if key is None else f" {key}={v}"
                m_key, m_name = ("m.target_success", "success (target and accepted)") if goal else \
                    ("adv_accuracy", "adv_accuracy")  # a fooling image has no clean label, so no adv_accuracy
                what = f"{m_name} " + ("n/a" if row[m_key] is None else f"{row[m_key]:.3f}")
                progress(f"{name}{shown}: {what} ({attack_time:.1f}s)")
            rows.append(row)
        if key == "eps" and len(values) > 1:
            mmp = mean_minimum_perturbation(values, torch.stack(successes), mask=correct)
            for r in rows:
                r["m.min_perturbation"] = mmp
        yield from rows
    if counterfactual:
        x, y, _, _, base, _ = all_points
        yield from _counterfactual_rows(model, x, y, base, counterfactual, progress)


def _prefix_sizes(attacks: list[dict[str, Any]]) -> list[int]:
    """The attack entries' own ``n_eval`` (the prefixes :func:`_first_points` cuts), where set."""
    return [int(spec["n_eval"]) for spec in attacks if spec.get("n_eval") is not None]


def _first_points(points: tuple, n: int | None) -> tuple:
    """The trial's attacked points, or for an attack entry with ``n_eval: n`` (config/grid.py ATTACK_META) their
    first ``n`` -- a prefix of the same seeded subset, so its rows compare with the other attacks' on the same
    images. Its rows say so: ``n_eval`` = n and ``clean_accuracy`` of those n points (the row's success and
    accuracy are fractions of them). Its ``ex.*`` columns hold the kept examples among the n
    (:func:`~robustsweep.core.examples.within_prefix`); none among them: the trial's, without images of the row."""
    x, y, pred_clean, correct, base, ex_idx = points
    if n is None or int(n) >= len(x):
        return points
    n = int(n)
    sub_base = {**base, "n_eval": n, "clean_accuracy": correct[:n].float().mean().item()}
    keep_ex = None
    if ex_idx is not None and len(ex_idx):
        sub_base, keep_ex = ex.within_prefix(sub_base, ex_idx, n)
    return x[:n], y[:n], pred_clean[:n], correct[:n], sub_base, keep_ex


def _row_detectors(detectors: dict[str, Any], model: torch.nn.Module, fn: Callable[..., Any],
                   call: dict[str, Any], calibration: tuple[torch.Tensor, torch.Tensor] | None, batch_size: int,
                   names: tuple[str, str]) -> dict[str, tuple[Any, str | None]]:
    """The detector that scores one attack point, and the attack its threshold was fitted on: a detector whose
    ``refits(label, name)`` is true for this attack (``per_attack``) is refitted -- a copy: the trial's fitted
    detector, which detector-aware attacks see, is unchanged -- on this point's adversarials of the held-out
    ``calibration`` inputs (None: no refit, e.g. at ε = 0); the others are the trial's as fitted. The held-out
    adversarials are crafted once per point, whatever the number of such detectors, under a forked RNG."""
    out: dict[str, tuple[Any, str | None]] = {}
    x_cal_adv = None
    for name, det in detectors.items():
        refits = getattr(det, "refits", None)
        if calibration is not None and callable(refits) and refits(*names):
            xc, yc = calibration
            with ex.forked_rng(model_device(model)):  # the trial's later rows draw what they draw without refits
                if x_cal_adv is None:
                    x_cal_adv = batched(functools.partial(fn, model, **call), xc, yc, batch_size=batch_size)
                out[name] = (det.refitted(model, xc, yc, x_cal_adv), names[0])
        else:
            out[name] = (det, getattr(det, "fit_attack", None) if getattr(det, "rule", None) != "fpr" else None)
    return out


def _num_or_none(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _zero_budget(params: dict[str, Any], budget: str | None) -> bool:
    """Whether this attack point has a perturbation budget of exactly 0 (its ball is the clean point)."""
    b = params.get(budget) if budget else None
    return isinstance(b, (int, float)) and not isinstance(b, bool) and float(b) == 0.0


def _counterfactual_rows(model, x, y, base, cf: dict[str, Any], progress) -> Iterator[dict[str, Any]]:
    from robustsweep.attacks.speed import accuracy_per_iteration

    for method in cf["methods"]:
        t0 = time.time()
        accs = accuracy_per_iteration(model, x, y, method=method, eps=cf["eps"], step_size=cf["step_size"],
                                      max_iter=cf["max_iter"])
        speed = counterfactual_speed(accs, cf["threshold"], cf["max_iter"])
        if progress:
            progress(f"counterfactual speed ({method}): {speed['cf_speed']:.0f} iterations")
        yield {**base, "attack": f"cf-{method}", "param": "iterations", "value": speed["cf_speed"],
               "eps": float(cf["eps"]), "attack_params": json.dumps(cf, sort_keys=True),
               "adv_accuracy": accs[int(speed["cf_speed"])], "attack_time_s": time.time() - t0,
               "m.cf_speed": speed["cf_speed"], "m.cf_reached": speed["cf_reached"], "m.acc_curve": accs}


def _detection_columns(name: str, det: Any, model: torch.nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                       success: torch.Tensor, correct: torch.Tensor | None = None,
                       adv_correct: torch.Tensor | None = None) -> dict[str, Any]:
    """``det.<name>.*`` columns of one attack point. A detector with ``class_averaged`` set (per-class α, paper 001's
    public code) reports ``tpr``/``fpr`` averaged over the classes whose thresholds were used (each successful
    adversarial / clean input goes to its predicted class; classes without inputs are skipped, as in the public
    code), and the pooled rates as ``tpr_pooled``/``fpr_pooled``; ROC and AUC are unchanged.

    With ``correct`` (clean prediction == label) the joint fool-and-evade columns are added
    (:func:`robustsweep.ops.metrics.detection_metrics`): ``attacker_success`` at the detector's fitted threshold,
    ``attacker_success_fpr1|5|10`` at thresholds recomputed for 1/5/10 % false positives on the detector's
    ``calibration_scores`` (its clean FIT data's scores, which every registered detector keeps) or, for a detector
    without them, on the clean test inputs' scores; and ``fpr_correct``/``fpr_wrong``. These are pooled over
    classes even for a class-averaged detector."""
    from robustsweep.ops.metrics import detection_metrics

    cal = getattr(det, "calibration_scores", None)
    if getattr(det, "class_averaged", False) and hasattr(det, "score_and_class"):
        rec = _ClassRecorder(det)
        out = detection_metrics(rec, model, x, x_adv, success, correct, cal, adv_correct)
        out.update(_class_averaged_rates(rec, det, model, x, x_adv, success))
    else:
        out = detection_metrics(det, model, x, x_adv, success, correct, cal, adv_correct)
    cols = {}
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, float) and math.isnan(v):
            v = None
        cols[f"det.{name}.{k}"] = v
    return cols


class _ClassRecorder:
    """Hands a per-class detector to ``detection_metrics`` and keeps, for every ``score`` call, the class each score
    was thresholded with -- so class-averaged rates come from the very draw (stochastic models) the pooled rates,
    ROC and AUC come from, without scoring twice."""

    def __init__(self, det: Any):
        self.det = det
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (input, score, class)

    @property
    def threshold(self) -> float:
        return self.det.threshold

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        s, c = self.det.score_and_class(model, x)
        self.calls.append((x, s, c))
        return s

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.score(model, x) > self.threshold


def _class_mean(rejected: torch.Tensor, cls: torch.Tensor) -> float:
    rates = [rejected[cls == k].float().mean().item() for k in torch.unique(cls).tolist()]
    return sum(rates) / len(rates) if rates else math.nan


def _class_averaged_rates(rec: _ClassRecorder, det: Any, model: torch.nn.Module, x: torch.Tensor,
                          x_adv: torch.Tensor, success: torch.Tensor) -> dict[str, float]:
    success = torch.as_tensor(success).bool().to(x_adv.device)
    n_pos = int(success.sum())
    clean = next(((s, c) for xi, s, c in rec.calls if xi is x), None)
    pos = next(((s, c) for xi, s, c in rec.calls if xi is not x and len(xi) == n_pos), None)
    if clean is None:  # not scored through the recorder as expected: one fresh pass
        clean = det.score_and_class(model, x)
    if pos is None and n_pos:
        pos = det.score_and_class(model, x_adv[success])
    thr = det.threshold
    out = {"fpr_pooled": _nan_mean(clean[0] > thr), "fpr": _class_mean((clean[0] > thr).cpu(), clean[1].cpu())}
    if n_pos:
        out |= {"tpr_pooled": _nan_mean(pos[0] > thr), "tpr": _class_mean((pos[0] > thr).cpu(), pos[1].cpu())}
    else:
        out |= {"tpr_pooled": math.nan, "tpr": math.nan}
    return out


def _nan_mean(t: torch.Tensor) -> float:
    return t.float().mean().item() if t.numel() else math.nan
