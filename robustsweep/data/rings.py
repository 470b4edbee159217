"""The synthetic "two rings" data of Fig. 2 in Li, Bradshaw & Sharma (2019) (seeds/001_c207276a6492ab58.txt).

Generative process (paper, Sec. 3): y ~ Bern(0.5), theta ~ U(0, 2 pi), x | y ~ N(c_y + r_y [cos theta, sin theta],
sigma^2 I). The paper does not print c_y, r_y or sigma; our defaults are two unit-radius rings whose centres are
one radius apart, ``c_0 = (-0.5, 0)``, ``c_1 = (0.5, 0)``, ``r = 1``, ``sigma = 0.1``. The rings then cross at
(0, +-sqrt(3)/2) -- the "ring-cross" regions where the paper's TV detector rejects ambiguous inputs -- while most
of each ring is well separated from the other at this noise level.

Attacks clip to [0, 1], so by default (``scale01=True``) the points are mapped into the unit square by one fixed,
*isotropic* affine map (x' = scale * x + offset) chosen from the geometry alone (bounding box of both rings plus a
5 sigma margin, centred), so distances, and hence the Gaussian ring likelihood, keep their shape.
:func:`two_rings_geometry` returns the geometry in the same coordinates the loader emits, so an exact
ring-distance generative classifier p(x | y) = N(x; mu_y(x), sigma^2 I) with mu_y(x) = the nearest point on
ring y can be built elsewhere.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..registry import DATASETS
from ._util import check_val_fits, split_off_validation
from .base import DataSplit

DEFAULT_CENTERS: tuple[tuple[float, float], tuple[float, float]] = ((-0.5, 0.0), (0.5, 0.0))
DEFAULT_RADII: tuple[float, float] = (1.0, 1.0)
DEFAULT_SIGMA = 0.1
MARGIN_SIGMAS = 5.0  # P(|N(0,1)| > 5) ~ 6e-7: clamping to [0, 1] essentially never changes a point


@dataclass(frozen=True)
class RingGeometry:
    """Ring centres (2, 2), radii (2,), noise sigma, all in the coordinates of the emitted data.

    ``scale`` / ``offset`` give the map from the paper's raw coordinates to these ones (identity when
    ``scale01=False``): x_emitted = scale * x_raw + offset.
    """

    centers: np.ndarray
    radii: np.ndarray
    sigma: float
    scale: float = 1.0
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def to_raw(self, x: np.ndarray) -> np.ndarray:
        """Map emitted points (N, 2) back to the paper's raw coordinates."""
        return (np.asarray(x, dtype=np.float64) - self.offset) / self.scale

    def ring_distance(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Euclidean distance from each point (N, 2) to each ring, shape (N, 2): | ||x - c_y|| - r_y |."""
        xt = torch.as_tensor(x, dtype=torch.float64)
        c = torch.as_tensor(self.centers, dtype=torch.float64)
        r = torch.as_tensor(self.radii, dtype=torch.float64)
        return (torch.linalg.vector_norm(xt[:, None, :] - c[None], dim=-1) - r[None]).abs()


def two_rings_geometry(
    centers: Sequence[Sequence[float]] = DEFAULT_CENTERS,
    radii: Sequence[float] = DEFAULT_RADII,
    sigma: float = DEFAULT_SIGMA,
    scale01: bool = True,
) -> RingGeometry:
    """Geometry of the ``two-rings`` data for the same options as the loader, in the loader's output coordinates."""
    c = np.asarray(centers, dtype=np.float64)
    r = np.asarray(radii, dtype=np.float64)
    if c.shape != (2, 2) or r.shape != (2,):
        raise ValueError(f"two-rings: need 2 centres of 2 coordinates and 2 radii, got {c.shape} and {r.shape}")
    if sigma <= 0 or (r <= 0).any():
        raise ValueError("two-rings: sigma and radii must be positive")
    if not scale01:
        return RingGeometry(centers=c, radii=r, sigma=float(sigma))
    pad = r[:, None] + MARGIN_SIGMAS * sigma
    lo, hi = (c - pad).min(axis=0), (c + pad).max(axis=0)
    scale = 1.0 / float((hi - lo).max())  # isotropic: the longer side spans [0, 1], the shorter one is centred
    offset = 0.5 - scale * (lo + hi) / 2.0
    return RingGeometry(centers=c * scale + offset, radii=r * scale, sigma=float(sigma) * scale, scale=scale, offset=offset)


def _sample(n: int, rng: np.random.Generator, c: np.ndarray, r: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, size=n)  # Bern(0.5)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    on_ring = c[y] + r[y, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return on_ring + sigma * rng.standard_normal((n, 2)), y


@DATASETS.register("two-rings", shape=(2,), classes=2, staged=False)
def two_rings(
    root: Path,
    seed: int,
    n_train: int = 2000,
    n_test: int = 2000,
    centers: tuple[tuple[float, float], tuple[float, float]] = DEFAULT_CENTERS,
    radii: tuple[float, float] = DEFAULT_RADII,
    sigma: float = DEFAULT_SIGMA,
    scale01: bool = True,
    val_size: int = 0,
) -> DataSplit:
    """Synthetic 2-D "two rings" of Li et al. 2019 Fig. 2 (2 x 1000 training points); optionally mapped into [0, 1].

    ``val_size`` of the ``n_train`` drawn training points (a count) are held out, stratified, as validation (default
    none); the test draw is unaffected.
    """
    val_size = check_val_fits("two-rings", val_size, int(n_train))
    raw = two_rings_geometry(centers, radii, sigma, scale01=False)
    geo = two_rings_geometry(centers, radii, sigma, scale01=scale01)
    out = []
    for stream, n in ((0, n_train), (1, n_test)):
        x, y = _sample(int(n), np.random.default_rng([seed, stream]), raw.centers, raw.radii, raw.sigma)
        x = x * geo.scale + geo.offset
        if scale01:
            x = np.clip(x, 0.0, 1.0)
        out += [torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))]
    x_tr, y_tr, x_val, y_val = split_off_validation("two-rings", out[0], out[1], val_size, seed)
    return DataSplit("two-rings", x_tr, y_tr, *out[2:], num_classes=2, class_names=["ring 0", "ring 1"],
                     x_val=x_val, y_val=y_val, manifold_sigmas=functools.partial(_sigmas_from_rings, geo))


def _sigmas_from_rings(geo: RingGeometry, x: torch.Tensor) -> torch.Tensor:
    """Distance of each point (N, 2) to the nearer ring, in units of the ring noise σ (``DataSplit.manifold_sigmas``)."""
    return (geo.ring_distance(x.detach().cpu()).min(dim=1).values / geo.sigma).float()
