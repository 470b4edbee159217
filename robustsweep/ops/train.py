"""The generic training loop: minibatch Adam on ``model.loss(x, y)``, with progress, NaN stop and determinism.

Models with their own procedure (fusion models train a backbone first, the GMM-VAE has a semi-supervised mode)
define ``fit(data, cfg, device, progress)`` and :func:`fit` defers to it.

Adversarial training (PGD-AT, Madry et al. 2018; what paper 004 means by a "robust" model): with
``TrainConfig.adversarial = {eps, steps, step_size}`` every minibatch is first replaced by L∞ PGD adversarials of
it (uniform random start, sign-gradient ascent on the model's own training loss, projected to the ε-ball and to
[0, 1]) and the loss is minimised on those alone. The PGD here is a dozen lines of its own rather than
``robustsweep.attacks.pgd`` because ops sits below attacks in the layer order; it is the same iteration.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from robustsweep.data.base import DataSplit
from robustsweep.ops.batching import predict


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the trial is recorded as failed with this message."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    adversarial: dict[str, float] | None = None  # PGD-AT {eps, steps, step_size} (module docstring); None = off


_ADV_KEYS = ("eps", "steps", "step_size")


def _adversarial_params(adv: dict[str, float] | None) -> tuple[float, int, float] | None:
    """(eps, steps, step_size) of ``TrainConfig.adversarial``, or None; a clear error for a malformed mapping."""
    if adv is None:
        return None
    if not isinstance(adv, dict) or set(adv) != set(_ADV_KEYS):
        raise ValueError(f"train.adversarial must be a mapping with exactly the keys {', '.join(_ADV_KEYS)}, got {adv!r}")
    eps, steps, step = float(adv["eps"]), int(adv["steps"]), float(adv["step_size"])
    if not (eps > 0 and steps >= 1 and step > 0):
        raise ValueError(f"train.adversarial needs eps > 0, steps >= 1 and step_size > 0, got {adv!r}")
    return eps, steps, step


def pgd_examples(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, step_size: float,
                 gen: torch.Generator) -> torch.Tensor:
    """L∞ PGD adversarials of a training batch for PGD-AT: start uniform in the ε-ball (drawn from ``gen``, so a
    resumed run draws the same starts), ``steps`` sign-gradient ascent steps on ``loss_fn``, each projected to the
    ball and to [0, 1]. The model is put in eval mode while crafting (batch-norm statistics are not updated by
    the attack's forward passes) and restored to its previous mode; the returned batch carries no graph."""
    was_training = model.training
    model.eval()
    start = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device, x.dtype) * eps
    x_adv = (x + start).clamp(0, 1).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(x_adv, y), x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1).detach()
    model.train(was_training)
    return x_adv


Progress = Callable[[str], None]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) so a trial on CPU is a pure function of its config and seed."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit(
    model: torch.nn.Module,
    data: DataSplit,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress | None = None,
    seed: int = 0,
    checkpoint: Path | None = None,
) -> torch.nn.Module:
    if hasattr(model, "fit"):
        if cfg.adversarial is not None:
            raise ValueError(f"train.adversarial (PGD-AT) needs the generic training loop; {type(model).__name__} "
                             f"trains with its own procedure (fit), which does not support it")
        model.fit(data, cfg, device, progress)
        return model
    return fit_loss(model, data.x_train, data.y_train, cfg, device, progress, seed, checkpoint=checkpoint)


def _save_checkpoint(path: Path, model, opt, epoch: int, gen: torch.Generator) -> None:
    import io

    from robustsweep.store.atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                "gen": gen.get_state(), "rng": torch.get_rng_state()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, model, opt, gen: torch.Generator, progress: Progress | None) -> int:
    """Restore model, optimiser and RNG state; return the number of finished epochs (0 when none/unusable)."""
    if not path.exists():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["rng"])
    except Exception as e:  # a corrupt checkpoint costs the epochs it held, never the trial
        if progress:
            progress(f"ignoring unusable training checkpoint {path.name}: {type(e).__name__}: {e}")
        return 0
    if progress:
        progress(f"resuming training from checkpoint after epoch {state['epoch']}")
    return int(state["epoch"])


def fit_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress | None = None,
    seed: int = 0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every_s: float = 30.0,
) -> torch.nn.Module:
    """Minimise ``loss_fn(x, y)`` (default ``model.loss``) with Adam; raises TrainingDiverged on NaN.

    With ``checkpoint``, the model, optimiser, epoch and RNG states are saved there (atomically) at most every
    ``checkpoint_every_s`` seconds, and a run that finds one continues from it: a pre-empted or killed trial
    resumes training where it stopped, and on CPU ends with exactly the weights of an uninterrupted run.
    With ``cfg.adversarial`` each minibatch is replaced by :func:`pgd_examples` of it before the loss (PGD-AT).
    """
    adv = _adversarial_params(cfg.adversarial)
    model.to(device).train()
    loss_fn = loss_fn or model.loss
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    start = _load_checkpoint(checkpoint, model, opt, gen, progress) if checkpoint else 0
    n = len(x)
    x, y = x.to(device), y.to(device)
    t0 = time.time()
    last_report = last_save = t0
    for epoch in range(start, cfg.epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        total, count = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            xb = x[idx] if adv is None else pgd_examples(model, loss_fn, x[idx], y[idx], *adv, gen)
            loss = loss_fn(xb, y[idx])
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"training loss became {loss.item()} at epoch {epoch + 1}, step {i // cfg.batch_size + 1}; "
                    f"try a lower learning rate (train.lr={cfg.lr})"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        now = time.time()
        if checkpoint and now - last_save >= checkpoint_every_s and epoch + 1 < cfg.epochs:
            _save_checkpoint(checkpoint, model, opt, epoch + 1, gen)
            last_save = now
        if progress and (now - last_report > 5 or epoch + 1 == cfg.epochs):
            last_report = now
            eta = (now - t0) / (epoch + 1 - start) * (cfg.epochs - epoch - 1)
            progress(f"epoch {epoch + 1}/{cfg.epochs} loss {total / max(count, 1):.4g} eta {eta:.0f}s")
    model.eval()
    return model


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    if len(x) == 0:
        return math.nan
    return (predict(model, x, batch_size) == y.cpu()).float().mean().item()
