"""Detectors register themselves on import; :func:`fit_detectors` builds and fits the ones a trial asks for."""
from __future__ import annotations

from typing import Any

import torch

from robustsweep.detect._common import NotApplicable, logits_of
from robustsweep.detect.base import Detector
from robustsweep.registry import DETECTORS, import_submodules

import_submodules(__name__, __path__, skip=("base",))  # every detector module registers itself: one new file each

_META = ("name", "label", "id")  # spec keys that are not detector parameters

__all__ = ["Detector", "NotApplicable", "detector_key", "fit_detectors"]


def detector_key(spec: dict[str, Any], taken: set[str]) -> str:
    """Column-friendly name of a detector spec: its ``label`` (or ``id``) if given, else its ``name``; a repeated
    name gets its parameters appended (``logit`` twice with different α -> ``logit`` and ``logit_alpha1.5``)."""
    label = spec.get("label", spec.get("id"))
    if label is not None:
        key = str(label)
    else:
        key = spec["name"]
        if key in taken:
            params = "_".join(f"{k}{v}" for k, v in sorted(spec.items()) if k not in _META)
            key = f"{key}_{params}" if params else key
    base, i = key, 2
    while key in taken:
        key, i = f"{base}_{i}", i + 1
    return key


def fit_detectors(
    specs: list[dict[str, Any]],
    model: torch.nn.Module,
    x_fit: torch.Tensor,
    y_fit: torch.Tensor,
    skip_inapplicable: bool = False,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Detector]:
    """Build every detector of ``specs`` (``{"name": "logit", "alpha": 1.5, "label": "logit15"}`` …; ``label``
    optional) and fit it on clean data.

    ``x_fit``/``y_fit`` must be clean training or validation data, never the test set. A detector whose registry
    entry declares ``calibration="validation"`` (paper 004's energy threshold) is fitted on ``val`` instead when given
    (clean validation inputs and labels); the others on ``x_fit`` (paper 001's rule: clean training data). Each
    fitted detector's ``fit_split`` says which ("validation" or "train"). Returns
    {key: fitted detector} in spec order (keys from :func:`detector_key`, used as ``det.<key>.*`` columns).
    A detector that does not apply to the model (``gmmvae-tau`` on a model without τ thresholds) raises
    :class:`NotApplicable` unless ``skip_inapplicable`` is set, in which case it is left out.

    Detectors that fit on the model's logits (``needs_fit_logits``: logit, KL, TV, ...) share one computation of the
    fit split's logits, as the deep-Bayes public code shares ``y_logit_train``. With a K × C-decoder generative
    classifier those logits cost most of the fit (3 detectors × 3,500 MNIST images at mini scale, issue 20).
    """
    out: dict[str, Detector] = {}
    shared: dict[bool, torch.Tensor] = {}  # the logits of each fit split, computed once for all detectors
    for spec in specs:
        params = {k: v for k, v in spec.items() if k not in _META}
        entry = DETECTORS.get(spec["name"])
        det = entry.fn(**params)
        on_val = val is not None and entry.meta.get("calibration") == "validation"
        x, y = val if on_val else (x_fit, y_fit)
        extra = {}
        if det.needs_fit_logits(model):
            if on_val not in shared:
                shared[on_val] = logits_of(model, x)
            extra["logits"] = shared[on_val]
        try:
            det.fit(model, x, y, **extra)
        except NotApplicable:
            if skip_inapplicable:
                continue
            raise
        det.fit_split = "validation" if on_val else "train"
        out[detector_key(spec, set(out))] = det
    return out
