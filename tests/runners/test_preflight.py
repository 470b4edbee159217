"""Issue 16, part 3: the pre-flight refuses a sweep that cannot run here before anything is written or launched."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
import yaml

from robustsweep.cli import main
from robustsweep.data import DataNotStagedError, load_dataset, staging_error
from robustsweep.registry import DATASETS
from robustsweep.runners.preflight import PreflightError, preflight, preflight_problems
from tests.conftest import cli_in_fresh_python

SPEC = {"name": "pf", "dataset": {"name": "mnist", "n_train": 100, "n_test": 50}, "model": {"name": "mlp", "hidden": 8},
        "train": {"epochs": 1}, "attacks": [{"name": "fgsm", "eps": [0.1]}]}


def trial(**over):
    return {"dataset": {"name": "digits"}, "model": {"name": "mlp"}, "attacks": [], "detectors": []} | over


@contextlib.contextmanager
def tmpfs(path: Path, opts: str):
    """A small tmpfs at ``path`` (root only); skips the test where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_unstaged_mnist_exits_2_before_ray_and_writes_nothing(tmp_path):
    f = tmp_path / "mnist.yaml"
    f.write_text(yaml.safe_dump(SPEC))
    results, empty = tmp_path / "results", tmp_path / "empty-data"
    empty.mkdir()
    out, info = cli_in_fresh_python(["run", str(f), "--results", str(results), "--data-root", str(empty), "--cpus", "1"])
    assert info["rc"] == 2
    assert "ray" not in info["heavy"]  # refused before Ray was imported, let alone started
    assert "pre-flight check failed (1 problem(s)); nothing was started" in out.stderr
    assert f"data set 'mnist' is not available under {empty}" in out.stderr and "Stage it by putting" in out.stderr
    assert not results.exists() and not list(empty.iterdir())


def test_every_staged_data_set_has_a_hook_that_agrees_with_its_loader(tmp_path):
    """The hook refuses exactly when the loader would (an empty root), without reading anything."""
    staged = [e.name for e in DATASETS.entries() if e.meta.get("staged")]
    assert {"mnist", "cifar10", "svhn", "tiny-imagenet"} <= set(staged)
    for name in staged:
        assert callable(DATASETS.get(name).meta.get("check_staged")), f"{name}: staged data set without a hook"
        e = staging_error(name, tmp_path)
        assert isinstance(e, DataNotStagedError) and str(tmp_path) in str(e)
        with pytest.raises(DataNotStagedError):
            load_dataset(name, tmp_path)
    for name in ("digits", "two-rings", "mnist5k"):  # bundled: always there
        assert staging_error(name, tmp_path) is None


def test_hook_accepts_a_staged_folder_and_download(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    from robustsweep.data.torchvision_sets import MNIST_STEMS

    for s in MNIST_STEMS[:-1]:
        (raw / s).write_bytes(b"")
    assert isinstance(staging_error("mnist", tmp_path), DataNotStagedError)  # one file short
    (raw / f"{MNIST_STEMS[-1]}.gz").write_bytes(b"")
    assert staging_error("mnist", tmp_path) is None
    assert staging_error("cifar10", tmp_path / "nowhere", download=True) is None  # the node may fetch it


def test_missing_weights_and_all_problems_in_one_message(tmp_path):
    present = tmp_path / "w.pt"
    present.write_bytes(b"x")
    trials = [trial(model={"name": "mlp", "weights": str(present)}),
              trial(dataset={"name": "cifar10"}, model={"name": "mlp", "backbone_path": str(tmp_path / "gone.pt"),
                                                        "weights": "IMAGENET1K_V1"})]
    problems = preflight_problems(trials, tmp_path / "r", data_root=str(tmp_path / "data"))
    assert len(problems) == 2
    assert "cifar10" in problems[0]
    assert problems[1].startswith("model.backbone_path: weights file") and "gone.pt" in problems[1]
    with pytest.raises(PreflightError, match=r"2 problem\(s\)") as e:
        preflight(trials, tmp_path / "r", data_root=str(tmp_path / "data"))
    assert e.value.exit_code == 2
    assert not (tmp_path / "r").exists()


def test_read_only_results_folder_is_refused(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        problems = preflight_problems([trial()], ro / "results")
        assert len(problems) == 1 and "cannot be created" in problems[0]
        problems = preflight_problems([trial()], ro)
        assert len(problems) == 1 and "read-only or not writable" in problems[0]
        f = tmp_path / "s.yaml"
        f.write_text(yaml.safe_dump(SPEC | {"dataset": {"name": "digits"}}))
        assert main(["run", str(f), "--results", str(ro / "results")]) == 2
    assert preflight_problems([trial()], tmp_path / "fine" / "results") == []
