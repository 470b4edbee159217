"""What every registered detector is.

A detector factory registered with ``@DETECTORS.register("name")`` takes its settings (``alpha``, ``target_fpr``,
``rule``…) as keyword arguments and returns an object with:

- ``fit(model, x, y) -> self``: fit thresholds on CLEAN training or validation data (never the test set);
- ``score(model, x) -> (N,)``: higher = more suspicious (used for ROC curves and AUC);
- ``reject(model, x) -> (N,) bool``: True where the input is flagged.
"""
from __future__ import annotations

from typing import Protocol

import torch


class Detector(Protocol):
    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Detector: ...

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor: ...
