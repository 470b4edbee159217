"""Shared pieces of every attack: the [0, 1] box, ε-ball projections and the (EOT-averaged) loss gradient.

An attack is a plain function registered with ``@ATTACKS.register("name")``::

    def pgd(model, x, y, eps: float = 0.1, steps: int = 40, step_size: float = 0.01, ...) -> x_adv

It takes a whole batch (N, ...) of inputs in [0, 1] and true labels, returns adversarial inputs of the same shape,
and never loops in Python over examples. Hyperparameters are keyword arguments so that an experiment file can
set and sweep them; at most one of them may be given as a list in a spec (the attack's grid, usually ``eps``),
and the trial evaluates the whole grid on one trained model.

Every gradient attack also takes ``detector_aware`` / ``det_lambda`` (see :mod:`robustsweep.attacks.adaptive`):
the same attack against a fitted detector as well, loss = attack loss - λ · evasion. It is written on the bound term
(a ``term`` parameter) and :func:`detector_aware` gives it those two parameters and the ε = 0 guard.
"""
from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from robustsweep.attacks.adaptive import DetectorTerm, detector_term

#: the two settings :func:`detector_aware` puts where an attack function has ``term``, with their types
_SETTINGS = (("detector_aware", dict[str, Any] | None), ("det_lambda", float | None))


def clamp01(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


def _flat_norm(d: torch.Tensor) -> torch.Tensor:
    """Per-example ℓ2 norm, shaped to broadcast against d."""
    n = d.flatten(1).norm(dim=1).clamp_min(1e-12)
    return n.view(-1, *([1] * (d.dim() - 1)))


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the ℓ∞ ball of radius eps around x, intersected with [0, 1]."""
    return clamp01(torch.min(torch.max(x_adv, x - eps), x + eps))


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the ℓ2 ball of radius eps around x, then clip to [0, 1]."""
    d = x_adv - x
    factor = torch.clamp(eps / _flat_norm(d), max=1.0)
    return clamp01(x + d * factor)


def normalize_l2(g: torch.Tensor) -> torch.Tensor:
    return g / _flat_norm(g)


def loss_grad(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eot: int = 1,
    loss_fn=None,
    term: DetectorTerm | None = None,
) -> torch.Tensor:
    """Gradient of the (summed) loss w.r.t. x, averaged over ``eot`` forward passes.

    EOT (expectation over transformation) matters for stochastic models such as the deep-Bayes classifiers,
    whose logits are Monte-Carlo estimates drawn afresh on every call. Default loss: cross-entropy on logits.
    ``term`` (a detector-aware attack, :mod:`robustsweep.attacks.adaptive`) subtracts λ · Σ evasion(x) computed
    from the same forward pass, so under EOT every draw pays its own detector term.
    """
    loss_fn = loss_fn or (lambda logits, y: F.cross_entropy(logits, y, reduction="sum"))
    draws = max(1, int(eot))
    grad = None
    for _ in range(draws):
        xr = x.detach().requires_grad_(True)  # a fresh leaf sharing x's storage: nothing writes to it
        with torch.enable_grad():
            logits = model(xr)
            loss = loss_fn(logits, y)
            if term is not None:
                loss = loss - term.lam * term(xr, logits).sum()
            (g,) = torch.autograd.grad(loss, xr)
        grad = g if grad is None else grad.add_(g)
    return grad if draws == 1 else grad.div_(draws)  # no accumulator or division on the common one-draw path


def linf_random_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """A uniform draw in the ℓ∞ ball of radius eps around x, clipped to [0, 1] (PGD's random start)."""
    return clamp01(x + torch.empty_like(x).uniform_(-eps, eps))


def linf_steps(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    eot: int = 1,
    loss_fn=None,
    on_step: Callable[[torch.Tensor], None] | None = None,
    term: DetectorTerm | None = None,
) -> torch.Tensor:
    """The L∞ PGD iteration shared by PGD, HE-PGD, I-FGSM and the counterfactual-speed curve: ``steps`` signed
    gradient-ascent steps of ``loss_fn`` from ``x_adv``, each projected back onto the ε-ball around ``x`` and [0, 1].
    ``on_step`` sees every iterate (the speed curve reads accuracy after each step); ``term``: the detector-aware
    term (see :func:`loss_grad`)."""
    # the ball ∩ [0, 1] as two bounds computed once: clamping to them equals project_linf bit for bit (x is in
    # [0, 1], so the intervals meet) and saves four full-size temporaries per step
    lo, hi = clamp01(x - eps), clamp01(x + eps)
    for _ in range(steps):
        g = loss_grad(model, x_adv, y, eot, loss_fn=loss_fn, term=term)
        x_adv = (x_adv + step_size * g.sign_()).clamp_(lo, hi)
        if on_step is not None:
            on_step(x_adv)
    return x_adv.detach()


def detector_aware(budget: str | None = "eps") -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Decorator: an attack written on a bound detector term becomes the function an experiment file sets.

    The decorated function takes ``term: DetectorTerm | None`` (what :func:`loss_grad` subtracts); the returned one
    takes ``detector_aware`` / ``det_lambda`` in its place -- in the signature and type hints the registry, the spec
    validation and ``robustsweep list`` read -- binds them with :func:`~robustsweep.attacks.adaptive.detector_term`,
    and, for an attack with an ε-ball (``budget``: the name of its radius; None for CW), returns the inputs unchanged
    at radius 0, after the detector settings were checked (a wrong setting fails at every grid point alike). The
    function on the term stays reachable as ``__wrapped__`` (BIM runs PGD's with its own term).
    """

    def wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        sig, hints = inspect.signature(fn), typing.get_type_hints(fn)
        params: list[inspect.Parameter] = []
        for p in sig.parameters.values():
            if p.name != "term":
                params.append(p)
                continue
            params += [inspect.Parameter(name, p.kind, default=None, annotation=t) for name, t in _SETTINGS]
            hints.pop("term")
            hints.update(_SETTINGS)
        public = sig.replace(parameters=params)

        @functools.wraps(fn)
        def attack(*args: Any, **kwargs: Any) -> torch.Tensor:
            kw = public.bind(*args, **kwargs)
            kw.apply_defaults()
            a = kw.arguments
            term = detector_term(a["model"], a.pop("detector_aware"), a.pop("det_lambda"))
            if budget is not None and a[budget] == 0:
                return a["x"].clone()
            return fn(**a, term=term)

        attack.__signature__ = public  # type: ignore[attr-defined]
        attack.__annotations__ = hints
        return attack

    return wrap
