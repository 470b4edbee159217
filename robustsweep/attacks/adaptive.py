"""Detector-aware ("adaptive") attacks: one mechanism that every gradient attack shares.

Why: a detector only counts as a defence against an attacker who knows it (Carlini & Wagner 2017; Tramèr et al.
2020). Paper 001's appendix A.1 (public code ``test_attacks/superwhite.py``) attacks the classifier and the detector
together -- PGD on CE - λ·relu(score - threshold) -- and paper 004's HE-PGD is the same idea with the raw energy.
Instead of one attack class per paper, every gradient attack (pgd, pgd-l2, fgsm, mim, ifgsm/bim, apgd, cw) takes

    detector_aware: {detector: LABEL, form: hinge | raw}      det_lambda: λ  (a scalar, or a list = the grid)

and ascends ``attack loss - λ · evasion(x)`` (CW, which minimises, adds it). ``evasion`` is the detector's own
differentiable term, per example: ``hinge`` = relu(score - fitted threshold), zero once the input is accepted (A.1);
``raw`` = the score itself (HE-PGD's λ·E(x)). λ = 0 adds nothing to the graph, so it is bit-identical to the plain
attack.

Layering: attacks sit below ``robustsweep.detect``, so they never look a detector up. ``core.evaluate`` replaces the
label by the trial's fitted detector object (fitted on clean training data first, exactly as the defender deploys
it) before calling the attack; here the detector is only a duck type with
``evasion(model, x, form="hinge", logits=None) -> (N,)`` (``logits``: the attack's own forward pass, so a
stochastic model's CE and detector term come from one draw and no extra pass is paid where the score is a
function of the logits). ``{lambda: ...}`` inside ``detector_aware`` is accepted as another spelling of
``det_lambda`` (``core.evaluate`` turns a list there into the ``det_lambda`` grid).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

FORMS = ("hinge", "raw")
_KEYS = ("detector", "form", "lambda")


@runtime_checkable
class Evasive(Protocol):
    """What a detector must offer to be named in ``detector_aware`` (every ``robustsweep.detect.base.Detector``
    declares it; attacks sit below ``detect`` and check this protocol instead of importing that class)."""

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "hinge",
                logits: torch.Tensor | None = None) -> torch.Tensor: ...


def hinge_or_raw(score: torch.Tensor, threshold: float | torch.Tensor, form: str) -> torch.Tensor:
    """The two evasion forms of one score (higher = more suspicious, rejected iff score > threshold): the hinge
    relu(score - threshold) is 0 on every accepted input, so the attacker stops paying once it is accepted; raw is
    the score itself (keeps pushing, as HE-PGD does)."""
    if form == "raw":
        return score
    if form == "hinge":
        return torch.relu(score - threshold)
    raise ValueError(f"detector_aware.form must be one of {FORMS}, got {form!r}")


@dataclass
class DetectorTerm:
    """λ and a bound evasion term: what :func:`robustsweep.attacks.base.loss_grad` subtracts (``lam * term.sum()``)."""

    detector: Evasive
    model: torch.nn.Module
    lam: float
    form: str

    def __call__(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        return self.detector.evasion(self.model, x, form=self.form, logits=logits)

    def accepted(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) bool: inputs the attack may stop at. Hinge: the term is 0 (the detector accepts); raw: always (a raw
        score has no acceptance point of its own)."""
        if self.form != "hinge":
            return torch.ones(len(x), dtype=torch.bool, device=x.device)
        with torch.no_grad():
            return self(x, logits) <= 0


def detector_term(model: torch.nn.Module, detector_aware: dict[str, Any] | None,
                  det_lambda: float | None = None) -> DetectorTerm | None:
    """The bound term of an attack's ``detector_aware``/``det_lambda`` arguments, or None (a plain attack).

    Errors name what is wrong: an unknown key or form, λ without a detector, a detector still given as a label
    (only ``core.evaluate`` can resolve it: list the detector under ``detectors:``), or one without ``evasion``.
    """
    if not detector_aware:
        if det_lambda is not None:
            raise ValueError("det_lambda is the weight of a detector-aware attack: give detector_aware too "
                             "({detector: LABEL, form: hinge|raw})")
        return None
    unknown = sorted(set(detector_aware) - set(_KEYS))
    if unknown:
        raise ValueError(f"detector_aware: unknown key(s) {unknown}; allowed: {', '.join(_KEYS)}")
    if "detector" not in detector_aware:
        raise ValueError("detector_aware needs 'detector': the label of one of the trial's detectors")
    if "lambda" in detector_aware and det_lambda is not None:
        raise ValueError("give λ once: detector_aware.lambda or det_lambda, not both")
    lam = detector_aware.get("lambda", 1.0 if det_lambda is None else det_lambda)
    if isinstance(lam, (list, tuple)):
        raise ValueError("detector_aware.lambda is a list: a λ grid is expanded by core.evaluate (or use det_lambda)")
    form = detector_aware.get("form", "hinge")
    if form not in FORMS:
        raise ValueError(f"detector_aware.form must be one of {FORMS}, got {form!r}")
    det = detector_aware["detector"]
    if isinstance(det, str):
        raise ValueError(f"detector_aware.detector = {det!r} is a label; core.evaluate resolves it to the trial's "
                         f"fitted detector (list it under detectors:); called directly, pass the fitted detector")
    if not isinstance(det, Evasive):
        raise TypeError(f"detector {type(det).__name__} has no differentiable evasion term "
                        f"(evasion(model, x, form, logits)); it cannot be named in detector_aware")
    if float(lam) == 0.0:
        return None  # nothing added to the graph: bit-identical to the plain attack
    return DetectorTerm(det, model, float(lam), form)


class EnergyEvasion:
    """The energy term of HE-PGD (paper 004 eq. 10-11) without a fitted threshold: raw score
    logsumexp(logits) = -E(x), the energy detector's own score for ``direction="low"``. Lives here (not in
    ``detect``) so the ``he-pgd`` preset can use it; ``detect.energy`` computes its score with :func:`energy_score`.
    """

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "raw",
                logits: torch.Tensor | None = None) -> torch.Tensor:
        if form != "raw":
            raise ValueError("the he-pgd energy term has no fitted threshold; use form 'raw' or the energy detector")
        return energy_score(model(x) if logits is None else logits)


def energy_score(logits: torch.Tensor, direction: str = "low") -> torch.Tensor:
    """-E(x) = logsumexp of the logits ("low": low energy is suspicious, paper 004 eq. 9), or E(x) ("high")."""
    neg_energy = torch.logsumexp(logits, dim=1)
    return -neg_energy if direction == "high" else neg_energy
