"""Gradient-masking probes on every trial with gradient attacks (issue 38, part 7): the numbers the report's sanity
section judges (report/robustness.py), measured once per trial and written as ``m.sanity_*`` columns on every row.

Why in the trial: a user's own sweep gets the checks without writing them (they existed only as paper-001 claims),
and the probes must run on the very model and points the attacks ran on. What is measured, on the first
``eval.sanity.n`` attacked points (Carlini et al. 2019, "On Evaluating Adversarial Robustness", §5.2; Athalye et al.
2018):

- ``m.sanity_acc_large_eps``: accuracy under L∞ PGD at ``eval.sanity.eps`` (1 by default: the whole [0, 1] box),
  **without** a random start -- a model whose gradient is masked (zero, detached, shattered) then keeps its clean
  accuracy, where an honest one falls to chance (``m.sanity_chance`` = 1 / classes) or below. Only for inputs in
  [0, 1] (elsewhere ε = 1 is no unbounded attack: not measured);
- ``m.sanity_acc_steps`` / ``m.sanity_acc_2steps``: PGD (no random start) of ``steps`` and of twice as many at the
  trial's largest L∞ ε (``m.sanity_steps_eps``): more steps must not raise accuracy;
- ``m.sanity_grad_finite`` / ``m.sanity_grad_nonzero``: the fraction of points whose cross-entropy input gradient is
  all finite / not all zero.

A stochastic model is probed with the file's ``eval.eot`` (1 if unset). Everything runs under a forked RNG, so the
trial's other numbers are the draws they were without the probes.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from robustsweep.attacks.base import attack_norm
from robustsweep.core.examples import forked_rng
from robustsweep.core.points import AttackPoints
from robustsweep.core.steps.base import Evaluation, Step
from robustsweep.ops.batching import batched, model_device, predict
from robustsweep.registry import ATTACKS, STEPS
from robustsweep.store import columns as col


def input_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(fraction of points whose CE input gradient is all finite, fraction whose gradient is not all zero). A model
    whose output does not depend differentiably on its input (detached logits) has no gradient: (1, 0)."""
    xs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(xs)
        if not logits.requires_grad:
            return 1.0, 0.0
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xs, allow_unused=True)
    if g is None:
        return 1.0, 0.0
    g = g.flatten(1)
    return torch.isfinite(g).all(1).float().mean().item(), (g != 0).any(1).float().mean().item()


def pgd_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, eot: int,
                 batch_size: int) -> float:
    """Accuracy under PGD from the clean point (no random start), step 2.5 ε / steps (Madry et al.'s rule). An
    attack that cannot even take a gradient leaves the inputs as they are (that is what masking looks like)."""
    fn = ATTACKS.get("pgd").fn
    try:
        x_adv = batched(lambda xb, yb: fn(model, xb, yb, eps=eps, steps=steps, step_size=2.5 * eps / steps,
                                          random_start=False, eot=eot), x, y, batch_size=batch_size)
    except RuntimeError:  # "element 0 of tensors does not require grad": no gradient to follow
        x_adv = x
    return (predict(model, x_adv, batch_size).to(y.device) == y).float().mean().item()


def largest_linf_eps(attacks: list[dict[str, Any]]) -> float | None:
    """The largest positive ε of the trial's L∞ attacks (a grid's largest value), None without any."""
    best = None
    for a in attacks:
        if a.get("name") not in ATTACKS or attack_norm(ATTACKS.get(a["name"]), a) != "linf":
            continue
        eps = a.get("eps")
        for e in eps if isinstance(eps, list) else [eps]:
            if isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0:
                best = max(best or 0.0, float(e))
    return best


@STEPS.register("sanity", order=6)
class Sanity(Step):
    """``m.sanity_*`` columns on every row of a trial with white-box gradient attacks (module docstring)."""

    def active(self, ev: Evaluation) -> bool:
        if ev.trial is None or ev.options.sanity is None:
            return False
        return any(a.name in ATTACKS and ATTACKS.get(a.name).meta.get("threat") == "white-box"
                   for a in ev.trial.trial.attacks)

    def arrange(self, ev: Evaluation, pts: AttackPoints) -> AttackPoints:
        opt, env = ev.options.sanity, ev.trial
        assert opt is not None and env is not None
        sub = pts.prefix(opt.n)
        x, y = sub.x, sub.y
        eot = ev.options.eot or 1
        out: dict[str, Any] = {col.metric("sanity_n"): float(len(x)),
                               col.metric("sanity_chance"): 1.0 / env.data.num_classes}
        with forked_rng(model_device(ev.model)):
            out[col.metric("sanity_grad_finite")], out[col.metric("sanity_grad_nonzero")] = \
                input_gradients(ev.model, x, y)
            if float(x.min()) >= 0.0 and float(x.max()) <= 1.0:
                out[col.metric("sanity_eps")] = opt.eps
                out[col.metric("sanity_acc_large_eps")] = pgd_accuracy(ev.model, x, y, opt.eps, opt.steps, eot,
                                                                       ev.batch_size)
            if (eps := largest_linf_eps([a.as_dict() for a in env.trial.attacks])) is not None:
                out[col.metric("sanity_steps_eps")] = eps
                out[col.metric("sanity_steps")] = float(opt.steps)
                out[col.metric("sanity_acc_steps")] = pgd_accuracy(ev.model, x, y, eps, opt.steps, eot, ev.batch_size)
                out[col.metric("sanity_acc_2steps")] = pgd_accuracy(ev.model, x, y, eps, 2 * opt.steps, eot,
                                                                    ev.batch_size)
        return replace(pts, base={**pts.base, **out})
