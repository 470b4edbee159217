"""The one in-memory shape every data source returns (train / validation / test), and the error for data that is not staged."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class DataSplit:
    """Train/validation/test tensors, inputs scaled to [0, 1] (attacks clip to that box).

    ``x_*`` is float32 of shape (N, *input_shape); ``y_*`` is int64 of shape (N,). Images are (C, H, W);
    tabular/synthetic data is (D,). ``mean`` is the per-feature training mean (ROAR replaces pixels by it).

    ``x_val`` / ``y_val`` are a validation part held out of the *training* data (never of the test data) for
    calibration and model selection: loaders fill them when asked for ``val_size > 0`` (``mnist5k`` always does).
    Left out, they default to empty tensors of shape (0, *input_shape) and (0,), so code that ignores them keeps
    working; :attr:`n_val` says how many there are. They come last so positional construction is unchanged.

    ``manifold_sigmas`` (optional; synthetic data whose generating manifold is known, ``two-rings``): maps inputs
    (N, *input_shape) to their distance from the data manifold in units of the data's noise σ, so a report can
    tell "far from the data" from "on it" without a model (paper 001 Fig. 2).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: list[str] | None = None
    x_val: torch.Tensor = None  # type: ignore[assignment]  # None -> empty (0, *input_shape) in __post_init__
    y_val: torch.Tensor = None  # type: ignore[assignment]  # None -> empty (0,) int64 in __post_init__
    manifold_sigmas: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def mean(self) -> torch.Tensor:
        """Per-feature mean of ``x_train``, shape ``input_shape`` (the value ROAR puts in removed pixels)."""
        return self.x_train.mean(dim=0)

    @property
    def n_val(self) -> int:
        """Number of validation examples (0 when the loader held none out)."""
        return len(self.y_val)

    def __post_init__(self) -> None:
        if (self.x_val is None) != (self.y_val is None):
            raise ValueError(f"{self.name}: give both x_val and y_val, or neither")
        if self.x_val is None:
            self.x_val = self.x_train.new_zeros((0, *self.x_train.shape[1:]))
            self.y_val = torch.zeros(0, dtype=torch.int64)
        for a in ("x_train", "x_val", "x_test"):
            t = getattr(self, a)
            if t.dtype != torch.float32:
                raise TypeError(f"{self.name}.{a} must be float32, got {t.dtype}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(f"{self.name}: inputs and labels differ in length")
        if len(self.x_val) != len(self.y_val):
            raise ValueError(f"{self.name}: validation inputs and labels differ in length")
        if self.x_val.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(
                f"{self.name}: x_val has input shape {tuple(self.x_val.shape[1:])}, x_train {self.input_shape}"
            )


class DataNotStagedError(FileNotFoundError):
    """Raised when a data set is neither on disk nor downloadable; the message says where to put it."""


def not_staged(name: str, root: Path, what: str, command: str | None = None) -> DataNotStagedError:
    """``command``: the ``robustsweep data stage …`` line that stages ``name`` (for the data sets that have one)."""
    how = f"\nOr stage it with: {command} --data-root {root}" if command else ""
    return DataNotStagedError(
        f"data set {name!r} is not available under {root} and cannot be downloaded here.\n"
        f"Stage it by putting {what} there (or pass --data-root / set ROBUSTSWEEP_DATA to the folder that holds it)."
        + how
    )
