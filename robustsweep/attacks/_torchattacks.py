"""Running a torchattacks attack as one of ours: AutoAttack's components (APGD, APGD-T, FAB, Square).

What comes from whom: the attacks themselves are torchattacks 3.5.1's (Kim 2020, github.com/Harry24k/
adversarial-attacks-pytorch), ports of Croce & Hein's reference AutoAttack code (github.com/fra31/auto-attack,
"Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks", ICML 2020).
Nothing numeric is rewritten here: a maintained implementation is what a reviewer accepts for an AutoAttack
number, and torchattacks is already the oracle our own attacks are tested against. This module only makes the
classes behave like our attack functions:

- **Randomness.** Every torchattacks AutoAttack component calls ``torch.manual_seed(seed)`` (and the CUDA one) at
  its start. It runs inside :func:`torch.random.fork_rng`, so the trial's random stream is left where it was;
  ``seed=None`` (our default) is one draw from that stream, so ``torch.manual_seed(trial seed)`` decides the
  attack's randomness, as it does every other attack's, and the same seed gives the same adversarials.
- **Shapes.** torchattacks assumes images (N, C, H, W); any other input (N, D) goes through as (N, D, 1, 1), the
  model seeing it reshaped back.
- **Classes.** ``n_classes`` (APGD-T's and FAB-T's targets) is read off the model's logits, never configured.
- **Norm.** ``norm`` is spelled ``Linf`` / ``L2`` as torchattacks and AutoAttack spell it.

torchattacks is imported on the first call only, so the other attacks never need it.
"""
from __future__ import annotations

from typing import Any, Literal

import torch

#: the ball an attack stays in, spelled as torchattacks' ``norm`` argument
Norm = Literal["Linf", "L2"]


def draw_seed(seed: int | None) -> int:
    """``seed``, or one draw from torch's global generator when None (the trial's seed decides it)."""
    return int(torch.randint(0, 2**31 - 1, (1,)).item()) if seed is None else int(seed)


def n_classes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """The width of the model's logits (one forward pass of one input)."""
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


class _AsImage(torch.nn.Module):
    """The model on (N, D, 1, 1) inputs: what torchattacks sees of a model of flat (or other non-image) inputs."""

    def __init__(self, model: torch.nn.Module, shape: torch.Size):
        super().__init__()
        self.model, self.shape = model, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(len(x), *self.shape))


def run(cls: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, **kwargs: Any) -> torch.Tensor:
    """``torchattacks.<cls>(model, seed=seed, **kwargs)(x, y)`` with our conventions (module docstring)."""
    try:
        import torchattacks
    except ImportError as e:  # pragma: no cover - torchattacks is a dependency of these attacks
        raise ImportError(f"the {cls} attack runs torchattacks' implementation: pip install torchattacks==3.5.1") from e
    if len(x) == 0:
        return x.clone()
    image = x.dim() == 4
    m = model if image else _AsImage(model, x.shape[1:])
    xi = x.detach() if image else x.detach().reshape(len(x), -1, 1, 1)
    atk = getattr(torchattacks, cls)(m, seed=seed, **kwargs)
    atk.set_device(x.device)
    cuda = [torch.cuda.current_device()] if torch.cuda.is_available() else []  # it re-seeds the current CUDA device
    with torch.random.fork_rng(devices=cuda):
        out = atk(xi, y)
    return out.detach().reshape(x.shape)


def check_eps(name: str, eps: float) -> None:
    if eps < 0:
        raise ValueError(f"{name}: eps must be >= 0, got {eps}")
