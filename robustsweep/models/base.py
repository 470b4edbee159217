"""What every registered model is: a ``torch.nn.Module`` whose ``forward(x)`` returns class logits.

Contract (the trial runner, attacks and detectors rely on nothing else):

- ``forward(x) -> (N, C)`` logits. For a generative classifier these are log p(x, y_c) (importance-sampled,
  fresh samples on every call, so attacks see the same stochasticity as the paper's evaluation).
- ``loss(x, y) -> scalar`` the training objective to minimise (mean over the batch), e.g. the negative ELBO.
- ``num_classes: int`` attribute.
- optional ``log_marginal(x) -> (N,)`` (default: logsumexp of the logits) and ``energy(x) = -logsumexp``.
- optional ``fit(data, train_cfg, device, progress)`` for models with their own training procedure
  (fusion models train their backbone first); when absent ``robustsweep.ops.train.fit`` runs the generic loop.

A model factory is registered with ``@MODELS.register("name")`` and takes ``input_shape`` and
``num_classes`` plus the keyword hyperparameters an experiment file may set (validated against the
signature, so a typo in a spec is an error naming the allowed keys). A factory that passes a class's settings on
takes them from that class's own signature with :func:`options_from` instead of listing them again.
"""
from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Collection
from typing import Any

import torch

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def log_marginal(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log p(x) estimate: the model's own if it has one, else logsumexp over the class logits."""
    if hasattr(model, "log_marginal"):
        return model.log_marginal(x)
    return torch.logsumexp(model(x), dim=1)


def energy(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """E(x) = -logsumexp_c logits (Beadini & Masi eq. 9); low energy = in-distribution."""
    return -torch.logsumexp(model(x), dim=1)


def options_from(*sources: Callable[..., Any], drop: Collection[str] = (), **defaults: Any) -> Callable:
    """Decorator: a model factory whose ``**options`` are the keyword parameters of ``sources`` (classes or functions).

    The registered signature (what the registry, the spec validation and ``robustsweep list`` read) is the factory's
    own parameters, then each source's parameters in order -- less the factory's own names, ``drop`` and a name an
    earlier source gave -- with their type hints, and their defaults unless ``defaults`` names another for this
    factory. The factory receives every option, defaults applied, so a class further down never falls back to a
    default of its own that the signature does not show. Every option must have a default (an experiment file may
    leave it out).
    """

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn).parameters.values() if p.kind not in _VARIADIC]
        hints = {k: v for k, v in typing.get_type_hints(fn).items() if k in {p.name for p in own} | {"return"}}
        taken, params, unused = {p.name for p in own} | set(drop), list(own), dict(defaults)
        kind = max([p.kind for p in own] + [inspect.Parameter.POSITIONAL_OR_KEYWORD])  # keyword-only after keyword-only
        for src in sources:
            src_hints = typing.get_type_hints(src.__init__ if isinstance(src, type) else src)
            for p in inspect.signature(src).parameters.values():
                if p.name in taken or p.kind in _VARIADIC:
                    continue
                default = unused.pop(p.name, p.default)
                if default is inspect.Parameter.empty:
                    raise TypeError(f"{fn.__name__}: option {p.name!r} of {src.__name__} has no default; drop it or "
                                    f"take it as a parameter of the factory")
                taken.add(p.name)
                hints[p.name] = src_hints[p.name]
                params.append(p.replace(kind=kind, default=default, annotation=hints[p.name]))
        if unused:
            raise TypeError(f"{fn.__name__}: defaults for options no source has: {sorted(unused)}")
        public = inspect.Signature(params, return_annotation=hints.get("return", inspect.Signature.empty))

        @functools.wraps(fn)
        def factory(*args: Any, **kwargs: Any) -> Any:
            bound = public.bind(*args, **kwargs)
            bound.apply_defaults()
            return fn(**bound.arguments)

        factory.__signature__ = public  # type: ignore[attr-defined]
        factory.__annotations__ = hints
        return factory

    return wrap
