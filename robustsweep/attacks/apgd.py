"""APGD / Auto-PGD (Croce & Hein 2020), L∞, cross-entropy or DLR loss: PGD without a step-size parameter.

The step size starts at 2·eps and is halved per example at checkpoints w_j (p_0 = 0, p_1 = 0.22,
p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), times ``steps``) when either the loss rose in fewer than
rho·(w_j - w_{j-1}) of the steps since the last checkpoint, or the step was not halved at the last checkpoint and
the best loss has not improved since; a halved example restarts from its best point. Updates carry momentum
``alpha`` (Eq. 2 of the paper). Per example we return a misclassified iterate if one was found, else the
highest-loss point. Matches torchattacks' ``APGD(norm='Linf', loss='ce'|'dlr', n_restarts=1)`` up to the random
start, which here is PGD's uniform draw in the ε-ball.

``loss="dlr"`` is the Difference of Logits Ratio of the same paper (eq. 6), -(z_y - max_{i≠y} z_i) /
(z_π1 - z_π3): invariant to shifting and scaling the logits, so it is not fooled by their scale the way CE can be
(paper 004's Table 1 runs APGD; its unseen-attack row is the DLR variant's natural use). Needs three classes or more.

Detector-aware (``detector_aware``, :mod:`robustsweep.attacks.adaptive`): the per-example objective that the
step-size schedule and the best point track is CE - λ · evasion, and a misclassified iterate is kept as the answer
only where the detector accepts it (hinge form; with the raw form, any misclassified iterate), so the attack does
not stop at the first rejected adversarial.

``restarts: R`` (default 1: one run, as always) reruns APGD from a fresh random start on the examples not fooled
yet, R - 1 times, keeping per example the first fooling point, else the one of highest objective (the ``loss``
minus λ · evasion) -- Croce & Hein's ``n_restarts`` (:func:`~robustsweep.attacks.base.restarted`).
"""
from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Ge

from robustsweep.attacks.adaptive import DetectorTerm
from robustsweep.attacks.base import detector_aware, linf_random_start, loss_grad, project_linf, restarted
from robustsweep.registry import ATTACKS


class _RecordingTerm:
    """A detector term that keeps its per-example values of every draw (APGD tracks the objective per example)."""

    def __init__(self, term: DetectorTerm):
        self.term, self.lam, self.form = term, term.lam, term.form
        self.values: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        v = self.term(x, logits)
        self.values.append(v.detach())
        return v


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example DLR loss (Croce & Hein 2020 eq. 6), as torchattacks computes it: the margin of the true class
    over the best other one, divided by the gap between the largest and third-largest logit."""
    z, _ = logits.sort(dim=1)
    top_is_y = (logits.argmax(1) == y).to(logits.dtype)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    best_other = z[:, -2] * top_is_y + z[:, -1] * (1.0 - top_is_y)
    return -(z_y - best_other) / (z[:, -1] - z[:, -3] + 1e-12)


_LOSSES = {"ce": lambda lg, yy: F.cross_entropy(lg, yy, reduction="none"), "dlr": dlr_loss}


def _objective_grad(model, x, y, eot, term: DetectorTerm | None = None, loss: str = "ce"):
    """Gradient of the summed objective (EOT-averaged) plus per-example objectives, mean logits over the draws and
    which examples the detector accepts (all of them without a detector term). ``loss``: "ce" or "dlr"."""
    losses, logits = [], []
    rec = _RecordingTerm(term) if term is not None else None
    per_example = _LOSSES[loss]

    def loss_fn(lg, yy):
        li = per_example(lg, yy)
        losses.append(li.detach())
        logits.append(lg.detach())
        return li.sum()

    g = loss_grad(model, x, y, eot, loss_fn=loss_fn, term=rec)
    loss = torch.stack(losses).mean(0)
    accepted = torch.ones(len(x), dtype=torch.bool, device=x.device)
    if rec is not None:
        ev = torch.stack(rec.values).mean(0)
        loss = loss - rec.lam * ev
        if rec.form == "hinge":
            accepted = ev <= 0
    return g, loss, torch.stack(logits).mean(0), accepted


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (x.dim() - 1)))


@ATTACKS.register("apgd", norm="linf", budget="eps", threat="white-box")
@detector_aware()
def apgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 8 / 255,
    steps: int = 20,
    rho: float = 0.75,
    alpha: float = 0.75,
    random_start: bool = True,
    eot: int = 1,
    term: DetectorTerm | None = None,
    loss: str = "ce",
    restarts: Annotated[int, Ge(1)] = 1,
) -> torch.Tensor:
    """Auto-PGD, L∞ ball, CE or DLR ``loss``; ``rho`` is the oscillation threshold, ``alpha`` the momentum weight;
    ``detector_aware``/``det_lambda``: also evade a fitted detector; ``restarts``: best of that many runs."""
    if loss not in _LOSSES:
        raise ValueError(f"apgd: loss must be one of {sorted(_LOSSES)}, got {loss!r}")

    def attempt(xs: torch.Tensor, ys: torch.Tensor, first: bool) -> torch.Tensor:
        return _apgd_run(model, xs.detach(), ys, eps, steps, rho, alpha, random_start or not first, eot, term, loss,
                         check=first)

    return restarted(attempt, model, x.detach(), y, restarts, term, _LOSSES[loss])


def _apgd_run(model, x, y, eps, steps, rho, alpha, random_start, eot, term, which, check=True) -> torch.Tensor:
    """One APGD run (the module docstring's algorithm) from x or a random start of the ball; ``check``: refuse a
    DLR loss on fewer than 3 classes (after the random start: a stochastic model's draws stay in their old order)."""
    n = len(x)
    x_adv = linf_random_start(x, eps) if random_start else x.clone()
    if check and which == "dlr":
        with torch.no_grad():
            n_classes = model(x[:1]).shape[1]
        if n_classes < 3:
            raise ValueError(f"apgd: the DLR loss needs at least 3 classes, the model has {n_classes} (use loss: ce)")
    grad, loss, logits, accepted = _objective_grad(model, x_adv, y, eot, term, which)
    x_best, grad_best, loss_best = x_adv.clone(), grad.clone(), loss.clone()
    fooled = (logits.argmax(1) != y) & accepted
    x_fooled = x_adv.clone()
    loss_hist = [loss]

    step = torch.full((n,), 2.0 * eps, device=x.device, dtype=x.dtype)
    k = max(int(0.22 * steps), 1)
    size_decr, k_min = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    counter = 0
    loss_best_last = loss_best.clone()
    reduced_last = torch.ones(n, dtype=torch.bool, device=x.device)
    x_prev = x_adv.clone()

    for i in range(steps):
        a = alpha if i > 0 else 1.0
        z = project_linf(x_adv + _bcast(step, x) * grad.sign(), x, eps)
        x_new = project_linf(x_adv + a * (z - x_adv) + (1 - a) * (x_adv - x_prev), x, eps)
        x_prev, x_adv = x_adv, x_new

        grad, loss, logits, accepted = _objective_grad(model, x_adv, y, eot, term, which)
        wrong = (logits.argmax(1) != y) & accepted
        x_fooled[wrong] = x_adv[wrong]
        fooled |= wrong
        loss_hist.append(loss)

        better = loss > loss_best
        x_best[better], grad_best[better], loss_best[better] = x_adv[better], grad[better], loss[better]

        counter += 1
        if counter == k:
            hist = torch.stack(loss_hist[-(k + 1):])
            n_incr = (hist[1:] > hist[:-1]).sum(0)
            osc = n_incr <= k * rho
            no_impr = ~reduced_last & (loss_best_last >= loss_best)
            reduce = osc | no_impr
            reduced_last, loss_best_last = reduce, loss_best.clone()
            if reduce.any():
                step[reduce] /= 2.0
                x_adv[reduce] = x_best[reduce]
                grad[reduce] = grad_best[reduce]
            counter = 0
            k = max(k - size_decr, k_min)

    out = torch.where(_bcast(fooled, x), x_fooled, x_best)
    return out.detach()
