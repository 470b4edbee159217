"""Example images in the rows: the pixels behind the papers' image-grid figures.

Paper 001 Fig. 6 (clean vs CW examples), paper 002 Figs. 1-2 (one test image under every attack, DFZ and GFZ),
paper 003 Fig. 4 (white-box and fooling images with their reconstructions) and paper 004 Fig. 4 (input gradients of
a regular vs an adversarially trained model) all show *images*, which a metrics row does not hold. With
``eval.examples: {n, reconstruction, gradients}`` every row of a trial carries the first ``n`` attacked test points
(the same seeded subset the metrics are computed on) as flat ``ex.*`` lists, so a report redraws the figure from
the Parquet files alone, on a login node, without the model:

- on every row: ``ex.shape`` ``[n, C, H, W]``, ``ex.clean`` (the n inputs, C-order), ``ex.label`` and
  ``ex.pred_clean`` (the clean predictions the metrics used); with ``gradients`` ``ex.grad_clean`` (d CE / d x,
  :func:`robustsweep.ops.metrics.input_gradients`); with ``reconstruction`` ``ex.recon_clean``; for a selective
  classifier ``ex.rejected_clean``;
- on every attack row: ``ex.adv`` (this row's adversarials of those n inputs) and ``ex.pred_adv`` (the predictions
  the metrics used); with ``reconstruction`` ``ex.recon_adv``; for a selective classifier ``ex.rejected_adv``; for
  a targeted attack ``ex.target``.

Why the predictions are the evaluator's own and the extra passes run under a forked RNG: a deep-Bayes model's
logits are Monte-Carlo estimates, so a fresh prediction could disagree with the one the metrics counted, and any
extra draw would shift the random state every later attack of the trial starts from. With the fork, a trial's
metrics are the same with and without examples (tested on a stochastic GFZ) -- except where an attack entry's own
``n_eval`` prefix would leave chosen example images out: then the examples come first (:func:`examples_first`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from robustsweep.config.eval_options import ExamplesSpec
from robustsweep.ops.batching import model_device
from robustsweep.ops.metrics import input_gradients


@contextlib.contextmanager
def forked_rng(device: torch.device) -> Iterator[None]:
    """Run the block under a copy of the RNG state (CPU, and ``device`` when it is a GPU), restored afterwards."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
        else []
    with torch.random.fork_rng(devices=devices):
        yield


def can_reconstruct(model: torch.nn.Module) -> bool:
    """Whether the model has an encoder mean and a decoder (the GMM-VAE of paper 003)."""
    return callable(getattr(model, "encode_mean", None)) and callable(getattr(model, "decode", None))


def reconstruct(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """g(f(x)): the decoder's image of the encoder mean -- the reconstruction paper 003's τ_dec thresholds."""
    with torch.no_grad():
        return model.decode(model.encode_mean(x)).reshape(x.shape)


def example_indices(y: torch.Tensor, spec: ExamplesSpec) -> torch.Tensor:
    """Which attacked points are kept: the first ``n``, or with ``labels`` the first point of each listed class (in
    that order; absent classes skipped)."""
    labels = spec.labels
    if not labels:
        return torch.arange(min(spec.n, len(y)))
    yc = y.cpu()
    labels = list(dict.fromkeys(labels))  # a class listed twice is one example (one point, attacked once)
    hits = [int(torch.nonzero(yc == c)[0]) for c in labels if bool((yc == c).any())]
    return torch.tensor(hits, dtype=torch.long)


def examples_first(idx: torch.Tensor, n_points: int, prefixes: list[int]) -> torch.Tensor | None:
    """An order of the attacked points that puts the kept example points ``idx`` first, or None to keep the order.

    Why: an attack entry with its own ``n_eval: n`` attacks the first n points only (a prefix of the seeded subset).
    Where the chosen example images (``labels``: the first test digit of each listed class) are not all among them,
    that attack's rows could not show them (paper 003 mini: eq. 10 / 11 on 10 points, Fig. 4's digits 0-5). Moving
    the examples to the front -- the same points, reordered -- puts them in every prefix of at least ``len(idx)``
    points. Only done where a prefix that could hold every example leaves one out, so a trial without such an attack
    keeps its order and its metrics; with one, every prefix entry's n points are the examples and then the
    subset's next points (an entry's prefix shorter than the examples shows none of them in any case).
    """
    in_place = torch.equal(idx.cpu(), torch.arange(len(idx)))  # the first n points: already in front
    # only where it helps: a prefix long enough to hold every example that now leaves one out
    if len(idx) == 0 or in_place or not any(len(idx) <= n <= int(idx.max()) for n in prefixes):
        return None
    taken = torch.zeros(n_points, dtype=torch.bool)
    taken[idx.cpu()] = True
    return torch.cat([idx.cpu(), torch.nonzero(~taken).flatten()])


def within_prefix(cols: dict[str, Any], idx: torch.Tensor, n: int) -> tuple[dict[str, Any], torch.Tensor | None]:
    """The trial-level ``ex.*`` columns and example indices of a row that attacks only the first ``n`` points: the
    kept examples among those n (paper 001 mini's CW on 2 of 10 points shows those 2 of Fig. 6's images, paper 002's
    ZOO on 1 point its first). None for the indices where no example is among them (the row then has no images of
    its own). Every per-example list is cut to the kept examples and ``ex.shape`` says how many, so a row's
    ``ex.*`` columns always describe the same images."""
    keep = idx < n
    if bool(keep.all()):
        return cols, idx
    if not bool(keep.any()):
        return cols, None
    pos = torch.nonzero(keep).flatten().tolist()
    total = len(idx)
    out = dict(cols)
    for key, v in cols.items():
        if key == "ex.shape" or not key.startswith("ex.") or not isinstance(v, list) or len(v) % total:
            continue
        per = len(v) // total
        out[key] = [e for i in pos for e in v[i * per:(i + 1) * per]]
    if isinstance(cols.get("ex.shape"), list):
        out["ex.shape"] = [float(len(pos)), *cols["ex.shape"][1:]]
    return out, idx[keep]


def _flat(t: torch.Tensor) -> list[float]:
    return t.detach().float().cpu().flatten().tolist()


def trial_columns(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, pred_clean: torch.Tensor,
                  spec: ExamplesSpec, idx: torch.Tensor | None = None) -> dict[str, Any]:
    """The columns every row of the trial shares (module docstring); ``x``, ``y``, ``pred_clean`` are the whole
    attacked subset, of which the points :func:`example_indices` picks (``idx``) are kept."""
    idx = example_indices(y, spec) if idx is None else idx
    xs, ys = x[idx.to(x.device)], y[idx.to(y.device)]
    cols: dict[str, Any] = {"ex.shape": [float(d) for d in xs.shape], "ex.clean": _flat(xs),
                            "ex.label": _flat(ys), "ex.pred_clean": _flat(pred_clean[idx.to(pred_clean.device)])}
    with forked_rng(model_device(model)):
        if spec.gradients:
            cols["ex.grad_clean"] = _flat(input_gradients(model, xs, ys.to(xs.device)))
        if spec.reconstruction:
            cols["ex.recon_clean"] = _flat(reconstruct(model, xs)) if can_reconstruct(model) else None
        if (rej := _rejected(model, xs)) is not None:
            cols["ex.rejected_clean"] = rej
    return cols


def _rejected(model: torch.nn.Module, x: torch.Tensor) -> list[float] | None:
    """The model's own reject option on ``x`` (paper 003's τ_enc / τ_dec), or None for a model without one."""
    if not callable(getattr(model, "predict_with_reject", None)):
        return None
    with torch.no_grad():
        return _flat(model.predict_with_reject(x)[1])


def row_columns(model: torch.nn.Module, x_adv: torch.Tensor, pred_adv: torch.Tensor, spec: ExamplesSpec,
                target: torch.Tensor | None = None, idx: torch.Tensor | None = None) -> dict[str, Any]:
    """One attack row's columns: its adversarials of the kept inputs (``idx``, default the first ``n``) and the
    predictions the metrics counted; ``ex.target`` for a targeted attack (eq. 10 / 11: the class each image was
    pushed to) and, for a selective classifier, ``ex.rejected_adv`` (1 = rejected by its own thresholds, as its
    success metric counts)."""
    idx = torch.arange(min(spec.n, len(x_adv))) if idx is None else idx
    xa = x_adv[idx.to(x_adv.device)]
    cols: dict[str, Any] = {"ex.adv": _flat(xa), "ex.pred_adv": _flat(pred_adv[idx.to(pred_adv.device)])}
    if target is not None:
        cols["ex.target"] = _flat(target[idx.to(target.device)])
    with forked_rng(model_device(model)):
        if (rej := _rejected(model, xa)) is not None:
            cols["ex.rejected_adv"] = rej
        if spec.reconstruction:
            cols["ex.recon_adv"] = _flat(reconstruct(model, xa)) if can_reconstruct(model) else None
    return cols
