"""Binned detector-score histograms (paper 004 Fig. 2(a)/3(a)): counts against a brute-force loop, shared edges,
the overlap coefficient at its known extremes, and the opt-in through the detector's ``hist_bins``."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.ops.metrics import detection_metrics, score_histogram


def _brute(scores: list[float], edges: list[float]) -> list[int]:
    """Bin i holds edges[i] <= s < edges[i+1]; the last bin also holds s == edges[-1]."""
    out = [0] * (len(edges) - 1)
    for s in scores:
        for i in range(len(out)):
            last = i == len(out) - 1
            if edges[i] <= s < edges[i + 1] or (last and s == edges[i + 1]):
                out[i] += 1
                break
    return out


def test_counts_equal_brute_force_on_shared_edges():
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(500, generator=g)
    adv = torch.randn(137, generator=g) * 0.5 + 1.5
    adv[0] = float("nan")  # non-finite scores are not counted
    h = score_histogram(clean, adv, bins=17)
    edges = h["hist_edges"]
    assert len(edges) == 18 and edges[0] == pytest.approx(float(clean.min().clamp(max=adv[1:].min())))
    assert edges[-1] == pytest.approx(max(float(clean.max()), float(adv[1:].max())))
    assert h["hist_clean"] == _brute(clean.tolist(), edges)
    assert h["hist_adv"] == _brute(adv[1:].tolist(), edges)
    assert sum(h["hist_clean"]) == 500 and sum(h["hist_adv"]) == 136  # the maxima land in the last bin
    p = [c / 500 for c in h["hist_clean"]]
    q = [c / 136 for c in h["hist_adv"]]
    assert h["hist_overlap"] == pytest.approx(sum(min(a, b) for a, b in zip(p, q)))


def test_overlap_extremes_and_degenerate_inputs():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert score_histogram(x, x.clone(), bins=4)["hist_overlap"] == pytest.approx(1.0)  # identical: worthless
    assert score_histogram(x, x + 10.0, bins=4)["hist_overlap"] == pytest.approx(0.0)  # disjoint: perfect
    one = score_histogram(torch.full((3,), 2.0), torch.full((2,), 2.0), bins=5)  # one distinct value
    assert sum(one["hist_clean"]) == 3 and sum(one["hist_adv"]) == 2 and one["hist_overlap"] == pytest.approx(1.0)
    assert math.isnan(score_histogram(x, torch.empty(0), bins=3)["hist_overlap"])
    with pytest.raises(ValueError, match="hist_bins"):
        score_histogram(x, x, bins=0)


class _FirstPixel:
    """Score = first pixel, reject above 0.5; ``hist_bins`` as the energy detector carries it."""

    threshold = 0.5

    def __init__(self, hist_bins: int = 0):
        self.hist_bins = hist_bins

    def score(self, model, x):
        return x[:, 0]


def test_detection_metrics_histograms_are_opt_in_and_use_successful_adversarials_only():
    x = torch.tensor([[0.1], [0.2], [0.3], [0.4]])
    x_adv = torch.tensor([[0.9], [0.8], [0.05], [0.7]])
    success = torch.tensor([True, True, False, True])
    assert "hist_edges" not in detection_metrics(_FirstPixel(), None, x, x_adv, success, threshold=0.5)
    out = detection_metrics(_FirstPixel(hist_bins=4), None, x, x_adv, success, threshold=0.5, hist_bins=4)
    # the float32 scores as the function sees them (0.2 in float32 is not the double 0.2)
    assert out["hist_clean"] == _brute(x[:, 0].double().tolist(), out["hist_edges"])
    assert out["hist_adv"] == _brute(x_adv[success, 0].double().tolist(), out["hist_edges"])  # 0.05 failed: out
    assert sum(out["hist_adv"]) == 3
    assert out["hist_edges"][0] == pytest.approx(0.1) and out["hist_edges"][-1] == pytest.approx(0.9)


def test_energy_detector_validates_hist_bins():
    from robustsweep.detect.energy import energy

    assert energy(hist_bins=10).hist_bins == 10 and energy().hist_bins == 0
    with pytest.raises(ValueError, match="hist_bins"):
        energy(hist_bins=-1)
