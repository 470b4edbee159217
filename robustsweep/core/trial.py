"""``run_trial(config)``: data -> model (trained once, cached by content hash) -> attacks over the grid -> rows.

A trial is a pure function of its config (and seed): rerunning it gives the same rows, and its config hash is its
identity in the store, which is what makes ``resume`` exactly-once. Every failure inside a trial (bad data root,
NaN loss, an attack crashing) is caught here and recorded as a ``failed`` row with the error, so the neighbours of a
crashed trial keep their results; the exception is then re-raised as :class:`TrialFailed` for the scheduler.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from robustsweep.config.trial import Trial, TrialConfig
from robustsweep.core.runtime import Runtime
from robustsweep.core.subset import seeded_indices, seeded_subset
from robustsweep.errors import TrialFailed
from robustsweep.store import provenance
from robustsweep.store.markers import running_marker
from robustsweep.store.outcomes import write_outcomes
from robustsweep.store.parquet import finished_ok, trial_log_path, write_trial
from robustsweep.store.rows import failed_row, identity, write_failure
from robustsweep.store.schema import SCHEMA_VERSION

#: how each step artifact (``Step.artifacts``) is stored
ARTIFACT_WRITERS: dict[str, Callable[..., Any]] = {"outcomes": write_outcomes}


@functools.lru_cache(maxsize=4)
def _load_data(name: str, opts_json: str, seed: int, root: str | None):
    from robustsweep.data import load_dataset

    return load_dataset(name, root=root, seed=seed, **json.loads(opts_json))


def load_data(dataset_cfg: dict[str, Any], seed: int, root: str | None):
    opts = {k: v for k, v in dataset_cfg.items() if k != "name"}
    return _load_data(dataset_cfg["name"], json.dumps(opts, sort_keys=True), seed, root)


def train_model(cfg: Trial | TrialConfig, data, device: torch.device, cache_dir: Path | None,
                log: Callable[[str], None], extra_key: dict[str, Any] | None = None,
                fresh: bool = False) -> tuple[torch.nn.Module, bool]:
    """Build the model of ``cfg`` (a :class:`Trial` or its wire dict) and train it, or load it from the
    content-addressed cache. ``extra_key`` tells apart models of the same config trained on other data (ROAR's
    removed images: ``{"roar": params}``)."""
    from robustsweep.models.cache import key_hash, load_or_train, set_default_cache_dir
    from robustsweep.ops.train import TrainConfig, fit, seed_everything
    from robustsweep.registry import MODELS

    trial = Trial.from_dict(cfg)
    seed = trial.seed

    def build() -> torch.nn.Module:
        seed_everything(seed)
        return MODELS.get(trial.model.name).fn(input_shape=data.input_shape, num_classes=data.num_classes,
                                               **trial.model.params)

    set_default_cache_dir(cache_dir)  # fusion models cache their backbone there too (trained once per sweep)
    key = trial.model_identity() | (extra_key or {})
    # training checkpoint next to the cache entry: a killed/pre-empted trial continues training where it stopped
    ckpt = cache_dir / f"{key_hash(key)}.ckpt" if cache_dir else None
    if fresh and ckpt is not None and ckpt.exists():  # resume --restart-errored: train from epoch 0
        log(f"training from scratch (--restart-errored): removed the training checkpoint {ckpt.name}")
        ckpt.unlink(missing_ok=True)

    def train(model: torch.nn.Module) -> None:
        seed_everything(seed)
        fit(model, data, TrainConfig(**trial.train.model_dump()), device, log, seed=seed, checkpoint=ckpt)

    model, cached = load_or_train(key, build, train, cache_dir, progress=log)
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)  # the finished model is in the cache now
    # what follows (detector fits, attacks, a stochastic model's Monte-Carlo draws) starts from the seed's random
    # state, whether this trial trained the model or loaded it: cached and fresh runs give the same rows
    seed_everything(seed)
    return model.to(device).eval(), cached


def run_trial(cfg: TrialConfig, rt: Runtime, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run one trial and write its Parquet file; return its rows. Raises TrialFailed after recording a failure."""
    from robustsweep.core.evaluate import run
    from robustsweep.core.roar import is_retrain
    from robustsweep.core.steps import Evaluation, TrialEnv, active_steps
    from robustsweep.ops.train import resolve_device

    log = log or (lambda msg: None)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.time()
    ident = identity(cfg, rt.sweep)
    prov = {
        "host": provenance.host(),
        "versions": provenance.versions(),
        "git_rev": provenance.git_rev(),
        "config_json": json.dumps(cfg, sort_keys=True),
        "schema_version": SCHEMA_VERSION,
        "started_at": started,
    }
    try:
        trial = Trial.from_dict(cfg)
        if rt.threads:
            torch.set_num_threads(rt.threads)
        device = resolve_device(rt.device)
        data = load_data(trial.dataset.as_dict(), trial.seed, rt.data_root)
        cache = Path(rt.cache_dir) if rt.cache_dir else Path(rt.results).resolve() / ".model-cache"
        t_train = time.time()
        model, cached = train_model(trial, data, device, cache, log, fresh=rt.fresh_training)
        train_time = 0.0 if cached else time.time() - t_train

        def train(variant: Trial | TrialConfig, on: Any, extra_key: dict[str, Any] | None) -> torch.nn.Module:
            return train_model(variant, on, device, cache, log, extra_key=extra_key)[0]

        env = TrialEnv(trial, data, device, train, log)
        ev = Evaluation(model, trial.eval, {}, rt.eval_batch_size, log, trial=env)
        x, y, pool, index = _attacked_points(ev, active_steps(ev))
        x, y = x.to(device), y.to(device)
        ev.detectors, ev.calibration = _fit_detectors([d.as_dict() for d in trial.detectors], model, data, device,
                                                      trial.eval.n_fit, log)
        steps = active_steps(ev)  # with the fitted detectors
        _prepare_attacks(trial, model, data, log)
        attacks = [a for a in (c.as_dict() for c in trial.attacks) if not is_retrain(a)]  # ROAR: a step, at the end
        metrics = list(run(ev, x, y, attacks, steps, index))
        for s in steps:
            metrics = s.finish(ev, x, y, metrics)
        rows = [{**ident, **m, "status": "ok", "train_time_s": train_time, "model_cached": cached,
                 **_hardware(device, rt.eval_batch_size), **pool} for m in metrics]
        # after the attacks: a stochastic model's evaluation draws stay those of a run without this metric
        val = _val_accuracy(model, data, len(x), trial.seed, device, rt.eval_batch_size)
        for s in steps:
            val |= s.trial_columns(ev)
        for r in rows:
            r.update(val)
    except Exception as e:  # record, then tell the scheduler
        err = f"{type(e).__name__}: {e}"
        log("FAILED " + err)
        log(traceback.format_exc())
        row = failed_row(cfg, rt.sweep, err, **prov, trial_time_s=time.time() - t0)
        write_failure([row], rt.results, rt.sweep, cfg["trial_id"])  # never over a retry's ok result
        raise TrialFailed(err) from e
    finished = dt.datetime.now(dt.timezone.utc)
    for r in rows:
        r.update(prov, trial_time_s=time.time() - t0, finished_at=finished)
    try:
        # the steps' files first (the per-example outcomes): the trial file is the commit point
        for s in steps:
            for name, columns in s.artifacts(ev).items():
                ARTIFACT_WRITERS[name](columns, rt.results, rt.sweep, cfg["trial_id"])
        write_trial(rows, rt.results, rt.sweep, cfg["trial_id"])
    except Exception as e:
        # a row Arrow cannot hold, a full or read-only disk: the trial's own failure, so the runner records it and
        # does not retry it as if its node had died (it would fail the same way, max_retries times)
        err = f"could not write the result file: {type(e).__name__}: {e}"
        log("FAILED " + err)
        log(traceback.format_exc())
        with contextlib.suppress(Exception):  # the disk that refused the rows may refuse the failed row too
            write_failure([failed_row(cfg, rt.sweep, err, **prov, trial_time_s=time.time() - t0)], rt.results,
                          rt.sweep, cfg["trial_id"])
        raise TrialFailed(err) from e
    return rows


def _hardware(device: torch.device, batch_size: int) -> dict[str, Any]:
    """Where the attack times of the rows were measured (paper 002's Table 2: runtimes only compare on the same
    hardware): ``m.device`` (the GPU's name, or the CPU and its thread count) and ``m.eval_batch_size``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{provenance.cpu_name()} ({torch.get_num_threads()} threads)"
    return {"m.device": name, "m.eval_batch_size": batch_size}


def _attacked_points(ev, steps) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any], torch.Tensor]:
    """The test points the attacks run on: a step's selection (``eval.correct_for``), else the seeded ``n_eval``
    subset of the test split; the columns the selection adds to every row; the points' indices in the test split."""
    for s in steps:
        if (chosen := s.select(ev)) is not None:
            return chosen
    data = ev.trial.data
    index = seeded_indices(len(data.x_test), ev.options.n_eval, ev.trial.seed)
    return data.x_test[index], data.y_test[index], {}, index


def _val_accuracy(model, data, n: int, seed: int, device, batch_size: int) -> dict[str, float]:
    """``m.val_accuracy`` on a seeded subset of the validation split as large as the attacked test subset (paper 002's
    Table 1 prints test and validation accuracy side by side; the same count keeps both columns equally noisy and the
    cost bounded), or nothing when the data set holds no validation split (digits by default)."""
    from robustsweep.ops.train import accuracy

    if not data.n_val:
        return {}
    xv, yv = seeded_subset(data.x_val, data.y_val, n, seed)
    return {"m.val_accuracy": accuracy(model, xv.to(device), yv.to(device), batch_size)}


def _prepare_attacks(trial: Trial, model, data, log) -> None:
    """Once per trial, before any attack runs, call each attack entry's ``prepare(model, data, cfg, log)`` hook (an
    entry shared by several attacks once): what an attack needs beyond the evaluation batch — the transfer attacks'
    substitutes learn from the training inputs, ``transfer-from`` trains its source models the way this trial trains
    its own. Why a registry hook: a new attack that needs the training data needs no edit here."""
    import robustsweep.attacks  # noqa: F401 -- fills the registry
    from robustsweep.registry import ATTACKS

    done: list[Any] = []
    for a in trial.attacks:
        prepare = ATTACKS.get(a.name).meta.get("prepare") if a.name in ATTACKS else None
        if prepare is not None and prepare not in done:
            done.append(prepare)
            prepare(model, data, trial.to_dict(), log)


def _fit_detectors(specs: list[dict[str, Any]], model, data, device, n_fit: int | None = 2000,
                   log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], tuple | None]:
    """Fit detector thresholds, never on the test set: each detector where its registry entry declares it
    calibrates -- the first ``n_fit`` clean TRAINING images (paper 001's rule: the deep-Bayes detectors), or the
    first ``n_fit`` VALIDATION images (``calibration="validation"``: paper 004's energy threshold, "fitted on held-out
    data"), falling back to training images, with a log line, where the data set holds no validation split
    (``dataset.val_size`` adds one). ``None`` = all of them (paper 001's public code). Why a cap by default: a
    deep-Bayes model scores each image with K x C decoder passes, so fitting on 60,000 MNIST images costs more than
    most attacks; 2,000 images put a 5 % threshold within about one point of its target.

    Returns the fitted detectors and the calibration set a per-attack detector refits on (the validation images
    when there are any, else the training ones; None without detectors)."""
    if not specs:
        return {}, None
    from robustsweep.detect import fit_detectors
    from robustsweep.registry import DETECTORS

    def first(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(x) if n_fit is None else n_fit
        return x[:n].to(device), y[:n].to(device)

    train = first(data.x_train, data.y_train)
    val = first(data.x_val, data.y_val) if data.n_val else None
    wants_val = [s["name"] for s in specs if s["name"] in DETECTORS and DETECTORS.get(s["name"]).meta.get(
        "calibration") == "validation"]
    if wants_val and val is None and log:
        log(f"no validation split: {', '.join(sorted(set(wants_val)))} fitted on training images instead "
            f"(set dataset.val_size to hold one out)")
    t0 = time.time()
    if log:  # a K x C-decoder model's fit can take minutes: say what is running
        log(f"fitting detectors {', '.join(s.get('label', s['name']) for s in specs)} on {len(train[0])} training"
            + (f" / {len(val[0])} validation" if wants_val and val is not None else "") + " images")
    fitted = fit_detectors(specs, model, *train, val=val)
    if log:
        log(f"detectors fitted ({time.time() - t0:.1f}s)")
    return fitted, (val if val is not None else train)


def run_logged(cfg: TrialConfig, rt: Runtime, header: str = "") -> list[dict[str, Any]] | None:
    """What every runner does with one trial: skip it if the store already has it (returns None), else announce it
    with a running marker and run it, logging to ``<sweep>/logs/<trial_id>.log``.

    The store re-check is what keeps a requeued array task or a restored Tune trial exactly-once: a trial may have
    written its file a second before a pre-emption and still look unfinished to the scheduler.
    """
    if finished_ok(rt.results, rt.sweep, cfg["trial_id"]) is not None:
        return None
    log_path = trial_log_path(rt.results, rt.sweep, cfg["trial_id"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with running_marker(rt.results, rt.sweep, cfg["trial_id"]), open(log_path, "a", buffering=1) as fh:
        def log(msg: str) -> None:
            fh.write(f"{time.strftime('%H:%M:%S')} {msg}\n")

        log(f"trial {cfg['trial_id']} on {provenance.host()} pid {os.getpid()}{header}")
        return run_trial(cfg, rt, log)
