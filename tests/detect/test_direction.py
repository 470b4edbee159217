"""Detection direction and per-class α of the deep-Bayes public code (``detect_attacks_logp.py``): the marginal /
logit tests are reversed for the discriminative baselines (reject HIGH log p(x) = logsumexp of the logits), and
``per_class_alpha`` calibrates one α per class for the target FPR and reports class-averaged detection rates."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.core.steps.detection import detection_columns as _detection_columns
from robustsweep.detect import fit_detectors
from robustsweep.detect._common import model_kind
from robustsweep.detect.density import DensityDetector
from robustsweep.registry import DETECTORS


@pytest.fixture(scope="module")
def victim(mlp_victim):
    """mlp_victim plus its true training labels (same split as tests/conftest.py)."""
    from sklearn.datasets import load_digits

    model, xtr, xte, yte = mlp_victim
    y = torch.tensor(load_digits().target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    return model, xtr, y[perm[:1400]], xte, yte


class Plain(torch.nn.Module):
    """A model with logits and nothing else (no log_marginal, no kind): direction unknown -> the paper's default."""

    num_classes = 10

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def lse(model, x):
    with torch.no_grad():
        return torch.logsumexp(model(x), 1)


def test_model_kind(victim):
    model = victim[0]
    assert model_kind(model) == "discriminative"  # the registry's mlp baseline
    assert model_kind(Plain(model)) is None
    tagged = Plain(model)
    tagged.kind = "generative"
    assert model_kind(tagged) == "generative"


@pytest.mark.parametrize("name", ["marginal", "logit"])
def test_default_direction_follows_model_kind(victim, name):
    model, xtr, ytr, _, _ = victim
    assert DETECTORS.get(name).fn().fit(model, xtr, ytr).reversed is True
    assert DETECTORS.get(name).fn(reverse=False).fit(model, xtr, ytr).reversed is False
    assert DETECTORS.get(name).fn().fit(Plain(model), xtr, ytr).reversed is False
    assert DETECTORS.get(name).fn(reverse=True).fit(Plain(model), xtr, ytr).reversed is True


def test_kl_tv_never_reversed(victim):
    model, xtr, ytr, _, _ = victim
    for name in ("kl", "tv"):
        assert DETECTORS.get(name).fn().fit(model, xtr, ytr).reversed is False
    with pytest.raises(ValueError, match="reverse applies to marginal and logit"):
        DensityDetector("kl", reverse=True)


def test_reversed_marginal_flags_high_logsumexp(victim):
    model, xtr, ytr, xte, _ = victim
    det = DETECTORS.get("marginal").fn(target_fpr=0.05).fit(model, xtr, ytr)
    assert det.reversed
    # the score is increasing in logsumexp(logits): the rejected inputs are exactly the highest-logsumexp ones
    s, l = det.score(model, xte), lse(model, xte)
    assert torch.corrcoef(torch.stack([s, l]))[0, 1] > 0.999
    rej = det.reject(model, xte)
    assert 0 < rej.sum() < len(xte)
    assert l[rej].min() > l[~rej].max()
    # inputs pushed to large logsumexp (scaled-up images: larger activations) are flagged; the paper's
    # direction (reverse=False) would flag low logsumexp instead and let them through
    hot = (xte * 3).clamp(max=3.0)
    assert (lse(model, hot) > lse(model, xte)).float().mean() > 0.9
    assert det.reject(model, hot).float().mean() > 0.8
    paper = DETECTORS.get("marginal").fn(target_fpr=0.05, reverse=False).fit(model, xtr, ytr)
    assert paper.reject(model, hot).float().mean() < 0.2
    assert l[paper.reject(model, xte)].max() < l[~paper.reject(model, xte)].min()


def test_reversed_logit_flags_high_logit_of_predicted_class(victim):
    model, xtr, ytr, xte, _ = victim
    det = DETECTORS.get("logit").fn(target_fpr=0.05).fit(model, xtr, ytr)
    with torch.no_grad():
        logits = model(xte)
    c = logits.argmax(1)
    top = logits.gather(1, c[:, None]).squeeze(1)
    expect = top > det.mean[c] + det.alpha * det.std[c]  # δ_c = mean_c + α std_c of log p(x, y_c), reject above
    assert torch.equal(det.reject(model, xte), expect)
    assert abs(det.reject(model, xtr).float().mean().item() - 0.05) < 0.01


@pytest.mark.parametrize("name", ["logit", "kl", "tv"])
def test_per_class_alpha_hits_target_in_every_class(victim, name):
    model, xtr, ytr, _, _ = victim
    det = DETECTORS.get(name).fn(target_fpr=0.05, per_class_alpha=True).fit(model, xtr, ytr)
    assert det.alpha_per_class is not None and det.alpha_per_class.shape == (10,)
    assert det.threshold == 0.0  # score = z - α_c
    with torch.no_grad():
        pred = model(xtr).argmax(1)
    rej = det.reject(model, xtr)
    for k in range(10):
        n = int((pred == k).sum())
        fpr = rej[pred == k].float().mean().item()
        assert 0.05 - 1.0 / n - 1e-9 <= fpr <= 0.05 + 1e-9, (name, k, n, fpr)  # the bisection's resolution
        true_fpr = rej[ytr == k].float().mean().item()  # the public code's grouping (true labels)
        assert abs(true_fpr - 0.05) < 0.03, (name, k, true_fpr)
    assert torch.allclose(det.fit_fpr_per_class, torch.tensor(
        [rej[pred == k].float().mean().item() for k in range(10)]))
    # one α per class really differs between classes (else the option would be a no-op)
    assert det.alpha_per_class.max() - det.alpha_per_class.min() > 0.05


def test_given_alpha_wins_over_per_class(victim):
    model, xtr, ytr, _, _ = victim
    det = DETECTORS.get("logit").fn(alpha=1.0, per_class_alpha=True).fit(model, xtr, ytr)
    assert det.alpha_per_class is None and det.threshold == 1.0


def test_class_averaged_rates_reported(victim):
    from robustsweep.attacks.pgd import pgd

    model, xtr, ytr, xte, yte = victim
    dets = fit_detectors([{"name": "logit", "per_class_alpha": True}, {"name": "kl", "label": "kl1"}],
                         model, xtr, ytr)
    torch.manual_seed(0)
    x_adv = pgd(model, xte, yte, eps=0.3, steps=20, step_size=0.03)
    with torch.no_grad():
        success = (model(xte).argmax(1) == yte) & (model(x_adv).argmax(1) != yte)
    assert success.sum() > 20
    cols = _detection_columns("logit", dets["logit"], model, xte, x_adv, success)
    s, c = dets["logit"].score_and_class(model, x_adv[success])
    rej = s > 0
    per_class = [rej[c == k].float().mean().item() for k in c.unique().tolist()]
    assert cols["det.logit.tpr"] == pytest.approx(sum(per_class) / len(per_class))
    assert cols["det.logit.tpr_pooled"] == pytest.approx(rej.float().mean().item())
    assert cols["det.logit.n_pos"] == float(success.sum())
    assert 0.0 <= cols["det.logit.auc"] <= 1.0 and not math.isnan(cols["det.logit.fpr"])
    # without the option: pooled rates only, as before
    plain = _detection_columns("kl1", dets["kl1"], model, xte, x_adv, success)
    assert "det.kl1.tpr_pooled" not in plain and plain["det.kl1.tpr"] is not None
