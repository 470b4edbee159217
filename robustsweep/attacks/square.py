"""Square Attack (Andriushchenko, Croce, Flammarion & Hein 2020): score-based random search, AutoAttack's fourth
component.

Each query changes the perturbation on one random square window (side shrinking on a fixed schedule of the query
budget, from ``p_init`` of the image) to a vertex of the ε-ball and keeps the change if the margin loss fell. It
reads only the logits, so it is the component that gradient masking cannot fool (threat model: score).

From whom: torchattacks 3.5.1's ``Square`` (a port of github.com/fra31/auto-attack) through
:mod:`robustsweep.attacks._torchattacks`; nothing is rewritten. Choices: ``queries`` (torchattacks' ``n_queries``,
per restart) defaults to AutoAttack's 5000 and is the knob ``--smoke`` cuts (registry ``queries``); margin loss and
the rescaled ``p`` schedule as AutoAttack. Examples already fooled stop querying (as there), so the number of
queries a batch makes depends on how robust it is. On a stochastic model every query is one fresh draw.
"""
from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge, Interval

from robustsweep.attacks._torchattacks import Norm, check_eps, draw_seed, run
from robustsweep.attacks.base import norm_param
from robustsweep.registry import ATTACKS


@ATTACKS.register("square", norm=norm_param("norm"), budget="eps", threat="score", queries="queries")
def square(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 8 / 255,
    norm: Norm = "Linf",
    queries: Annotated[int, Ge(1)] = 5000,
    restarts: Annotated[int, Ge(1)] = 1,
    p_init: Annotated[float, Interval(gt=0, le=1)] = 0.8,
    seed: int | None = None,
) -> torch.Tensor:
    """Square Attack: random search over square windows at the vertices of the ε-ball (logits only)."""
    check_eps("square", eps)
    if eps == 0:
        return x.clone()
    return run("Square", model, x, y, draw_seed(seed), norm=norm, eps=eps, n_queries=queries, n_restarts=restarts,
               p_init=p_init)
