"""Run a paper-scale trial end to end on random tensors of the real data shape: one training step, one attack step.

Why: a paper-scale experiment only runs on a cluster with staged data, after a queue. A wrong shape (a 28×28
network on 32×32×3 CIFAR), a missing key or a detector that cannot score a 200-class model would crash there,
hours later. This runs the *same* code path as a real trial (:func:`robustsweep.core.trial.run_trial`: model
build, training, detectors, every attack of the grid, counterfactuals, the Parquet row) with the data loader
swapped for random tensors of the shape the data set registers (``shape=``/``classes=`` in its ``@register``),
and every size knob cut to one step. It proves the plumbing, not the numbers. Used by the test suite over every
experiment file at ``--scale paper``.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from robustsweep.config.grid import split_grid
from robustsweep.config.trial import TrialConfig
from robustsweep.core import trial as trial_mod
from robustsweep.core.runtime import Runtime
from robustsweep.data.base import DataSplit
from robustsweep.registry import ATTACKS, DATASETS, DETECTORS

N_TRAIN = 8  # one training batch
N_EVAL = 4  # attacked examples


def data_shape(dataset: dict[str, Any]) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of a data set config, from the registry's ``shape``/``classes`` metadata;
    a shape entry that is a string names a parameter (``image_size``), resolved from the config or its default."""
    entry = DATASETS.get(dataset["name"])
    if "shape" not in entry.meta or "classes" not in entry.meta:
        raise KeyError(f"data set {dataset['name']!r} declares no shape=/classes= in its @register: add them")
    params = entry.defaults()
    shape = tuple(int(dataset.get(d, params.get(d))) if isinstance(d, str) else int(d) for d in entry.meta["shape"])
    return shape, int(entry.meta["classes"])


def fake_split(dataset: dict[str, Any], seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_EVAL) -> DataSplit:
    """Uniform random inputs in [0, 1] of the data set's real shape, every class present in the training part."""
    shape, k = data_shape(dataset)
    g = torch.Generator().manual_seed(seed)
    n_train = max(n_train, k)  # labels 0..k-1 all present (per-class statistics, GMM means)
    y_tr = torch.arange(n_train) % k
    y_te = torch.randint(0, k, (n_test,), generator=g)
    return DataSplit(f"{dataset['name']}-random", torch.rand((n_train, *shape), generator=g), y_tr,
                     torch.rand((n_test, *shape), generator=g), y_te, k,
                     x_val=torch.rand((n_train, *shape), generator=g), y_val=y_tr.clone())


def one_step(cfg: TrialConfig, batch: int = N_TRAIN) -> TrialConfig:
    """The trial with every size knob cut: 1 epoch of one batch, ``*_epochs`` of the model 1, attacks 1 step at
    their first grid value, N_EVAL examples (any, not only ``correct_for``'s), counterfactuals at most 2 iterations.
    Shapes and names are untouched."""
    c: dict[str, Any] = copy.deepcopy(dict(cfg))
    c["train"] = {**c["train"], "epochs": 1, "batch_size": batch}  # batch = the fake training set: one step
    c["model"] = {k: (1 if k.endswith("_epochs") else v) for k, v in c["model"].items()}
    if isinstance(mf := c["model"].get("m_finetune"), dict):  # Deep-CAMA fine-tuning: one PGD step, one epoch
        c["model"]["m_finetune"] = {**mf, "steps": 1, "step_size": mf["eps"], "epochs": 1, "n": batch}
    c["eval"] = {**c["eval"], "n_eval": N_EVAL}
    # which test points are attacked changes no shape, and an untrained model on random data may classify none of
    # the 4 correctly: the common-correct filter is tested on real data (tests/core/test_correct_for.py)
    c["eval"].pop("correct_for", None)
    if c["eval"].get("counterfactual"):
        c["eval"]["counterfactual"] = {**c["eval"]["counterfactual"], "max_iter": 2}
    for a in c["attacks"]:  # one grid point: the shapes are the same at every eps / c
        key, values, _ = split_grid(ATTACKS.get(a["name"]).fn, a)
        if key is not None:
            a[key] = values[0]
    for comp, reg in [*((a, ATTACKS) for a in c["attacks"]), *((d, DETECTORS) for d in c.get("detectors", []))]:
        defaults = reg.get(comp["name"]).defaults()
        for key, cap in _CAPS.items():  # set in the file, or a signature default (rounds=6 of transfer-blackbox)
            value = comp.get(key, defaults.get(key))
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                comp[key] = cap
    return c  # type: ignore[return-value]


#: model parameters naming pretrained weights (``imagenet`` or a file)
WEIGHT_PARAMS = ("weights", "backbone_weights")


def fake_weights(model: dict[str, Any], folder: Path) -> None:
    """Point the model's pretrained-weights parameters at a fake file of the real keys and shapes (random values):
    the loading path runs, no real file is needed (:func:`robustsweep.models.pretrained.fake_vgg_file`)."""
    from robustsweep.models.pretrained import fake_vgg_file

    for key in WEIGHT_PARAMS:
        if model.get(key) is not None:
            arch = model.get("backbone", model["name"])
            model[key] = str(fake_vgg_file(arch, folder / f"fake-{arch}.pth"))


#: attack / detector size parameters and their one-step values (only ever lowered, never raised)
_CAPS = {"steps": 1, "search_steps": 1, "samples": 2, "rounds": 1, "sub_epochs": 1, "n_seed": N_TRAIN, "coords": 8,
         "eot": 1, "fit_steps": 1}


def shape_check(cfg: TrialConfig, *, results: str | None = None) -> list[dict[str, Any]]:
    """Run :func:`one_step` of ``cfg`` through ``run_trial`` on :func:`fake_split` data; returns its rows (raises
    ``TrialFailed`` with the error of any step that does not fit the shape)."""
    data = fake_split(cfg["dataset"], int(cfg["seed"]))  # >= one example per class (200 for Tiny-ImageNet)
    c = one_step(cfg, batch=len(data.x_train))
    with tempfile.TemporaryDirectory(prefix="shape-check-") as tmp, \
            mock.patch.object(trial_mod, "load_data", lambda *a, **k: data):
        fake_weights(c["model"], Path(tmp))
        rt = Runtime(results=results or tmp, sweep="shape-check", cache_dir=None, device="cpu", eval_batch_size=N_EVAL)
        return trial_mod.run_trial(c, rt)
