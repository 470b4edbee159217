"""The names of the result columns built from parts, in one torch-free place.

A row's fixed columns are listed in :mod:`robustsweep.store.schema`; the open families are built here:
``det.<detector>.<metric>``, ``m.<metric>``, ``ex.<name>``, ``cfg.<dotted.key>`` and ``atk.<dotted.key>`` (the row's
attack settings, flattened like the config: scalars keep their type, lists are JSON strings). Why one module: the writer
(``core/``) and every reader (``report/``, ``query``) must agree on a spelling, and a typo in one f-string among
dozens is a column that silently reads as empty. This module imports nothing of the project, so a login node's
report code can use it.

``kind`` says what a row measures, instead of telling rows apart by name prefixes of ``attack``:
``clean`` (the clean-only row, ``attack = none``), ``attack``, ``counterfactual`` (paper 000's counterfactual
speed, ``attack = cf-<method>``), ``retrain`` (remove-and-retrain, ``attack = roar-<method>``) and ``worst_case``
(per example the worst over every attack of one norm and budget, ``attack = worst-case``).
"""
from __future__ import annotations

DET, METRIC, EXAMPLE, CONFIG, ATTACK_PARAM = "det.", "m.", "ex.", "cfg.", "atk."
PREFIXES = (CONFIG, DET, METRIC, EXAMPLE, ATTACK_PARAM)  # the open column families a row may carry

KIND = "kind"
CLEAN, ATTACK, COUNTERFACTUAL, RETRAIN, WORST_CASE = "clean", "attack", "counterfactual", "retrain", "worst_case"
KINDS = (CLEAN, ATTACK, COUNTERFACTUAL, RETRAIN, WORST_CASE)


def det(detector: str, metric: str) -> str:
    """``det.<detector>.<metric>``: one detector's metric on a row (its label from the experiment file)."""
    return f"{DET}{detector}.{metric}"


def det_prefix(detector: str) -> str:
    """``det.<detector>.``: every column of one detector starts with this."""
    return f"{DET}{detector}."


def metric(name: str) -> str:
    """``m.<name>``: an extra metric (``m.min_perturbation``, ``m.cf_speed``…)."""
    return f"{METRIC}{name}"


def example(name: str) -> str:
    """``ex.<name>``: an example-image column (``eval.examples``)."""
    return f"{EXAMPLE}{name}"


def config(dotted: str) -> str:
    """``cfg.<dotted.key>``: one setting of the flattened trial config."""
    return f"{CONFIG}{dotted}"


def attack_param(dotted: str) -> str:
    """``atk.<dotted.key>``: one setting of the row's attack (``atk.eps``, ``atk.detector_aware.form``)."""
    return f"{ATTACK_PARAM}{dotted}"


def split_det(column: str) -> tuple[str, str] | None:
    """``det.<detector>.<metric>`` -> (detector, metric); None for any other column. The metric is the last dotted
    part: a detector label may hold dots, a metric name never does."""
    if not column.startswith(DET):
        return None
    detector, _, name = column[len(DET):].rpartition(".")
    return (detector, name) if detector and name else None


def detectors_of(columns: list[str]) -> list[str]:
    """The detector labels that have columns among ``columns``, in first-seen order."""
    out: list[str] = []
    for c in columns:
        parts = split_det(c)
        if parts and parts[0] not in out:
            out.append(parts[0])
    return out


def kind_of_attack(attack: str | None) -> str:
    """The ``kind`` of a row written before the ``kind`` column existed, from its ``attack`` name (the old rule)."""
    if attack is None or attack == "none":
        return CLEAN
    if attack.startswith("cf-"):
        return COUNTERFACTUAL
    if attack.startswith("roar-"):
        return RETRAIN
    if attack == "worst-case":
        return WORST_CASE
    return ATTACK
