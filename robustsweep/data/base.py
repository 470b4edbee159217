"""The one in-memory shape every data source returns, and the error for data that is not staged."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class DataSplit:
    """Train/test tensors, inputs scaled to [0, 1] (attacks clip to that box).

    ``x_*`` is float32 of shape (N, *input_shape); ``y_*`` is int64 of shape (N,). Images are (C, H, W);
    tabular/synthetic data is (D,). ``mean`` is the per-feature training mean (ROAR replaces pixels by it).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def mean(self) -> torch.Tensor:
        """Per-feature mean of ``x_train``, shape ``input_shape`` (the value ROAR puts in removed pixels)."""
        return self.x_train.mean(dim=0)

    def __post_init__(self) -> None:
        for a in ("x_train", "x_test"):
            t = getattr(self, a)
            if t.dtype != torch.float32:
                raise TypeError(f"{self.name}.{a} must be float32, got {t.dtype}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(f"{self.name}: inputs and labels differ in length")


class DataNotStagedError(FileNotFoundError):
    """Raised when a data set is neither on disk nor downloadable; the message says where to put it."""


def not_staged(name: str, root: Path, what: str) -> DataNotStagedError:
    return DataNotStagedError(
        f"data set {name!r} is not available under {root} and cannot be downloaded here.\n"
        f"Stage it by putting {what} there (or pass --data-root / set ROBUSTSWEEP_DATA to the folder that holds it)."
    )
