"""``eval.examples`` (core/examples.py): the rows carry the images the papers' image grids show, those images are
the ones the metrics were computed on, and keeping them changes no metric -- on a stochastic deep-Bayes GFZ too."""
from __future__ import annotations

import math

import pytest
import torch

from robustsweep.config.eval_options import ExamplesSpec
from robustsweep.config.spec import SpecError, validate_trial
from robustsweep.core import examples as ex
from robustsweep.core.evaluate import evaluate
from robustsweep.ops.metrics import input_gradients
from tests.conftest import trained_gfz

ATTACKS = [{"name": "fgsm", "eps": [0.0, 0.1, 0.3]}, {"name": "pgd", "eps": 0.2, "steps": 5, "step_size": 0.05}]
DETECTORS = [{"name": "logit", "target_fpr": 0.05}]


@pytest.fixture(scope="module")
def gfz(digits):
    return trained_gfz(digits, epochs=3, lr=3e-3)


def _strip(rows):
    return [{k: v for k, v in r.items() if not k.startswith("ex.") and k != "attack_time_s"} for r in rows]


def _eval(model, x, y, examples, seed=0):
    from robustsweep.detect import fit_detectors

    torch.manual_seed(seed)
    dets = fit_detectors(DETECTORS, model, x[:100], y[:100])
    return list(evaluate(model, x, y, ATTACKS, dets, batch_size=64, examples=examples))


def test_examples_change_no_metric_on_a_stochastic_model(gfz, digits):
    """Same seed, with and without examples (gradients included, which run extra Monte-Carlo forward passes):
    every metric of every row is identical."""
    x, y = digits.x_test[:80], digits.y_test[:80]
    assert getattr(gfz, "stochastic", False)
    plain = _eval(gfz, x, y, None)
    kept = _eval(gfz, x, y, {"n": 5, "gradients": True})
    assert _strip(plain) == _strip(kept)
    assert not any(k.startswith("ex.") for r in plain for k in r)


def test_rows_hold_the_evaluated_images(gfz, digits):
    x, y = digits.x_test[:80], digits.y_test[:80]
    rows = _eval(gfz, x, y, {"n": 3})
    n, shape = 3, [3.0, *map(float, x.shape[1:])]
    for r in rows:
        assert r["ex.shape"] == shape
        assert torch.equal(torch.tensor(r["ex.clean"]).reshape(n, *x.shape[1:]), x[:n])
        assert r["ex.label"] == [float(v) for v in y[:n]]
        adv = torch.tensor(r["ex.adv"]).reshape(n, *x.shape[1:])
        assert adv.min() >= 0 and adv.max() <= 1
        eps = r["eps"]
        assert (adv - x[:n]).abs().max() <= eps + 1e-6  # inside this row's ball: the row's own adversarials
        if eps == 0:  # ε = 0: the clean inputs and the clean predictions (evaluate's rule)
            assert r["ex.pred_adv"] == r["ex.pred_clean"]
    # the stored adversarial predictions are the ones the metrics counted: accuracy on the kept points agrees
    for r in rows:
        wrong = sum(p != t for p, t in zip(r["ex.pred_adv"], r["ex.label"]))
        assert wrong <= r["n_eval"] * (1 - r["adv_accuracy"]) + 1e-9


def test_fgsm_examples_equal_an_independent_fgsm_on_a_deterministic_model(mlp_victim):
    """FGSM of an MLP is per-example and deterministic: the stored adversarials are FGSM of the first n inputs,
    computed here by hand (sign of the cross-entropy gradient)."""
    model, _, x, y = mlp_victim
    rows = list(evaluate(model, x[:50], y[:50], [{"name": "fgsm", "eps": 0.1}], examples={"n": 4}))
    xs = x[:4].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xs), y[:4], reduction="sum"), xs)
    want = (x[:4] + 0.1 * g.sign()).clamp(0, 1)
    got = torch.tensor(rows[0]["ex.adv"]).reshape(want.shape)
    assert torch.allclose(got, want, atol=1e-6)
    assert rows[0]["ex.pred_adv"] == [float(v) for v in model(want).argmax(1)]


def test_gradients_and_reconstructions(gmmvae_victim, mlp_victim, digits):
    model, _, x, y = mlp_victim
    cols = ex.trial_columns(model, x, y, model(x).argmax(1), ExamplesSpec(n=2, gradients=True, reconstruction=True))
    assert torch.allclose(torch.tensor(cols["ex.grad_clean"]), input_gradients(model, x[:2], y[:2]).flatten())
    assert cols["ex.recon_clean"] is None  # an MLP does not reconstruct: null, not a made-up image
    vae = gmmvae_victim
    xd = digits.x_test[:6]
    rows = list(evaluate(vae, xd, digits.y_test[:6], [{"name": "fgsm", "eps": 0.1}],
                         examples={"n": 2, "reconstruction": True}))
    with torch.no_grad():
        want = vae.decode(vae.encode_mean(xd[:2])).reshape(2, -1)
    assert torch.allclose(torch.tensor(rows[0]["ex.recon_clean"]).reshape(2, -1), want, atol=1e-6)
    adv = torch.tensor(rows[0]["ex.adv"]).reshape(xd[:2].shape)
    with torch.no_grad():
        want_adv = vae.decode(vae.encode_mean(adv)).reshape(2, -1)
    assert torch.allclose(torch.tensor(rows[0]["ex.recon_adv"]).reshape(2, -1), want_adv, atol=1e-6)


def test_examples_validate_and_keep_old_trial_ids():
    from robustsweep.config.spec import Spec

    base = {"name": "t", "dataset": {"name": "digits"}, "model": {"name": "mlp"}}
    plain = Spec.model_validate(base).base_config()
    assert "examples" not in plain["eval"]  # unset: the config (so every existing trial id) is unchanged
    with_ex = Spec.model_validate({**base, "eval": {"examples": {"n": 2}}}).base_config()
    assert with_ex["eval"]["examples"] == {"n": 2, "reconstruction": False, "gradients": False, "labels": None}
    for bad in ({"n": 0}, {"n": 2, "pixels": True}, {"n": 1000}):
        cfg = {**plain, "eval": {**plain["eval"], "examples": bad}}
        with pytest.raises(SpecError, match="examples"):
            validate_trial(cfg)


def test_examples_round_trip_through_the_store(tmp_path, mlp_victim):
    from robustsweep.store.parquet import read_sweep, write_trial

    model, _, x, y = mlp_victim
    rows = list(evaluate(model, x[:20], y[:20], [{"name": "fgsm", "eps": [0.1, 0.2]}], examples={"n": 2}))
    ident = {"sweep": "s", "trial_id": "t1", "config_hash": "c", "seed": 0, "status": "ok"}
    write_trial([{**ident, **r} for r in rows], tmp_path, "s", "t1")
    df = read_sweep(tmp_path, "s")
    assert df.height == 2 and df["ex.adv"].list.len().to_list() == [2 * 64, 2 * 64]
    assert not math.isnan(df["ex.clean"][0][0])


def test_examples_by_label_keep_the_first_point_of_each_class(mlp_victim):
    """``labels: [3, 1, 42]``: the first attacked 3, then the first 1 (42 is absent and skipped), on every row."""
    model, _, x, y = mlp_victim
    rows = list(evaluate(model, x[:60], y[:60], [{"name": "fgsm", "eps": 0.1}], examples={"n": 4, "labels": [3, 1, 42]}))
    i3, i1 = int((y[:60] == 3).nonzero()[0]), int((y[:60] == 1).nonzero()[0])
    r = rows[0]
    assert r["ex.label"] == [3.0, 1.0] and r["ex.shape"][0] == 2.0
    assert torch.equal(torch.tensor(r["ex.clean"]).reshape(2, *x.shape[1:]), x[[i3, i1]])
    pred = model(torch.tensor(r["ex.adv"]).reshape(2, *x.shape[1:])).argmax(1)
    assert r["ex.pred_adv"] == [float(v) for v in pred]  # the row's adversarials of exactly those two points


def test_an_attacks_own_n_eval_attacks_the_chosen_examples_first(mlp_victim):
    """Paper 003 mini's Fig. 4: eq. 10 runs on the first 10 points only, and the chosen examples (the first digit of
    each listed class) lay beyond them, so its rows had no images. The examples now come first: a 3-point attack
    entry attacks the two examples and then the subset's first other point, and its rows show both images."""
    model, _, x, y = mlp_victim
    x, y = x[:60], y[:60]
    late = [int(c) for c in y.unique() if int((y == c).nonzero()[0]) >= 3][:2]
    assert len(late) == 2, "the fixture has classes whose first point is past the third"
    idx = [int((y == c).nonzero()[0]) for c in late]
    other = min(i for i in range(60) if i not in idx)
    rows = list(evaluate(model, x, y, [{"name": "fgsm", "eps": 0.1, "n_eval": 3}, {"name": "fgsm", "eps": 0.2}],
                         examples={"n": 2, "labels": late}))
    short, full = rows
    assert short["n_eval"] == 3 and full["n_eval"] == 60
    for r, eps in zip(rows, (0.1, 0.2)):
        assert torch.equal(torch.tensor(r["ex.clean"]).reshape(2, *x.shape[1:]), x[idx])
        assert len(r["ex.adv"]) == len(r["ex.clean"])  # each row shows its own adversarials of the examples
        adv = torch.tensor(r["ex.adv"]).reshape(2, *x.shape[1:])
        assert r["ex.pred_adv"] == [float(v) for v in model(adv).argmax(1)]
        assert (adv - x[idx]).abs().max() <= eps + 1e-6
    pts = idx + [other]
    assert short["clean_accuracy"] == pytest.approx((model(x[pts]).argmax(1) == y[pts]).float().mean().item())
    assert ex.examples_first(torch.tensor(idx), 60, [60]) is None  # no prefix leaves them out: order kept
    assert ex.examples_first(torch.arange(2), 60, [1]) is None  # already in front
    assert ex.examples_first(torch.tensor(idx), 60, [1]) is None  # a prefix too short to hold both: no use
    order = ex.examples_first(torch.tensor(idx), 60, [3])
    assert sorted(order.tolist()) == list(range(60)) and order[:2].tolist() == idx  # a permutation, examples first
    assert ex.example_indices(y, ExamplesSpec(labels=[late[0], late[0], late[1]])).tolist() == idx  # a repeat is one example


def test_a_prefix_shorter_than_the_examples_shows_those_within_it(mlp_victim, gmmvae_victim, digits):
    """Paper 001 mini's Fig. 6 was empty: CW attacks 2 of the 10 points whose images are kept. Its rows now carry
    the first 2 examples -- clean images, labels, clean predictions, reconstructions, and its own adversarials of
    exactly those -- while the full-length rows keep all 4."""
    for model, x, y in ((mlp_victim[0], mlp_victim[2], mlp_victim[3]), (gmmvae_victim, digits.x_test, digits.y_test)):
        x, y = x[:30], y[:30]
        full, short = evaluate(model, x, y, [{"name": "fgsm", "eps": 0.1}, {"name": "fgsm", "eps": 0.1, "n_eval": 2}],
                               examples={"n": 4, "reconstruction": True})
        assert full["ex.shape"][0] == 4.0 and short["ex.shape"][0] == 2.0
        pixels = math.prod(int(d) for d in full["ex.shape"][1:])
        for key in ("ex.clean", "ex.label", "ex.pred_clean", "ex.recon_clean"):
            per = len(full[key]) // 4 if full[key] is not None else 0
            assert short[key] == (None if full[key] is None else full[key][: 2 * per]), key
        assert len(short["ex.clean"]) == 2 * pixels and len(short["ex.adv"]) == 2 * pixels
        adv = torch.tensor(short["ex.adv"]).reshape(2, *x.shape[1:])
        assert short["ex.pred_adv"] == [float(v) for v in model(adv).argmax(1)]
        assert (adv - x[:2]).abs().max() <= 0.1 + 1e-6
    none = ex.within_prefix({"ex.clean": [1.0, 2.0], "ex.shape": [2.0, 1.0]}, torch.tensor([3, 4]), 2)
    assert none[1] is None and none[0]["ex.clean"] == [1.0, 2.0]  # no example inside: the trial's, no row images
