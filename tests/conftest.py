"""Shared fixtures. Tests run on CPU with few threads so the suite fits 2 cores."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
torch.set_num_threads(1)  # tiny models gain nothing from more; avoids OpenMP spin under load

REPO = Path(__file__).resolve().parent.parent


def cli_in_fresh_python(argv: list[str], timeout: float = 180) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``robustsweep argv`` in a new interpreter; returns the process and ``{"rc", "heavy"}``: its exit code
    and which of torch / ray / torchvision it imported (a login-node command must import none)."""
    code = ("import sys, json; from robustsweep.cli import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'heavy': sorted(m for m in ('torch', 'ray', 'torchvision') "
            "if m in sys.modules)}))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out, json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def digits():
    from robustsweep.data import load_dataset

    return load_dataset("digits", seed=0)


def trained_gfz(data, epochs: int, lr: float) -> torch.nn.Module:
    """A small deep-Bayes GFZ (stochastic: K = 10 fresh importance samples per call; dim z 16, 128 hidden, fixed-σ
    Gaussian likelihood) trained ``epochs`` on ``data`` with seed 0, frozen: the stochastic victim the attack and
    detector tests share (each module picks its epochs; train once per module with a module-scoped fixture)."""
    from robustsweep.ops.train import TrainConfig, fit_loss, seed_everything
    from robustsweep.registry import MODELS

    seed_everything(0)
    m = MODELS.get("gfz").fn(input_shape=data.input_shape, num_classes=10, dim_z=16, hidden=128,
                             likelihood="gaussian_fixed", sigma=0.25)
    fit_loss(m, data.x_train, data.y_train, TrainConfig(epochs=epochs, batch_size=64, lr=lr), torch.device("cpu"),
             seed=0)
    for p in m.parameters():
        p.requires_grad_(False)
    return m.eval()


@pytest.fixture(scope="session")
def gmmvae_victim(digits):
    """A small GMM-VAE (mlp nets, 4 epochs on digits, seed 0): the victim of the tests of attacks and detectors
    that need a GMM-VAE (its τ thresholds, eq. 10 / 11 attacks)."""
    from robustsweep.ops.train import TrainConfig, fit, seed_everything
    from robustsweep.registry import MODELS

    seed_everything(0)
    m = MODELS.get("gmmvae").fn(input_shape=digits.input_shape, num_classes=10, arch="mlp", dim_z=10, hidden=64)
    fit(m, digits, TrainConfig(epochs=4, batch_size=64, lr=3e-3), torch.device("cpu"))
    return m.eval()


@pytest.fixture(scope="session")
def mlp_victim():
    """The fixed undefended baseline the attack tests share: scikit-learn digits split 1400/397 by seed 0 and an
    8-epoch MLP (seed 0), frozen. Trained once per session. Returns (model, x_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    from robustsweep.models.baselines import mlp
    from robustsweep.ops.train import TrainConfig, accuracy, fit_loss

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    xtr, ytr, xte, yte = x[perm[:1400]], y[perm[:1400]], x[perm[1400:]], y[perm[1400:]]
    torch.manual_seed(0)
    m = mlp((1, 8, 8), 10, hidden=64, layers=2)
    fit_loss(m, xtr, ytr, TrainConfig(epochs=8, batch_size=64, lr=3e-3), torch.device("cpu"))
    for p in m.parameters():
        p.requires_grad_(False)
    assert accuracy(m, xte, yte) > 0.9
    return m, xtr, xte, yte


def register_quantised_mlp(name: str) -> None:
    """Register ``name``: an MLP behind round(4x)/4. It trains as well as the MLP, but its input gradient is zero
    almost everywhere -- the textbook shattered gradient (Athalye et al. 2018) the sanity probes and the report's
    sanity section must catch. Unregister with ``MODELS.unregister(name)``."""
    from robustsweep.models.baselines import mlp
    from robustsweep.registry import MODELS

    class Quantised(torch.nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.net = mlp(**kw)
            self.num_classes = self.net.num_classes

        def forward(self, x):
            return self.net(torch.round(x * 4) / 4)

        def loss(self, x, y):
            return torch.nn.functional.cross_entropy(self(x), y)

    def build(input_shape, num_classes, hidden: int = 64):
        return Quantised(input_shape=input_shape, num_classes=num_classes, hidden=hidden)

    MODELS.register(name, kind="discriminative", input="any")(build)
