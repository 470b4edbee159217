"""Decision regions and detector acceptance regions on a 2-D grid: what paper 001's Fig. 2 draws.

Fig. 2 ("Visualising detection mechanisms") shades, over the plane of the two-rings data, the class each point is
given and the area each detector (marginal, logit, KL, TV) rejects. A figure of regions needs the model, which a
report does not have, so with ``eval.decision_grid: {n}`` the trial evaluates the trained model and its fitted
detectors on an n × n grid over the training data's bounding box (10 % margin each side) and every row carries:

- ``ex.grid_n`` and ``ex.grid_extent`` ``[x0, x1, y0, y1]``; grid point (i, j) is at
  (x0 + (x1 - x0) j / (n - 1), y0 + (y1 - y0) i / (n - 1)), values stored row-major (i, then j);
- ``ex.grid_pred`` (predicted class) and ``ex.grid_pmax`` (largest class probability: ambiguity);
- ``det.<d>.grid_reject`` (1 = rejected) per detector, from the detector's own ``reject``;
- ``ex.grid_manifold_sigmas``: distance to the data manifold in noise σ where the data set knows it
  (``DataSplit.manifold_sigmas``; two-rings), so claims such as "far-away inputs are rejected" are model-free;
- ``ex.train_x`` / ``ex.train_y``: up to 600 training points for the scatter.

Only for 2-D inputs (a clear error otherwise). Runs under a forked RNG, so the metrics do not change.
"""
from __future__ import annotations

from typing import Any

import torch

from robustsweep.config.eval_options import DecisionGridSpec
from robustsweep.core.examples import forked_rng
from robustsweep.ops.batching import batched_logits, model_device

N_SCATTER = 600


def grid_points(x_train: torch.Tensor, n: int) -> tuple[torch.Tensor, list[float]]:
    """The n × n grid (n², 2), row-major, over the bounding box of ``x_train`` with a 10 % margin, and its extent."""
    lo, hi = x_train.min(0).values.double(), x_train.max(0).values.double()
    pad = 0.1 * (hi - lo).clamp_min(1e-6)
    lo, hi = lo - pad, hi + pad
    xs, ys = (torch.linspace(float(lo[k]), float(hi[k]), n, dtype=torch.float64) for k in (0, 1))
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.flatten(), gy.flatten()], dim=1).float()
    return pts, [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]


def grid_columns(model: torch.nn.Module, detectors: dict[str, Any], data, spec: DecisionGridSpec) -> dict[str, Any]:
    """The columns of the module docstring for one trained model and its fitted detectors."""
    if tuple(data.input_shape) != (2,):
        raise ValueError(f"eval.decision_grid needs 2-D inputs (two-rings); {data.name} has input shape "
                         f"{tuple(data.input_shape)}")
    n = spec.n
    pts, extent = grid_points(data.x_train, n)
    dev = model_device(model)
    cols: dict[str, Any] = {"ex.grid_n": float(n), "ex.grid_extent": extent}
    with forked_rng(dev), torch.no_grad():
        g = pts.to(dev)
        logits = batched_logits(model, g).float()
        cols["ex.grid_pred"] = logits.argmax(1).float().cpu().tolist()
        cols["ex.grid_pmax"] = logits.softmax(1).max(1).values.cpu().tolist()
        for name, det in detectors.items():
            cols[f"det.{name}.grid_reject"] = det.reject(model, g).float().cpu().tolist()
    if getattr(data, "manifold_sigmas", None) is not None:
        cols["ex.grid_manifold_sigmas"] = data.manifold_sigmas(pts).float().tolist()
    k = min(N_SCATTER, len(data.x_train))
    cols["ex.train_x"] = data.x_train[:k].flatten().float().tolist()
    cols["ex.train_y"] = data.y_train[:k].float().tolist()
    return cols
