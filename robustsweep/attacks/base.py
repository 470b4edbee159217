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
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from robustsweep.attacks.adaptive import DetectorTerm, detector_term

if TYPE_CHECKING:
    from robustsweep.registry import Entry

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
        sig, hints = inspect.signature(fn), typing.get_type_hints(fn, include_extras=True)  # keeps Annotated domains
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


def restarted(
    attempt: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor],
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    restarts: int,
    term: DetectorTerm | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Best of ``restarts`` runs per example: ``attempt(x, y, first)`` returns adversarials of a batch.

    Restart 1 is ``attempt(x, y, True)`` on the whole batch -- the attack exactly as configured, so ``restarts=1``
    is today's output bit for bit and draws the same random numbers. Restarts 2..R run ``attempt(.., False)`` (the
    attack from a random start, whatever ``random_start`` says: from x again it would repeat restart 1 on a
    deterministic model) on the examples no restart has fooled yet, as torchattacks' and Croce & Hein's APGD
    restarts do. Per example the first fooling adversarial is kept, else the one of highest per-example loss
    (``loss_fn``, default cross-entropy, minus λ · the detector term). "Fooled" with a detector term of the hinge
    form also needs the detector to accept the input. Judged on one forward pass (one draw of a stochastic model).
    """
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    x_adv = attempt(x, y, True)
    if restarts == 1:
        return x_adv
    fooled, score = _judge(model, x_adv, y, term, loss_fn)
    for _ in range(restarts - 1):
        todo = (~fooled).nonzero().squeeze(1)
        if len(todo) == 0:
            break
        cand = attempt(x[todo], y[todo], False)
        f, s = _judge(model, cand, y[todo], term, loss_fn)
        take = f | (s > score[todo])
        idx = todo[take]
        x_adv[idx], score[idx], fooled[idx] = cand[take], s[take], f[take]
    return x_adv


@torch.no_grad()
def _judge(model, x_adv, y, term, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(fooled, per-example objective) of one restart's adversarials."""
    logits = model(x_adv)
    loss = (loss_fn or (lambda lg, yy: F.cross_entropy(lg, yy, reduction="none")))(logits, y)
    fooled = logits.argmax(1) != y
    if term is not None:
        loss = loss - term.lam * term(x_adv, logits)
        fooled &= term.accepted(x_adv, logits)
    return fooled, loss


# ------------------------------------------------------------------------------------------- registry ``norm`` meta
def norm_param(name: str = "norm", default: str = "Linf") -> Callable[[Mapping[str, Any]], str]:
    """The registry ``norm`` meta of an attack whose norm is its parameter ``name`` (``norm: Linf | L2``, spelled as
    torchattacks and AutoAttack spell it): a function of the row's attack parameters giving "linf" / "l2", the
    lower-case names the other entries declare. It falls back to ``default`` (the signature's) for a parameter the
    file left out, so a caller holding only the file's parameters gets the right answer too."""

    def norm(params: Mapping[str, Any]) -> str:
        return str(params.get(name) or default).lower()

    norm.__qualname__ = f"norm_param({name!r})"
    return norm


def attack_norm(entry: Entry, params: Mapping[str, Any]) -> str | None:
    """The norm ("linf" | "l2") whose ball a row's attack stayed in, or None (no ε-ball: CW, DeepFool, ZOO, …).

    ``entry``: the attack's registry entry; ``params``: its parameters as the row records them (the file's, without
    the signature defaults: they are filled in here). A static ``norm`` meta is returned as is; a callable one
    (:func:`norm_param`, e.g. AutoAttack, APGD-T, FAB, Square) is asked with the parameters. What groups rows of
    one norm and budget (the worst case over attacks) reads this."""
    norm = entry.meta.get("norm")
    if callable(norm):
        norm = norm({**entry.defaults(), **params})
    return None if norm is None else str(norm).lower()


# ------------------------------------------------------------------------------- ensembles (registry ``components``)
@dataclass(frozen=True)
class Component:
    """One component of an ensemble (AutoAttack): the rows' label, an attack function ``fn(model, x, y, **params)``, its parameters."""

    label: str
    fn: Callable[..., torch.Tensor]
    params: dict[str, Any] = field(default_factory=dict)


def sequence(
    comps: list[Component],
    x: torch.Tensor,
    y: torch.Tensor,
    pred: torch.Tensor,
    attack: Callable[[Component, torch.Tensor, torch.Tensor], torch.Tensor],
    predict: Callable[[torch.Tensor], torch.Tensor],
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """AutoAttack's bookkeeping, lazily: yields ``(label, x_adv, pred_adv, seconds)`` after each component, all
    cumulative (``seconds``: the components' crafting time so far).

    ``pred``: the clean prediction (only points with ``pred == y`` are attacked); ``attack(component, x, y)``: the
    component's adversarials of a subset; ``predict(x_adv)``: their predicted labels. A point the component fools
    takes its adversarial and that prediction; every other point keeps its input and its earlier prediction (not
    predicted again: on a stochastic model a fresh draw could flip a point back), so the accuracy after each
    component never rises."""
    x_adv, pred = x.clone(), pred.to(y.device).clone()
    seconds = 0.0
    for c in comps:
        todo = (pred == y).nonzero().squeeze(1)
        if len(todo):
            t0 = time.time()
            xa = attack(c, x[todo], y[todo])
            seconds += time.time() - t0
            pa = predict(xa).to(y.device)
            hit = pa != y[todo]
            x_adv[todo[hit]], pred[todo[hit]] = xa[hit].to(x_adv.dtype), pa[hit]
        yield c.label, x_adv.clone(), pred.clone(), seconds
