"""What every registered detector is.

A detector factory registered with ``@DETECTORS.register("name")`` takes its settings (``alpha``, ``target_fpr``,
``rule``…) as keyword arguments and returns an object with:

- ``fit(model, x, y) -> self``: fit thresholds on CLEAN training or validation data (never the test set);
- ``score(model, x) -> (N,)``: higher = more suspicious (used for ROC curves and AUC);
- ``reject(model, x) -> (N,) bool``: True where the input is flagged;
- ``threshold``: the operating point on the ``score`` scale (reject iff score > threshold);
- ``evasion(model, x, form="hinge", logits=None) -> (N,)``: the score recomputed WITH gradients w.r.t. x, as
  relu(score - threshold) (``hinge``) or the score itself (``raw``), so any gradient attack can be pointed at the
  detector (``detector_aware``, :mod:`robustsweep.attacks.adaptive`); ``logits`` lets it reuse the attack's forward
  pass;
- ``calibration_scores``: the scores of the clean fit data, from which the evaluator recomputes thresholds for 1/5/10 %
  false positives (the joint attacker-success columns).
"""
from __future__ import annotations

from typing import Protocol

import torch


class Detector(Protocol):
    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Detector: ...

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "hinge",
                logits: torch.Tensor | None = None) -> torch.Tensor: ...
