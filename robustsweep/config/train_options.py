"""The ``train`` section of a trial: how its model is trained (ops/train.py ``TrainConfig`` takes its dump)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from robustsweep.config.identity import ADDED, Section


class AdversarialTrainSpec(Section):
    """PGD-AT (ops/train.py): train on L∞ PGD adversarials of each minibatch (random start, ``steps`` of
    ``step_size``, projected to the ε-ball) -- paper 004's "robust" models."""

    eps: float = Field(gt=0)
    steps: int = Field(ge=1)
    step_size: float = Field(gt=0)


class TrainOptions(Section):
    """Training settings. The dump is part of the trial's identity and of its model's cache key."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    adversarial: Annotated[AdversarialTrainSpec | None, ADDED] = None  # None: regular training
