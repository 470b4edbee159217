"""bootstrap_ci on scipy.stats.bootstrap gives the intervals of the hand-written percentile bootstrap it replaced
(kept here as the oracle): same seed handling (a numpy Generator from ``seed``), same resamples, same quantiles."""
from __future__ import annotations

import numpy as np
import pytest

from robustsweep.report.stats import bootstrap_ci


def bootstrap_ci_numpy(x: list[float], n_resamples: int = 1000, level: float = 0.95, seed: int = 0):
    """The implementation before scipy (commit c45c1f9), for two or more finite values."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _samples():
    g = np.random.default_rng(7)
    yield [0.5, 0.6]
    yield [0.1, 0.5, 0.2, 0.9]
    yield [0.25, 0.25, 0.25]  # all tied: the interval collapses
    yield [0.0, 1.0, 1.0, 1.0, 0.0]
    yield g.random(5).tolist()
    yield g.normal(size=30).tolist()
    yield g.integers(0, 3, 12).astype(float).tolist()  # ties


@pytest.mark.parametrize("values", list(_samples()))
@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("n_resamples,level", [(1000, 0.95), (200, 0.9)])
def test_bootstrap_matches_the_numpy_oracle(values, seed, n_resamples, level):
    got = bootstrap_ci(values, n_resamples=n_resamples, level=level, seed=seed)
    want = bootstrap_ci_numpy(values, n_resamples=n_resamples, level=level, seed=seed)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_bootstrap_small_cases_unchanged():
    assert bootstrap_ci([]) == (None, None)
    assert bootstrap_ci([None, float("nan")]) == (None, None)
    assert bootstrap_ci([0.4, None]) == (0.4, 0.4)
