"""Fixed ("shared") random draws for stochastic models: common random numbers for finite-difference attacks.

Why: a deep-Bayes classifier (:mod:`robustsweep.models.deep_bayes`) estimates its logits (paper 001, eq. 2) with K
importance samples z ~ q(z|x, y) drawn afresh on *every* forward call. On a digits GFZ the logit margin of one input
moves by about 1 nat between two calls, while a score-based attack differences two queries a tiny step apart
(SPSA: x ± 0.01 v, ZOO: x ± 1e-4 e_i). With independent draws that difference is almost pure Monte-Carlo noise, the
gradient estimate points nowhere and the attack fails for a reason that has nothing to do with robustness -- the
model looks more robust than it is (a form of gradient masking; cf. Table 3 of paper 001, PGD vs SPSA). The
standard cure is *common random numbers*: evaluate f(x + δ) and f(x - δ) with the SAME noise, so that the
difference measures the change of one smooth, fixed-sample objective f_ξ(x), whose gradient does point somewhere.

Mechanism (opt-in; a model that does not take part is unaffected)::

    with shared_draws(model, seed):
        a = model(x_plus)     # noise drawn from torch.Generator().manual_seed(seed)
        b = model(x_minus)    # the very same noise again (same batch size => same noise, row by row)

* Inside the context, every forward call of a participating module re-seeds a private ``torch.Generator`` with
  ``seed``, so two calls on batches of the same size get identical noise, row for row. The noise depends only on
  the batch size (and K, C, dim_z), never on the input values.
* A module takes part by drawing its noise through :func:`randn` (or :func:`generator`) with itself as the key and
  by declaring ``stochastic = True`` (:func:`is_stochastic` reads it). :class:`~robustsweep.models.deep_bayes.DeepBayes`
  does; wrappers (fusion models, call counters) need nothing: the context covers every submodule of ``model``.
* Outside the context, :func:`randn` is exactly ``torch.randn(shape, device=...)`` on the global RNG: default
  behaviour (and every seeded test) stays bit-for-bit as before.
* The active seeds live in a :class:`contextvars.ContextVar` keyed by module identity, not in attributes of the
  model: nothing on the model is mutated, concurrent threads/tasks using the same model do not see each other's
  contexts, and the previous state is restored on exit (contexts nest).
* The global RNG is never touched, so an attack's own randomness (SPSA directions, ZOO coordinates) is the same
  with and without the context.

Models that sample but do not (yet) draw through this module -- :class:`robustsweep.models.causal.CausalHead` --
keep fresh draws inside the context (no harm, no benefit); :func:`is_stochastic` still reports them.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["active_seed", "derive_seed", "generator", "is_stochastic", "randn", "shared_draws"]

# id(module) -> seed, for every submodule of every model inside an active shared_draws context
_ACTIVE: contextvars.ContextVar[dict[int, int] | None] = contextvars.ContextVar("robustsweep_shared_draws",
                                                                               default=None)

_MASK64 = (1 << 64) - 1


@contextlib.contextmanager
def shared_draws(model: nn.Module, seed: int | None) -> Iterator[nn.Module]:
    """Within the block, every forward call of ``model`` (and of any of its submodules) that draws noise through
    this module uses ``torch.Generator().manual_seed(seed)``, re-seeded per call: equal batch sizes get equal noise.

    Yields ``model`` for convenience. Harmless for deterministic models and for models that sample from the global
    RNG directly (they ignore it). Nested contexts override the seed for their modules and restore it on exit.
    ``seed=None`` is a no-op (fresh draws), so callers can write one code path for shared and fresh draws.
    """
    if seed is None:
        yield model
        return
    seed = int(seed)
    active = dict(_ACTIVE.get() or {})
    for m in model.modules():
        active[id(m)] = seed
    token = _ACTIVE.set(active)
    try:
        yield model
    finally:
        _ACTIVE.reset(token)


def active_seed(module: nn.Module) -> int | None:
    """The seed of the innermost active :func:`shared_draws` context covering ``module``; None outside one."""
    active = _ACTIVE.get()
    return None if active is None else active.get(id(module))


def generator(module: nn.Module, device: torch.device | str) -> torch.Generator | None:
    """A freshly seeded generator for ``module`` if a :func:`shared_draws` context covers it, else None.

    Call it once per forward call and draw all of that call's noise from it (in a fixed order), so the noise is a
    function of the seed and the shapes only.
    """
    seed = active_seed(module)
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


def randn(module: nn.Module, shape: Sequence[int], device: torch.device | str | None = None,
          gen: torch.Generator | None = None) -> torch.Tensor:
    """Standard-normal noise of ``shape``: from ``gen`` if given, else from :func:`generator` (fixed, re-seeded
    per call) inside a :func:`shared_draws` context covering ``module``, else ``torch.randn`` on the global RNG
    exactly as without this module."""
    if gen is None:
        gen = generator(module, device if device is not None else "cpu")
    if gen is None:
        return torch.randn(*shape, device=device)
    return torch.randn(*shape, device=device, generator=gen)


def _known_stochastic(m: nn.Module) -> bool:
    if getattr(m, "stochastic", False):
        return True
    if isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
        return True
    # the causal head samples from the global RNG (does not take part); imported late: causal -> nets -> ...
    from robustsweep.models.causal import CausalHead

    return isinstance(m, CausalHead)


def is_stochastic(model: nn.Module) -> bool:
    """True if some submodule of ``model`` gives different outputs on repeated calls with the same input: modules
    that declare ``stochastic = True`` (deep-Bayes), the causal head, dropout in training mode.

    Attacks use it to spend extra queries (split ± batches, several draws) only where they can matter, and to leave
    deterministic models' results bit-for-bit unchanged.
    """
    return any(_known_stochastic(m) for m in model.modules())


def derive_seed(base: int, *keys: int) -> int:
    """A well-mixed 63-bit seed from ``base`` and integer ``keys`` (splitmix64), e.g. (attack seed, step, draw).

    Deterministic across processes (unlike ``hash``), and independent of any RNG state, so deriving seeds never
    changes the attack's other random choices.
    """
    z = int(base) & _MASK64
    for k in keys:
        z = (z ^ (int(k) & _MASK64)) + 0x9E3779B97F4A7C15 & _MASK64
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK64
        z ^= z >> 31
    return z >> 1
