"""Trained-model cache: one training per distinct key, across trials and across processes; corrupt entries retrain."""
from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import torch
import torch.nn as nn

from robustsweep.models.cache import entry_paths, key_hash, load_or_train

KEY = {"model": {"name": "mlp", "hidden": 8}, "dataset": {"name": "digits"}, "seed": 0,
       "train": {"epochs": 1, "batch_size": 64, "lr": 0.001}}


def _build() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def _trainer(log: list[int], value: float = 1.0):
    def train(m: nn.Module) -> None:
        log.append(1)
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(value)
            m[1].running_mean.fill_(value)  # buffers must round-trip too
    return train


def test_key_hash_is_canonical():
    a = {"b": 1, "a": [1, 2], "c": {"y": 0.1, "x": (1, 2)}}
    b = {"c": {"x": [1, 2], "y": 0.1}, "a": (1, 2), "b": 1}
    assert key_hash(a) == key_hash(b)
    assert key_hash(a) != key_hash({**a, "b": 2})
    assert len(key_hash(a)) == 64


def test_two_trials_sharing_a_model_train_it_once(tmp_path):
    calls: list[int] = []
    m1, c1 = load_or_train(KEY, _build, _trainer(calls), tmp_path)
    m2, c2 = load_or_train(dict(reversed(list(KEY.items()))), _build, _trainer(calls, 2.0), tmp_path)
    assert (c1, c2) == (False, True) and len(calls) == 1
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert torch.all(m2[1].running_mean == 1.0) and not m2.training
    # a different training config is a different model
    _, c3 = load_or_train({**KEY, "train": {**KEY["train"], "epochs": 2}}, _build, _trainer(calls), tmp_path)
    assert not c3 and len(calls) == 2


def test_corrupt_or_truncated_entry_is_retrained(tmp_path):
    calls: list[int] = []
    msgs: list[str] = []
    load_or_train(KEY, _build, _trainer(calls), tmp_path)
    weights, meta, _ = entry_paths(tmp_path, KEY)
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # truncated
    m, cached = load_or_train(KEY, _build, _trainer(calls, 3.0), tmp_path, progress=msgs.append)
    assert not cached and len(calls) == 2 and any("unusable" in s for s in msgs)
    assert torch.all(m[0].weight == 3.0)
    # the rewritten entry is valid again
    _, cached = load_or_train(KEY, _build, _trainer(calls), tmp_path)
    assert cached and len(calls) == 2
    # garbage with a matching checksum file removed / metadata garbage
    meta.write_text("{not json")
    _, cached = load_or_train(KEY, _build, _trainer(calls), tmp_path)
    assert not cached and len(calls) == 3
    # an entry written by a different architecture (state dict mismatch) is retrained, not a crash
    _, cached = load_or_train(KEY, lambda: nn.Linear(4, 5), lambda m: calls.append(1), tmp_path)
    assert not cached and len(calls) == 4


def test_no_cache_dir_just_trains(tmp_path):
    calls: list[int] = []
    _, c = load_or_train(KEY, _build, _trainer(calls), None)
    _, c2 = load_or_train(KEY, _build, _trainer(calls), None)
    assert (c, c2) == (False, False) and len(calls) == 2


def _worker(cache_dir: str, log_file: str, out: str) -> None:
    def train(m: nn.Module) -> None:
        with open(log_file, "a") as f:
            f.write("trained\n")
        time.sleep(1.5)  # long enough that the other process arrives while this one trains
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(7.0)

    m, cached = load_or_train(KEY, _build, train, Path(cache_dir))
    Path(out).write_text(f"{int(cached)} {float(m[0].weight.sum())}")


def test_two_processes_started_at_once_train_once(tmp_path):
    ctx = mp.get_context("spawn")
    log = tmp_path / "log.txt"
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "cache"), str(log), str(tmp_path / f"out{i}")))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert log.read_text().count("trained") == 1
    outs = sorted((tmp_path / f"out{i}").read_text() for i in range(2))
    assert [o.split()[0] for o in outs] == ["0", "1"]  # one trained, the other waited and loaded
    assert outs[0].split()[1] == outs[1].split()[1] == str(7.0 * 12)
