"""Image grids from stored ``ex.*`` columns (report/images.py) and paper 004 Fig. 4's alignment measure."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from robustsweep.report.images import example_images, first_ok, grid_row, image_grid
from robustsweep.report.papers.p004_fig4 import alignment, prepared


def _row(n=3, shape=(1, 4, 5), seed=0, **kw):
    rng = np.random.default_rng(seed)
    clean = rng.random((n, *shape))
    return {"status": "ok", "seed": seed, "ex.shape": [float(n), *map(float, shape)],
            "ex.clean": clean.flatten().tolist(), "ex.adv": (clean * 0.5).flatten().tolist(),
            "ex.label": [0.0, 1.0, 2.0][:n], "ex.pred_adv": [0.0, 7.0, 2.0][:n], **kw}


def test_example_images_round_trip_the_flat_lists():
    r = _row()
    x = example_images(r, "ex.clean")
    assert x.shape == (3, 1, 4, 5)
    np.testing.assert_allclose(x.flatten(), r["ex.clean"], rtol=1e-6)
    assert example_images(r, "ex.recon_adv") is None  # absent column: no image, no crash


def test_grid_row_captions_mark_the_fooled_images():
    g = grid_row(_row(), "FGSM")
    assert g.captions == ["pred 0", "pred 7 ✗ (is 1)", "pred 2"]
    assert grid_row(_row(), "x", n=2).images.shape[0] == 2


def test_first_ok_takes_the_lowest_seed_with_images():
    df = pl.DataFrame([_row(seed=2), _row(seed=1), {**_row(seed=0), "status": "failed"}])
    assert first_ok(df, pl.lit(True))["seed"] == 1
    assert first_ok(df.drop("ex.adv"), pl.lit(True)) is None


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 6)])
def test_image_grid_writes_a_png_of_the_grid(tmp_path, shape):
    """Grey and RGB rows, a signed gradient row, and a row shorter than the others; the PNG grows with the grid."""
    r = _row(shape=shape)
    g1, g2 = grid_row(r, "clean", "ex.clean", None), grid_row(r, "adv", n=2)
    g3 = grid_row(r, "grad", "ex.adv", None, signed=True)
    small = image_grid([g1], tmp_path / "a.png", title="one row")
    big = image_grid([g1, g2, g3], tmp_path / "b.png", title="three rows")
    from matplotlib.image import imread

    ha, hb = imread(small).shape[0], imread(big).shape[0]
    assert hb > 2 * ha * 0.8  # three rows are about three times as tall as one
    empty = image_grid([None], tmp_path / "c.png")
    assert empty.is_file() and empty.stat().st_size > 0  # "no examples stored" figure, never a missing file


def test_alignment_is_abs_pearson_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 6, 6))
    g = -2.0 * x + 0.3 * rng.standard_normal(x.shape)  # a map that traces the image (negatively)
    want = np.mean([abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) for a, b in zip(x, g)])
    assert alignment(x, g) == pytest.approx(want, rel=1e-9)
    assert alignment(x, g) > 0.8 > alignment(x, rng.standard_normal(x.shape)) + 0.5
    assert alignment(np.ones((1, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3))) == 0.0  # constant image


def test_prepared_tells_regular_from_adversarially_trained_trials():
    base = _row(**{"ex.grad_clean": _row()["ex.clean"], "attack": "pgd"})
    df = pl.DataFrame([{**base, "cfg.train.adversarial.eps": None},
                       {**base, "seed": 1, "cfg.train.adversarial.eps": 0.2}])
    out = prepared(df)
    assert out["__kind"].to_list() == ["regular", "pgd-at"]
    assert out["__align"].to_list() == pytest.approx([1.0, 1.0])  # the map is the image itself
