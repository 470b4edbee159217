"""Small helpers shared by the attacks of this package that are not part of the lead's ``base`` contract.

Kept separate from ``base.py`` (whose helpers every attack file relies on) so that additions here cannot change
the behaviour of FGSM/PGD.
"""
from __future__ import annotations

import torch

from robustsweep.ops.batching import batched_logits, model_device  # noqa: F401 — re-exported for attacks

Target = str | int


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y - max_{i != y} z_i per example (negative = misclassified).

    Masks the true class with -inf rather than multiplying by (1 - one_hot): the latter silently picks 0 as
    "best other logit" when all logits are negative, which is always the case for generative classifiers whose
    logits are log p(x, y_c).
    """
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(torch.nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return true - other


def choose_targets(y: torch.Tensor, num_classes: int, target: Target, seed: int = 0) -> torch.Tensor:
    """Target labels for targeted attacks: ``"next"`` = (y + 1) mod C, ``"+k"`` = (y + k) mod C (a grid over
    ``"+1"`` … ``"+9"`` attacks every input towards each of the other classes, paper 003 §4), ``"random"`` = uniform
    over the other classes (seeded), or an int = that class for every input (inputs already of that class get the
    next one)."""
    if target == "next":
        return (y + 1) % num_classes
    if isinstance(target, str) and target.startswith("+") and target[1:].isdigit():
        k = int(target[1:])
        if not 0 < k < num_classes:
            raise ValueError(f"target offset {target!r} must be +1 .. +{num_classes - 1} (+0 would be the true class)")
        return (y + k) % num_classes
    if target == "random":
        g = torch.Generator().manual_seed(seed)
        off = torch.randint(1, num_classes, (len(y),), generator=g).to(y.device)
        return (y + off) % num_classes
    if isinstance(target, int) or (isinstance(target, str) and target.lstrip("-").isdigit()):
        t = int(target)
        if not 0 <= t < num_classes:
            raise ValueError(f"target class {t} outside [0, {num_classes})")
        out = torch.full_like(y, t)
        return torch.where(out == y, (y + 1) % num_classes, out)
    raise ValueError(f"target must be 'next', '+k' (an offset), 'random' or a class index, got {target!r}")
