"""One trial without Ray: rows per (attack, grid value), failure recorded with its error, neighbours intact."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from robustsweep.config.spec import spec_from_dict
from robustsweep.core.trial import Runtime, TrialFailed, run_trial
from robustsweep.registry import MODELS
from robustsweep.store.parquet import read_sweep, trial_status


def _trials(tmp_path, **over):
    doc = {
        "name": "t",
        "dataset": {"name": "digits"},
        "model": {"name": "mlp", "hidden": 64},
        "train": {"epochs": 15, "lr": 3e-3},
        "eval": {"n_eval": 120},
        "attacks": [{"name": "fgsm", "eps": [0.0, 0.1, 0.3]}, {"name": "pgd", "eps": [0.1], "steps": 5, "step_size": 0.05}],
        **over,
    }
    return spec_from_dict(doc).expand()


@pytest.fixture
def nan_model():
    """A registered model whose loss turns NaN after a few steps (in-process only)."""

    @MODELS.register("test-nan")
    def build(input_shape, num_classes):
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, num_classes))
        net.num_classes = num_classes
        calls = {"n": 0}

        def loss(x, y):
            calls["n"] += 1
            out = torch.nn.functional.cross_entropy(net(x), y)
            return out * float("nan") if calls["n"] > 3 else out

        net.loss = loss
        return net

    yield "test-nan"
    MODELS.unregister("test-nan")


def test_rows_cover_every_attack_point(tmp_path):
    (cfg,) = _trials(tmp_path)
    rt = Runtime(results=str(tmp_path), sweep="t")
    rows = run_trial(cfg, rt)
    assert [(r["attack"], r["value"]) for r in rows] == [("fgsm", 0.0), ("fgsm", 0.1), ("fgsm", 0.3), ("pgd", 0.1),
                                                         ("worst-case", 0.1)]  # two attacks at linf 0.1
    worst = rows[-1]
    assert worst["kind"] == "worst_case" and worst["m.worst_of"] == "fgsm,pgd"
    assert worst["adv_accuracy"] <= min(rows[1]["adv_accuracy"], rows[3]["adv_accuracy"])
    df = read_sweep(tmp_path, "t")
    assert len(df) == 5 and set(df["status"]) == {"ok"} and df["trial_id"].unique().to_list() == [cfg["trial_id"]]
    assert df["cfg.model.hidden"].to_list() == [64] * 5
    assert json.loads(df["config_json"][0])["trial_id"] == cfg["trial_id"]
    fg = df.filter(df["attack"] == "fgsm").sort("value")
    # eps = 0 changes nothing; accuracy falls as eps grows; perturbations respect eps
    assert fg["adv_accuracy"][0] == pytest.approx(fg["clean_accuracy"][0])
    assert fg["adv_accuracy"][2] < fg["adv_accuracy"][1] < fg["clean_accuracy"][0]
    assert (fg["mean_linf"].drop_nulls() <= fg.filter(fg["mean_linf"].is_not_null())["value"] + 1e-6).all()
    assert df["clean_accuracy"][0] > 0.9
    assert df["host"][0] and json.loads(df["versions"][0])["torch"].startswith("2.13")


def test_nan_loss_is_a_failed_trial_with_its_error(tmp_path, nan_model):
    ok, bad = _trials(tmp_path, search={"model": {"grid": [{"name": "mlp", "hidden": 32}, {"name": nan_model}]}})
    rt = Runtime(results=str(tmp_path), sweep="t")
    run_trial(ok, rt)
    with pytest.raises(TrialFailed, match="training loss became nan"):
        run_trial(bad, rt)
    st = trial_status(tmp_path, "t")
    assert st[ok["trial_id"]]["status"] == "ok"
    assert st[bad["trial_id"]]["status"] == "failed"
    assert "TrainingDiverged: training loss became nan" in st[bad["trial_id"]]["error"]
    assert len(read_sweep(tmp_path, "t").filter(trial_id=ok["trial_id"])) == 5  # neighbour intact


def test_a_result_file_that_cannot_be_written_is_the_trials_own_failure(tmp_path, monkeypatch):
    """An error while writing the rows (a value Arrow cannot hold, a full disk) used to escape as a plain exception,
    which Tune retries as if the node had died; it is a TrialFailed, with a failed row saying why."""
    from robustsweep.core import trial as trial_mod

    (cfg,) = _trials(tmp_path, train={"epochs": 1}, attacks=[{"name": "fgsm", "eps": [0.1]}])

    def broken(rows, *a, **k):
        raise TypeError("cannot convert a set to an Arrow value")

    monkeypatch.setattr(trial_mod, "write_trial", broken)
    with pytest.raises(TrialFailed, match="could not write the result file: TypeError"):
        run_trial(cfg, Runtime(results=str(tmp_path), sweep="t"))
    st = trial_status(tmp_path, "t")[cfg["trial_id"]]
    assert st["status"] == "failed" and "cannot convert a set" in st["error"]


def test_missing_data_is_a_failed_trial_naming_the_root(tmp_path):
    (cfg,) = _trials(tmp_path, dataset={"name": "mnist"})
    rt = Runtime(results=str(tmp_path), sweep="t", data_root=str(tmp_path / "nodata"))
    with pytest.raises(TrialFailed, match="not available under"):
        run_trial(cfg, rt)
    assert str(tmp_path / "nodata") in trial_status(tmp_path, "t")[cfg["trial_id"]]["error"]


def test_trial_is_deterministic_for_its_seed(tmp_path):
    (cfg,) = _trials(tmp_path, attacks=[{"name": "fgsm", "eps": [0.1]}])
    a = run_trial(cfg, Runtime(results=str(tmp_path / "a"), sweep="t"))
    b = run_trial(cfg, Runtime(results=str(tmp_path / "b"), sweep="t"))
    assert a[0]["clean_accuracy"] == b[0]["clean_accuracy"] and a[0]["adv_accuracy"] == b[0]["adv_accuracy"]
    assert a[0]["model_cached"] is False and b[0]["model_cached"] is False


def test_stochastic_model_gives_the_same_rows_trained_or_loaded_from_the_cache(tmp_path):
    """A deep-Bayes model predicts with fresh Monte-Carlo draws: the rows must not depend on whether the model was
    trained in this trial or loaded from the shared cache (the random state after training differs)."""
    (cfg,) = _trials(tmp_path, model={"name": "gfz", "dim_z": 8, "hidden": 64, "K": 5}, train={"epochs": 2},
                     eval={"n_eval": 60}, attacks=[{"name": "fgsm", "eps": [0.1, 0.2]}])
    cache = str(tmp_path / "cache")
    trained = run_trial(cfg, Runtime(results=str(tmp_path / "a"), sweep="t", cache_dir=cache))
    loaded = run_trial(cfg, Runtime(results=str(tmp_path / "b"), sweep="t", cache_dir=cache))
    assert trained[0]["model_cached"] is False and loaded[0]["model_cached"] is True
    keys = ("clean_accuracy", "adv_accuracy", "success_rate")
    assert [[r[k] for k in keys] for r in trained] == [[r[k] for k in keys] for r in loaded]


def test_grid_metrics_min_perturbation_and_counterfactual_speed(tmp_path):
    (cfg,) = _trials(tmp_path, attacks=[{"name": "fgsm", "eps": [0.05, 0.1, 0.5]}],
                     eval={"n_eval": 100, "counterfactual": {"methods": ["ifgsm"], "eps": 0.3, "step_size": 0.02,
                                                             "max_iter": 30}})
    rows = run_trial(cfg, Runtime(results=str(tmp_path), sweep="t"))
    fg = [r for r in rows if r["attack"] == "fgsm"]
    mmp = {r["m.min_perturbation"] for r in fg}
    assert len(mmp) == 1  # one value per attack, repeated on its rows
    (mmp,) = mmp
    # every initially-correct input fooled at eps=0.5 => the minimum over the grid is at most 0.5, never the +0.1
    assert fg[-1]["success_rate"] == 1.0 and 0.05 <= mmp <= 0.5
    (cf,) = [r for r in rows if r["attack"] == "cf-ifgsm"]
    curve = cf["m.acc_curve"]
    assert len(curve) == 31 and curve[0] == pytest.approx(cf["clean_accuracy"])  # I-FGSM starts at x
    k = int(cf["m.cf_speed"])
    assert cf["m.cf_reached"] == 1.0 and curve[k] < 0.4 and all(a >= 0.4 for a in curve[:k])
    df = read_sweep(tmp_path, "t")
    assert df.filter(df["attack"] == "cf-ifgsm")["m.acc_curve"].to_list()[0] == curve


def test_training_resumes_from_checkpoint_with_identical_weights(tmp_path, digits, monkeypatch):
    """A trial killed mid-training (pre-emption) continues from its checkpoint and ends with the same weights."""
    from robustsweep.ops.train import TrainConfig, fit_loss, seed_everything
    from robustsweep.registry import MODELS

    cfg = TrainConfig(epochs=4, batch_size=64, lr=2e-3)
    build = MODELS.get("gfz").fn

    def fresh():
        seed_everything(0)
        return build(input_shape=(1, 8, 8), num_classes=10, dim_z=4, hidden=32, K=2)

    ref = fit_loss(fresh(), digits.x_train, digits.y_train, cfg, torch.device("cpu"), seed=0)

    import robustsweep.ops.train as train_mod

    ckpt = tmp_path / "m.ckpt"
    real_save = train_mod._save_checkpoint

    class Preempted(Exception):
        pass

    def save_then_die_at_2(path, model, opt, epoch, gen):
        real_save(path, model, opt, epoch, gen)
        if epoch == 2:
            raise Preempted

    monkeypatch.setattr(train_mod, "_save_checkpoint", save_then_die_at_2)
    with pytest.raises(Preempted):  # checkpoint every epoch, "killed" right after epoch 2's checkpoint
        fit_loss(fresh(), digits.x_train, digits.y_train, cfg, torch.device("cpu"), seed=0,
                 checkpoint=ckpt, checkpoint_every_s=0)
    monkeypatch.setattr(train_mod, "_save_checkpoint", real_save)
    assert ckpt.exists()
    resumed_log = []
    seed_everything(123)  # a different global RNG state before the restart must not matter
    out = fit_loss(fresh(), digits.x_train, digits.y_train, cfg, torch.device("cpu"), resumed_log.append, seed=0,
                   checkpoint=ckpt, checkpoint_every_s=0)
    assert any("resuming training from checkpoint after epoch 2" in e for e in resumed_log)
    for a, b in zip(ref.state_dict().values(), out.state_dict().values()):
        assert torch.equal(a, b)
    ckpt.write_bytes(b"truncated")  # a corrupt checkpoint is ignored, never fatal
    log = []
    fit_loss(fresh(), digits.x_train, digits.y_train, TrainConfig(epochs=1), torch.device("cpu"), log.append,
             checkpoint=ckpt)
    assert any("ignoring unusable training checkpoint" in e for e in log)


def test_restart_errored_trains_the_rerun_trial_from_scratch(tmp_path, monkeypatch):
    """`resume --restart-errored` (Runtime.fresh_training): the trial's training checkpoint is deleted before
    training, so training sees none; without it, training is handed the checkpoint to continue from."""
    import robustsweep.ops.train as train_mod
    from robustsweep.models.cache import key_hash

    (cfg,) = _trials(tmp_path, train={"epochs": 1}, attacks=[{"name": "fgsm", "eps": [0.1]}])
    cache = tmp_path / "cache"
    seen: list[bool] = []
    real_fit = train_mod.fit

    def spy(model, data, tc, device, log, seed, checkpoint):
        seen.append(checkpoint is not None and checkpoint.exists())
        return real_fit(model, data, tc, device, log, seed=seed, checkpoint=checkpoint)

    monkeypatch.setattr(train_mod, "fit", spy)
    key = {"model": cfg["model"], "dataset": cfg["dataset"], "seed": int(cfg["seed"]), "train": cfg["train"]}
    ckpt = cache / f"{key_hash(key)}.ckpt"
    for fresh, results in ((False, "a"), (True, "b")):
        cache.mkdir(exist_ok=True)
        ckpt.write_bytes(b"an interrupted run's checkpoint")
        for p in cache.glob("*.pt"):  # no finished model in the cache: the trial trains
            p.unlink()
        run_trial(cfg, Runtime(results=str(tmp_path / results), sweep="t", cache_dir=str(cache), fresh_training=fresh))
        shutil.rmtree(cache)
    assert seen == [True, False]


def test_validation_accuracy_is_recorded_only_with_a_validation_split(tmp_path):
    """``m.val_accuracy`` (paper 002's Table 1 column) = the accuracy on a seeded validation subset as large as the
    attacked test subset; checked against a per-example loop over the validation split the loader returns. A data
    set without a validation split gives no such column (no fake zero)."""
    from robustsweep.core.trial import load_data, train_model

    (cfg,) = _trials(tmp_path, dataset={"name": "digits", "val_size": 200}, eval={"n_eval": 150},
                     attacks=[{"name": "fgsm", "eps": [0.1]}])
    rt = Runtime(results=str(tmp_path), sweep="t")
    rows = run_trial(cfg, rt)
    data = load_data(cfg["dataset"], int(cfg["seed"]), None)
    model, cached = train_model(cfg, data, torch.device("cpu"), tmp_path / ".model-cache", lambda m: None)
    assert cached
    idx = torch.randperm(data.n_val, generator=torch.Generator().manual_seed(int(cfg["seed"])))[:150]
    with torch.no_grad():
        hits = [int(model(data.x_val[i:i + 1]).argmax(1).item() == data.y_val[i].item()) for i in idx.tolist()]
    assert rows[0]["m.val_accuracy"] == pytest.approx(sum(hits) / 150)
    assert 0.8 < rows[0]["m.val_accuracy"] <= 1.0

    (plain,) = _trials(tmp_path, attacks=[{"name": "fgsm", "eps": [0.1]}])
    assert "m.val_accuracy" not in run_trial(plain, Runtime(results=str(tmp_path), sweep="t"))[0]
