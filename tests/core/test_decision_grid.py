"""Paper 001 Fig. 2: the ring generative classifier (models/ring_gen.py), the decision grid a trial stores
(core/decision_grid.py) and the report's reading of it (report/papers/p001_fig2.py)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from robustsweep.config.eval_options import DecisionGridSpec
from robustsweep.core.decision_grid import grid_columns, grid_points
from robustsweep.data import load_dataset, two_rings_geometry
from robustsweep.detect import fit_detectors
from robustsweep.ops.train import TrainConfig, fit
from robustsweep.registry import MODELS


@pytest.fixture(scope="module")
def rings():
    data = load_dataset("two-rings", seed=0)
    m = MODELS.get("ring-gen").fn(input_shape=data.input_shape, num_classes=2)
    fit(m, data, TrainConfig(epochs=1), torch.device("cpu"))
    return data, m.eval()


def test_fitted_rings_match_the_generating_geometry(rings):
    """Moment estimates of centres, radii and σ agree with the geometry the data were drawn from."""
    _, m = rings
    geo = two_rings_geometry()
    # a class mean of ~1,000 points spread uniformly on a circle of radius r: std r / sqrt(2000) per coordinate
    assert np.allclose(m.centers.numpy(), geo.centers, atol=4 * geo.radii.max() / np.sqrt(2000))
    assert np.allclose(m.radii.numpy(), geo.radii, rtol=0.03)
    assert float(m.log_sigma.exp()) == pytest.approx(geo.sigma, rel=0.1)


def test_logits_are_the_ring_likelihood(rings):
    """log p(x, y) by hand: Gaussian in the radial residual around the fitted ring, plus the log prior."""
    data, m = rings
    x = data.x_test[:7]
    var = float(m.log_sigma.exp()) ** 2
    resid = (x[:, None, :] - m.centers[None]).norm(dim=-1) - m.radii[None]
    want = -0.5 * resid ** 2 / var - 0.5 * 2 * np.log(2 * np.pi * var) + m.log_prior[None]
    assert torch.allclose(m(x), want, atol=1e-4)


def test_grid_columns_are_the_model_and_detectors_on_the_grid(rings):
    data, m = rings
    dets = fit_detectors([{"name": "marginal", "target_fpr": 0.1}, {"name": "tv", "target_fpr": 0.1}], m,
                         data.x_train, data.y_train)
    cols = grid_columns(m, dets, data, DecisionGridSpec(n=30))
    pts, extent = grid_points(data.x_train, 30)
    assert cols["ex.grid_extent"] == extent and len(cols["ex.grid_pred"]) == 900
    # row-major: point (i, j) sits at x = x0 + (x1 - x0) j / (n - 1), y = y0 + (y1 - y0) i / (n - 1)
    i, j = 7, 22
    x0, x1, y0, y1 = extent
    p = torch.tensor([[x0 + (x1 - x0) * j / 29, y0 + (y1 - y0) * i / 29]])
    assert torch.allclose(pts[i * 30 + j], p[0], atol=1e-6)
    assert cols["ex.grid_pred"][i * 30 + j] == float(m(p).argmax(1))
    for d, det in dets.items():
        assert cols[f"det.{d}.grid_reject"] == det.reject(m, pts).float().tolist()
    geo = two_rings_geometry()
    want = geo.ring_distance(pts).min(1).values / geo.sigma
    assert np.allclose(cols["ex.grid_manifold_sigmas"], want.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="2-D inputs"):
        grid_columns(m, dets, load_dataset("digits", seed=0), DecisionGridSpec(n=10))


def _grid_row(reject: dict[str, list[float]], sig: list[float], pmax: list[float]) -> dict:
    n = 2
    row = {"status": "ok", "seed": 0, "ex.grid_n": float(n), "ex.grid_extent": [0.0, 1.0, 0.0, 1.0],
           "ex.grid_pred": [0.0, 1.0, 0.0, 1.0], "ex.grid_pmax": pmax, "ex.grid_manifold_sigmas": sig,
           "ex.train_x": [0.2, 0.2, 0.8, 0.8], "ex.train_y": [0.0, 1.0]}
    for d, r in reject.items():
        row[f"det.{d}.grid_reject"], row[f"det.{d}.fpr"] = r, 0.1
    return row


def test_report_reads_the_grid(tmp_path):
    """Point 0 far (6σ), points 1-3 on the data; point 1 ambiguous. Marginal / logit reject the far one, KL and TV
    not; TV rejects the ambiguous one: every claim holds. Swapped, the verdicts follow the numbers."""
    from robustsweep.report.papers import PaperContext
    from robustsweep.report.papers.p001_fig2 import EXPERIMENT, build_fig2

    sig, pmax = [6.0, 0.5, 1.0, 0.2], [0.99, 0.6, 0.95, 0.97]
    good = {"marginal": [1.0, 0, 0, 0], "logit": [1.0, 0, 0, 0], "kl": [0.0, 0, 0, 0], "tv": [0.0, 1.0, 0, 0]}
    (sec,) = build_fig2(PaperContext({EXPERIMENT: pl.DataFrame([_grid_row(good, sig, pmax)])}, tmp_path, "ci"))
    assert {c.name: c.holds for c in sec.checks} == {"fig2-far-rejected": True, "fig2-kl-tv-not-manifold-aware": True,
                                                     "fig2-tv-rejects-ambiguous": True}
    t = sec.tables[0]
    from robustsweep.report.papers.p001_fig2 import COLUMNS

    cell = t.numeric.filter((pl.col("row") == "TV") & (pl.col("column") == COLUMNS["ambiguous"]))["mean"]
    assert not t.missing and cell.item() == pytest.approx(1.0)
    bad = {"marginal": [0.0, 0, 0, 0], "logit": [1.0, 0, 0, 0], "kl": [1.0, 0, 0, 0], "tv": [0.0, 0, 1.0, 0]}
    (sec,) = build_fig2(PaperContext({EXPERIMENT: pl.DataFrame([_grid_row(bad, sig, pmax)])}, tmp_path, "ci"))
    assert {c.name: c.holds for c in sec.checks} == {"fig2-far-rejected": False, "fig2-kl-tv-not-manifold-aware": False,
                                                     "fig2-tv-rejects-ambiguous": False}
    (sec,) = build_fig2(PaperContext({}, tmp_path, "ci"))  # not run: dashes and "not evaluated"
    assert all(c.holds is None for c in sec.checks) and (tmp_path / "figures" / "fig2_two_rings.png").is_file()
