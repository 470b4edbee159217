"""Paper 003's evaluation on a real trained GMM-VAE (the conftest ``gmmvae_victim``): eq. 9 reclassification of the
inputs the τ detector rejected (Table 2) and the eq. 10 / eq. 11 attack metrics (success = the target *and*
accepted), each checked against an independent computation from the model's own ``predict_with_reject`` /
``reclassify`` and the attack functions called directly; and the learned-entropy variant of Fig. 5."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.attacks._util import choose_targets
from robustsweep.attacks.gmm_vae import gmmvae_fooling, gmmvae_whitebox
from robustsweep.core.evaluate import evaluate
from robustsweep.detect import fit_detectors

N = 60


@pytest.fixture(scope="module")
def setup(gmmvae_victim, digits):
    dets = fit_detectors([{"name": "gmmvae-tau", "label": "tau", "reclassify": True, "reclassify_attacks": ["fgsm"],
                           "reclassify_steps": 30, "reclassify_batch": 7}], gmmvae_victim, digits.x_train[:300],
                         digits.y_train[:300])
    return gmmvae_victim, digits.x_test[:N], digits.y_test[:N], dets


def test_reclassification_columns_match_an_independent_per_input_computation(setup):
    model, x, y, dets = setup
    attacks = [{"name": "fgsm", "eps": 0.3}, {"name": "pgd", "eps": 0.3, "steps": 3, "step_size": 0.1}]
    fg, pgd = list(evaluate(model, x, y, attacks, dets, batch_size=500))
    assert "det.tau.reclass_accuracy" not in pgd  # reclassify_attacks limits eq. 9 to FGSM
    from robustsweep.attacks.fgsm import fgsm

    with torch.no_grad():
        pred, _ = model.predict_with_reject(x)
    correct = pred == y
    xa = fgsm(model, x, y, eps=0.3)[correct]
    with torch.no_grad():
        _, rej = model.predict_with_reject(xa)
    assert fg["det.tau.n_rejected"] == int(rej.sum()) > 0
    # one input at a time (eq. 9 optimises each input's C codes independently, so batching must not matter)
    labels = [model.reclassify(xi[None], steps=30, lr=0.05)[0].item() for xi in xa[rej]]
    ok = torch.tensor(labels) == y[correct][rej]
    assert fg["det.tau.reclass_accuracy"] == pytest.approx(ok.float().mean().item())
    # clean remark: accuracy after reclassification = accuracy with thresholds + recovered / N, where the first term
    # comes from the detection columns' own split of the clean rejection (another code path)
    acc_tau = fg["clean_accuracy"] * (1 - fg["det.tau.fpr_correct"])
    assert fg["det.tau.clean_accuracy_reclassified"] == pytest.approx(acc_tau + fg["det.tau.clean_n_recovered"] / N)
    assert fg["det.tau.clean_n_rejected"] == pytest.approx(fg["det.tau.fpr"] * N)


def test_eq9_gives_clean_accepted_inputs_their_predicted_class_back(setup):
    """A sanity oracle for the reclassification itself: on clean inputs the thresholds accept, the decoder-only
    eq. 9 label agrees with the encoder's nearest-mean label for most inputs."""
    model, x, _, _ = setup
    with torch.no_grad():
        pred, rej = model.predict_with_reject(x)
    labels, _ = model.reclassify(x[~rej][:30], steps=60, lr=0.05)
    assert (labels == pred[~rej][:30]).float().mean() > 0.7


def _rates(model, x_adv, t, pool):
    with torch.no_grad():
        pred, rej = model.predict_with_reject(x_adv)
    hit = pred == t
    return pred, rej, hit, lambda m: (m & pool).sum().item() / pool.sum().item()


def test_whitebox_and_fooling_rows_score_the_target_and_the_reject_option(setup):
    model, x, y, dets = setup
    bs, kw = 25, {"target": "random", "steps": 15, "lr": 0.05, "seed": 3}  # 3 attack batches: targets per batch
    log: list[str] = []
    wb, fo = evaluate(model, x, y, [{"name": "gmmvae-whitebox", **kw}, {"name": "gmmvae-fooling", **kw}], dets,
                      batch_size=bs, progress=log.append)
    assert len(log) == 2 and "target and accepted" in log[1]  # a fooling row has no adv_accuracy to print
    with torch.no_grad():
        correct = model.predict_with_reject(x)[0] == y
    t = torch.cat([choose_targets(y[i:i + bs], 10, "random", 3) for i in range(0, N, bs)])
    xw = torch.cat([gmmvae_whitebox(model, x[i:i + bs], y[i:i + bs], **kw) for i in range(0, N, bs)])
    pred, rej, hit, frac = _rates(model, xw, t, correct)
    assert wb["success_rate"] == pytest.approx(frac(hit))
    assert wb["m.target_success"] == pytest.approx(frac(hit & ~rej))
    assert wb["m.rejected"] == pytest.approx(frac(rej)) and wb["m.reverted"] == pytest.approx(frac((pred == y) & ~rej))
    xf = torch.cat([gmmvae_fooling(model, x[i:i + bs], y[i:i + bs], **kw) for i in range(0, N, bs)])
    everyone = torch.ones(N, dtype=torch.bool)
    _, rej, hit, frac = _rates(model, xf, t, everyone)
    assert fo["success_rate"] == pytest.approx(frac(hit)) and fo["success_rate"] > 0  # over all noise images
    assert fo["m.target_success"] == pytest.approx(frac(hit & ~rej))
    assert fo["m.target_success"] + fo["m.rejected"] + fo["m.accepted_other"] == pytest.approx(1.0)
    # the τ detector (model thresholds) sees the target hits: success x (1 - rejected) = accepted target hits
    assert fo["success_rate"] * (1 - fo["det.tau.tpr"]) == pytest.approx(fo["m.target_success"])
    # a fooling image is no perturbation of the clean input: no size, no adversarial accuracy; distance from noise
    assert fo["mean_l2"] is None and fo["rho"] is None and fo["adv_accuracy"] is None
    assert fo["m.l2_from_noise"] > 0 and "det.tau.attacker_success" not in fo
    assert wb["mean_l2"] is None or math.isfinite(wb["mean_l2"])


def test_learned_entropy_variant_trains_its_variance_head(digits):
    from robustsweep.registry import MODELS

    torch.manual_seed(0)
    fixed = MODELS.get("gmmvae").fn(input_shape=digits.input_shape, num_classes=10, arch="mlp", hidden=32)
    learned = MODELS.get("gmmvae").fn(input_shape=digits.input_shape, num_classes=10, arch="mlp", hidden=32,
                                      learn_entropy=True)
    assert not any(k.startswith("logvar") for k in fixed.state_dict())  # the fixed model's cache layout is unchanged
    x, y = digits.x_train[:64], digits.y_train[:64]
    learned.loss(x, y).backward()
    assert learned.logvar.weight.grad is not None and learned.logvar.weight.grad.abs().sum() > 0
    # the entropy term: with the other parameters fixed, a larger log-variance lowers the -1/2 sum log σ² term
    with torch.no_grad():
        learned.logvar.bias.fill_(-8.0)
        torch.manual_seed(1)
        tight = learned.loss(x, y).item()
        learned.logvar.bias.fill_(-2.0)
        torch.manual_seed(1)
        loose = learned.loss(x, y).item()
    assert math.isfinite(tight) and math.isfinite(loose) and loose < tight
