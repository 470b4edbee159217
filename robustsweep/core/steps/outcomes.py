"""Per-example outcomes of every attack point, and the worst case over attacks built from them.

Why keep them: a row's ``adv_accuracy`` is an average, and robust accuracy as a reviewer reads it (Carlini et al.
2019; Croce & Hein 2020) is a per-example worst case -- an example is robust only if *every* attack at that norm
and budget left it correctly classified. That can be computed only from per-example outcomes, so each trial keeps
them (``outcomes/<trial_id>.parquet``, :mod:`robustsweep.store.outcomes`, schema in the README): for every attack
point and attacked example its index in the test split, label, clean and adversarial prediction, whether it was
fooled, its perturbation's L∞ / L2 size and each detector's score and rejection (the very draws the row's detection
columns come from).

The worst-case rows (``kind = worst_case``, ``attack = worst-case``) are added per (norm, ε) where two or more
attacks ran at that budget, on the points every one of them attacked (an entry with its own ``n_eval`` attacks a
prefix): ``adv_accuracy`` = fraction of points every attack left correct; ``success_rate`` = fraction of the
initially-correct points some attack fooled; per detector ``det.<d>.attacker_success`` = fraction of the
initially-correct points some attack fooled *and* got past the detector (the joint columns' definition, taken
over attacks). A white-box, score-based or transfer attack all count: the worst case is over what the attacker
could have done. Attacks with a target (paper 003's ``goal``) are left out -- their success is not misclassification.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from robustsweep.attacks.base import attack_norm
from robustsweep.core.craft import GridPoint
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.core.steps.detection import PER_EXAMPLE
from robustsweep.ops.metrics import perturbation_norms
from robustsweep.registry import STEPS
from robustsweep.store import columns as col

_MEMO = "outcomes"  # memo key: the per-point records, in row order
WORST_LABEL = "worst-case"


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


@STEPS.register("outcomes", order=80)
class Outcomes(Step):
    """Keeps every attack point's per-example outcomes and adds the worst case over attacks (module docstring)."""

    option = "outcomes"

    def columns(self, ev: Evaluation, pts: AttackPoints, point: GridPoint) -> dict[str, Any]:
        linf, l2 = perturbation_norms(pts.x, point.x_adv)
        rec: dict[str, Any] = {
            "attack": point.label, "param": point.key,
            "value": None if point.key is None else float(point.value),
            "eps": float(point.params["eps"]) if isinstance(point.params.get("eps"), (int, float)) else None,
            "norm": attack_norm(point.entry, point.params), "goal": point.goal,
            "index": _np(pts.test_index).astype(np.int64),
            "label": _np(pts.y).astype(np.int64),
            "pred_clean": _np(pts.pred_clean).astype(np.int64),
            "pred_adv": _np(point.pred_adv).astype(np.int64),
            "fooled": _np(point.success).astype(bool),
            "linf": _np(linf).astype(np.float32), "l2": _np(l2).astype(np.float32),
            "target": None if point.target is None else _np(point.target).astype(np.int64),
            "detectors": {d: {"score": _np(o["score_adv"]).astype(np.float32), "reject": _np(o["reject_adv"])}
                          for d, o in point.notes.get(PER_EXAMPLE, {}).items() if "score_adv" in o},
        }
        ev.memo.setdefault(_MEMO, []).append(rec)
        return {}

    def rows(self, ev: Evaluation, pts: AttackPoints) -> list[dict[str, Any]]:
        return worst_case_rows(ev.memo.get(_MEMO, []), pts)

    def artifacts(self, ev: Evaluation) -> dict[str, dict[str, Any]]:
        recs = ev.memo.get(_MEMO, [])
        return {"outcomes": outcome_columns(recs)} if recs else {}


def outcome_columns(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """The records as one long table (one entry per attack point × example), as plain numpy columns; a detector a
    point did not score is NaN / null there. ``point`` numbers the attack points in row order."""
    n = [len(r["index"]) for r in recs]
    dets = list(dict.fromkeys(d for r in recs for d in r["detectors"]))

    def rep(key: str) -> list[Any]:
        return [r[key] for r, k in zip(recs, n) for _ in range(k)]

    out: dict[str, Any] = {
        "point": np.repeat(np.arange(len(recs), dtype=np.int32), n),
        "attack": rep("attack"), "param": rep("param"), "value": rep("value"), "eps": rep("eps"), "norm": rep("norm"),
        **{k: np.concatenate([r[k] for r in recs]) for k in ("index", "label", "pred_clean", "pred_adv", "fooled",
                                                              "linf", "l2")},
        "target": np.concatenate([r["target"] if r["target"] is not None else np.full(k, -1, np.int64)
                                  for r, k in zip(recs, n)]),
    }
    for d in dets:
        out[col.det(d, "score")] = np.concatenate(
            [r["detectors"][d]["score"] if d in r["detectors"] else np.full(k, np.nan, np.float32)
             for r, k in zip(recs, n)])
        out[col.det(d, "reject")] = [None if d not in r["detectors"] else bool(v)
                                     for r in recs for v in (r["detectors"][d]["reject"] if d in r["detectors"]
                                                             else [None] * len(r["index"]))]
    return out


def worst_case_rows(recs: list[dict[str, Any]], pts: AttackPoints) -> list[dict[str, Any]]:
    """One ``worst-case`` row per (norm, ε) with two or more attacks (module docstring)."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        if r["goal"] is None and r["norm"] is not None and r["eps"] is not None:
            groups[(r["norm"], r["eps"])].append(r)
    out = []
    for (norm, eps), rs in groups.items():
        labels = list(dict.fromkeys(r["attack"] for r in rs))
        if len(labels) < 2:
            continue
        n = min(len(r["index"]) for r in rs)
        sub = pts.prefix(n)
        y = _np(sub.y)
        correct = _np(sub.correct)
        robust = np.ones(n, bool)
        fooled = np.zeros(n, bool)
        for r in rs:
            robust &= r["pred_adv"][:n] == y
            fooled |= r["fooled"][:n]
        n_correct = int(correct.sum())
        row = {**sub.base, "attack": WORST_LABEL, col.KIND: col.WORST_CASE, "param": "eps", "value": eps, "eps": eps,
               "adv_accuracy": float(robust.mean()),
               "success_rate": float(fooled[correct].mean()) if n_correct else math.nan,
               "n_success": float(fooled.sum()), col.metric("norm"): norm,
               col.metric("worst_of"): ",".join(labels), col.metric("n_attacks"): float(len(labels))}
        dets = [d for d in rs[0]["detectors"] if all(d in r["detectors"] for r in rs)]
        for d in dets:
            passed = np.zeros(n, bool)
            for r in rs:
                passed |= r["fooled"][:n] & ~r["detectors"][d]["reject"][:n].astype(bool)
            row[col.det(d, "attacker_success")] = float(passed[correct].sum() / n_correct) if n_correct else None
        out.append(row)
    return out
