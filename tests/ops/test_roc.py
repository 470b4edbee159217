"""roc_curve on scikit-learn gives the curve and AUC of the hand-written torch version it replaced (kept here as
the oracle), on random scores, scores with ties inside and across the classes, and non-finite scores."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.ops.metrics import roc_curve


def roc_curve_torch(neg: torch.Tensor, pos: torch.Tensor, max_points: int = 201):
    """The implementation before scikit-learn (commit c45c1f9), verbatim."""
    neg = torch.as_tensor(neg).detach().double().flatten().cpu()
    pos = torch.as_tensor(pos).detach().double().flatten().cpu()
    if len(neg) == 0 or len(pos) == 0:
        return [], [], math.nan
    scores = torch.cat([pos, neg])
    labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).double()
    order = torch.argsort(scores, descending=True, stable=True)
    s, lab = scores[order], labels[order]
    tps, fps = torch.cumsum(lab, 0), torch.cumsum(1 - lab, 0)
    last_of_tie = torch.ones(len(s), dtype=torch.bool)
    last_of_tie[:-1] = s[1:] != s[:-1]
    tpr = torch.cat([torch.zeros(1), tps[last_of_tie] / len(pos)])
    fpr = torch.cat([torch.zeros(1), fps[last_of_tie] / len(neg)])
    auc = torch.trapezoid(tpr, fpr).item()
    if len(fpr) > max_points:
        idx = torch.linspace(0, len(fpr) - 1, max_points).round().long().unique()
        fpr, tpr = fpr[idx], tpr[idx]
    return fpr.tolist(), tpr.tolist(), auc


def _cases():
    g = torch.Generator().manual_seed(0)
    yield "random", torch.randn(500, generator=g), torch.randn(300, generator=g) + 1.0
    yield "tiny", torch.tensor([0.0]), torch.tensor([1.0])
    yield "one tie", torch.tensor([0.5]), torch.tensor([0.5])
    for levels in (2, 5, 40):  # heavy ties, inside and across the classes
        yield f"ties{levels}", torch.randint(levels, (333,), generator=g).float(), torch.randint(levels, (97,),
                                                                                                    generator=g).float()
    neg, pos = torch.randn(1000, generator=g).float(), torch.randn(1500, generator=g).float() * 2
    pos[:200] = neg[:200]
    yield "float32 ties, thinned", neg, pos
    yield "constant", torch.zeros(50), torch.zeros(20)
    yield "inf", torch.tensor([1.0, -math.inf, 2.0, math.inf]), torch.tensor([math.inf, 0.5, -math.inf, 3.0])
    yield "nan", torch.tensor([1.0, math.nan, 2.0]), torch.tensor([math.nan, 0.5, math.nan, 3.0])


@pytest.mark.parametrize("max_points", [201, 7])
@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
def test_roc_curve_matches_the_torch_oracle(case, max_points):
    _, neg, pos = case
    fpr, tpr, auc = roc_curve(neg, pos, max_points=max_points)
    ofpr, otpr, oauc = roc_curve_torch(neg, pos, max_points=max_points)
    assert fpr == ofpr and tpr == otpr  # the same points, bit for bit
    assert auc == pytest.approx(oauc, rel=1e-12, abs=1e-15)
    assert all(isinstance(v, float) for v in fpr + tpr) and isinstance(auc, float)


def test_roc_curve_empty_side():
    for neg, pos in ((torch.tensor([0.1, 0.2]), torch.empty(0)), (torch.empty(0), torch.tensor([1.0]))):
        fpr, tpr, auc = roc_curve(neg, pos)
        assert (fpr, tpr) == ([], []) and math.isnan(auc)
