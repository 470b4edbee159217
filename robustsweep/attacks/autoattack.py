"""AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"): the ensemble RobustBench and most reviewers take as the robust-accuracy headline.

The components run one after the other, each on the points every earlier one left correctly classified (points
misclassified clean are never attacked); a point takes the adversarial of the first component that fools it, and
the others keep their clean input. Versions (``version``, as in the original):

- ``standard``: APGD-CE, APGD-T (targeted DLR, every other class), FAB-T, Square (5000 queries);
- ``rand`` (randomised defences, e.g. our stochastic deep-Bayes models): APGD-CE and APGD-DLR, each with EOT over
  20 draws (``eot_iter=20`` in the original);
- ``custom``: the components listed in ``attacks``, in that order, from ``apgd-ce``, ``apgd-dlr``, ``apgd-t``,
  ``fab``, ``fab-t``, ``square``.

**Component rows.** The registry entry declares ``components`` (:func:`components`: the version's list of
:class:`Component`, each a label, an attack function and its parameters) and :func:`sequence` is the bookkeeping
above (both in :mod:`robustsweep.attacks.base`: any ensemble may declare ``components``).
:func:`robustsweep.core.craft.grid_points` runs the same two on the trial's attacked points and yields one
row per component -- ``autoattack/apgd-ce``, ``autoattack/apgd-t``, … (``<label>/<component>`` for an entry with a
``label``) -- holding the *cumulative* adversarials after that component (robust accuracy after it, as AutoAttack
prints), then the ``autoattack`` row itself (the same as the last). Calling :func:`autoattack` directly gives the
final adversarials only.

From whom: the components are torchattacks 3.5.1's classes (ports of github.com/fra31/auto-attack), run through
:mod:`robustsweep.attacks._torchattacks`; the sequence is torchattacks' ``MultiAttack`` / the original's
``run_standard_evaluation``, and with the same ``seed`` and settings the result equals
``torchattacks.AutoAttack(..., seed=seed)`` bit for bit (tested). Choices made:

- ``steps`` defaults to the original's 100 iterations per APGD / APGD-T / FAB run (torchattacks' AutoAttack keeps
  its classes' default of 10); ``queries`` (Square's, 5000) is the knob ``--smoke`` cuts;
- one ``seed`` for every component, as both implementations do; None (default) draws it from the trial's stream;
- ``eot``: None = the version's own (20 for ``rand``, 1 otherwise), an int overrides it for the APGD components;
- the number of classes is read off the model; ``standard`` (APGD-T's loss) needs four or more;
- ``restarts`` (default 1, as in ``standard`` and ``rand``) is every component's ``n_restarts``; the ``plus``
  version is not offered (``custom`` with ``restarts: 5`` comes close);
- not detector-aware (torchattacks' losses cannot carry our detector term: use ``apgd`` with ``detector_aware``);
  the original's check for randomised outputs is left to the spec validation (issue 38 part 5).
"""
from __future__ import annotations

import collections
import inspect
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge

from robustsweep.attacks._torchattacks import Norm, check_eps, draw_seed, run
from robustsweep.attacks.apgd_t import apgd_t
from robustsweep.attacks.base import Component, norm_param, sequence
from robustsweep.attacks.fab import fab
from robustsweep.attacks.square import square
from robustsweep.registry import ATTACKS

#: what each version runs, in order (Croce & Hein's ``version='standard'`` / ``'rand'``)
VERSIONS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"), "rand": ("apgd-ce", "apgd-dlr")}
#: the names a ``custom`` version may list (the original's)
NAMES = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
#: EOT draws of the APGD components of ``version: rand`` (the original's ``eot_iter``)
RAND_EOT = 20


def _apgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, steps: int, loss: str,
          eot: int, restarts: int, seed: int) -> torch.Tensor:
    """torchattacks' APGD (CE or DLR loss, L∞ or L2): AutoAttack's first components (our ``apgd`` is L∞ only)."""
    return run("APGD", model, x, y, seed, norm=norm, eps=eps, steps=steps, n_restarts=restarts, loss=loss,
               eot_iter=eot)


def components(params: Mapping[str, Any]) -> list[Component]:
    """The components an ``autoattack`` entry runs, from its parameters (the file's; signature defaults fill the
    rest). A ``seed`` of None is drawn here, once, from the global generator: every component gets the same one."""
    p = {**_DEFAULTS, **params}
    version, names = p["version"], p["attacks"]
    if version not in (*VERSIONS, "custom"):
        raise ValueError(f"autoattack: version must be standard, rand or custom, got {version!r}")
    if version == "custom":
        if not names:
            raise ValueError(f"autoattack: version custom needs attacks: a list from {', '.join(NAMES)}")
        if unknown := [n for n in names if n not in NAMES]:
            raise ValueError(f"autoattack: unknown component(s) {unknown}; allowed: {', '.join(NAMES)}")
    elif names is not None:
        raise ValueError(f"autoattack: attacks is the list of a custom version (version: {version} runs "
                         f"{', '.join(VERSIONS[version])})")
    if p["norm"] not in ("Linf", "L2"):
        raise ValueError(f"autoattack: norm must be Linf or L2, got {p['norm']!r}")
    check_eps("autoattack", p["eps"])
    eot = p["eot"] if p["eot"] is not None else (RAND_EOT if version == "rand" else 1)
    common = {"eps": p["eps"], "norm": p["norm"], "restarts": p["restarts"], "seed": draw_seed(p["seed"])}
    steps = {**common, "steps": p["steps"]}
    make = {
        "apgd-ce": lambda: Component("apgd-ce", _apgd, {**steps, "loss": "ce", "eot": eot}),
        "apgd-dlr": lambda: Component("apgd-dlr", _apgd, {**steps, "loss": "dlr", "eot": eot}),
        "apgd-t": lambda: Component("apgd-t", apgd_t, {**steps, "eot": eot}),
        "fab": lambda: Component("fab", fab, {**steps, "targeted": False}),
        "fab-t": lambda: Component("fab-t", fab, {**steps, "targeted": True}),
        "square": lambda: Component("square", square, {**common, "queries": p["queries"]}),
    }
    return [make[n]() for n in (names if version == "custom" else VERSIONS[version])]


@torch.no_grad()
def _argmax(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


@ATTACKS.register("autoattack", norm=norm_param("norm"), budget="eps", threat="white-box", queries="queries",
                  components=components)
def autoattack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 8 / 255,
    norm: Norm = "Linf",
    version: Literal["standard", "rand", "custom"] = "standard",
    attacks: list[str] | None = None,
    steps: Annotated[int, Ge(1)] = 100,
    queries: Annotated[int, Ge(1)] = 5000,
    eot: Annotated[int, Ge(1)] | None = None,
    restarts: Annotated[int, Ge(1)] = 1,
    seed: int | None = None,
) -> torch.Tensor:
    """AutoAttack (Croce & Hein 2020): its components in turn, each on the points still robust (torchattacks').

    ``version``: standard (APGD-CE, APGD-T, FAB-T, Square), rand (APGD-CE, APGD-DLR, EOT 20), custom (``attacks``)."""
    comps = components({"eps": eps, "norm": norm, "version": version, "attacks": attacks, "steps": steps,
                        "queries": queries, "eot": eot, "restarts": restarts, "seed": seed})
    if eps == 0:
        return x.clone()
    stages = sequence(comps, x, y, _argmax(model, x), lambda c, xs, ys: c.fn(model, xs, ys, **c.params),
                      lambda xa: _argmax(model, xa))
    return collections.deque(stages, maxlen=1)[0][1]  # the last stage's adversarials


#: the signature defaults :func:`components` fills in for the parameters a file leaves out
_DEFAULTS = {k: p.default for k, p in inspect.signature(autoattack).parameters.items() if p.default is not p.empty}
