"""Carlini & Wagner L2 (2017): Adam on w with x' = (tanh(w) + 1) / 2, minimising ||x' - x||² + c · f(x').

f(x') = max(z_y - max_{i≠y} z_i, -kappa) (untargeted). Paper 001 sweeps c ∈ {0.1, 1, 10, 100, 1000} with a fixed
c (``search_steps=0``, the default); ``search_steps > 0`` runs the classic per-example binary search on c
(success -> smaller c, failure -> larger c, x10 until an upper bound is found) and keeps the smallest successful
perturbation over all runs. Like torchattacks' ``CW`` the attack returns, per example, the successful iterate of
smallest L2 distortion seen during optimisation (the clean input where none succeeded), and stops a run early
when the summed cost has not decreased over a tenth of the steps.

Detector-aware (``detector_aware``, :mod:`robustsweep.attacks.adaptive`): the cost gains + λ · evasion (CW
minimises), and an iterate counts as a success only where it is misclassified AND the detector accepts it (hinge
form; any misclassified iterate with the raw form) -- Carlini & Wagner's own recipe for bypassing detectors.
"""
from __future__ import annotations

import torch

from robustsweep.attacks._util import margin
from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import detector_aware
from robustsweep.registry import ATTACKS

_TANH_LIMIT = 1 - 1e-6  # atanh(±1) = ±inf would freeze pixels at exactly 0 or 1 (tanh' = 0 there)


def _to_w(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh((2 * x - 1).clamp(-_TANH_LIMIT, _TANH_LIMIT))


def _from_w(w: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(w) + 1) / 2


def _cw_run(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    c: torch.Tensor,
    kappa: float,
    steps: int,
    lr: float,
    abort_early: bool,
    term: DetectorTerm | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation at per-example constants ``c``; returns (best adversarial, its squared L2 or inf)."""
    n = len(x)
    view = (-1,) + (1,) * (x.dim() - 1)
    w = _to_w(x).detach().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    best_adv = x.clone()
    best_l2 = torch.full((n,), float("inf"), device=x.device)
    prev_cost = float("inf")
    for step in range(steps):
        with torch.enable_grad():
            x_adv = _from_w(w)
            l2 = (x_adv - x).flatten(1).pow(2).sum(1)
            logits = model(x_adv)
            f = margin(logits, y).clamp_min(-kappa)
            cost = (l2 + c * f).sum()
            if term is not None:
                ev = term(x_adv, logits)
                cost = cost + term.lam * ev.sum()
            opt.zero_grad()
            cost.backward()
        opt.step()
        with torch.no_grad():
            fooled = logits.argmax(1) != y
            if term is not None and term.form == "hinge":
                fooled &= ev.detach() <= 0
            better = fooled & (l2 < best_l2)
            best_l2 = torch.where(better, l2.detach(), best_l2)
            best_adv = torch.where(better.view(view), x_adv.detach(), best_adv)
        if abort_early and step % max(steps // 10, 1) == 0:
            if cost.item() > prev_cost:
                break
            prev_cost = cost.item()
    return best_adv, best_l2


@ATTACKS.register("cw", norm=None, threat="white-box")
@detector_aware(budget=None)
def cw(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    c: float = 1.0,
    kappa: float = 0.0,
    steps: int = 100,
    lr: float = 0.01,
    search_steps: int = 0,
    abort_early: bool = True,
    term: DetectorTerm | None = None,
) -> torch.Tensor:
    """Carlini-Wagner L2 (tanh box), constant ``c`` or a binary search over it (``search_steps`` > 0);
    ``detector_aware``/``det_lambda``: also evade a fitted detector."""
    x = x.detach()
    cs = torch.full((len(x),), float(c), device=x.device)
    best_adv, best_l2 = _cw_run(model, x, y, cs, kappa, steps, lr, abort_early, term)
    if search_steps <= 0:
        return best_adv
    lo = torch.zeros_like(cs)
    hi = torch.full_like(cs, float("inf"))
    succ = torch.isfinite(best_l2)
    view = (-1,) + (1,) * (x.dim() - 1)
    for _ in range(search_steps):
        hi = torch.where(succ, torch.minimum(hi, cs), hi)
        lo = torch.where(succ, lo, torch.maximum(lo, cs))
        cs = torch.where(torch.isfinite(hi), (lo + hi) / 2, cs * 10)
        adv, l2 = _cw_run(model, x, y, cs, kappa, steps, lr, abort_early, term)
        succ = torch.isfinite(l2)
        better = l2 < best_l2
        best_l2 = torch.where(better, l2, best_l2)
        best_adv = torch.where(better.view(view), adv, best_adv)
    return best_adv
