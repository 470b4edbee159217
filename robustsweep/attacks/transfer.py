"""Transfer attacks of paper 001 §4.2: craft PGD/MIM adversarials on a substitute CNN, evaluate on the victim.

- grey-box (``transfer-greybox``): the attacker knows the training inputs and the victim's output *probability
  vectors* on them; the substitute is distilled from those soft labels (cross-entropy to the victim's softmax).
- black-box (``transfer-blackbox``): the attacker only queries *labels*; following Papernot et al. (2017) the
  substitute starts from ``n_seed`` inputs labelled by the victim and, for ``rounds`` rounds, is trained and the
  set doubled by Jacobian-based augmentation x + λ·sign(∇_x F_sub[O(x)](x)), each new point labelled by the victim.

Where the substitute's training inputs come from: the trial must hand them over once with
:func:`register_substitute_data` (``register_substitute_data(model, data.x_train)``) because an attack function
only sees the evaluation batch. The substitute is trained once per (victim, data, substitute settings) and cached
(weakly keyed by the victim), so an ε grid and the evaluator's batching reuse it.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F

from robustsweep.attacks._util import batched_logits, model_device
from robustsweep.attacks.mim import mim
from robustsweep.attacks.pgd import pgd
from robustsweep.registry import ATTACKS

_DATA: weakref.WeakKeyDictionary[torch.nn.Module, torch.Tensor] = weakref.WeakKeyDictionary()
_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, torch.nn.Module]] = weakref.WeakKeyDictionary()


def register_substitute_data(model: torch.nn.Module, x_train: torch.Tensor) -> None:
    """Tell the transfer attacks which (training) inputs the attacker of ``model`` may use for its substitute."""
    _DATA[model] = x_train.detach()


def prepare_substitute_data(model: torch.nn.Module, data: Any, cfg: Any, log: Any = None) -> None:
    """The registry's ``prepare`` hook of both transfer attacks: the trial calls it once before attacking, so the
    substitute learns from the trial's training inputs (on the victim's device)."""
    p = next(model.parameters(), None)
    register_substitute_data(model, data.x_train.to(p.device if p is not None else "cpu"))


def _substitute_inputs(model: torch.nn.Module) -> torch.Tensor:
    try:
        return _DATA[model]
    except KeyError:
        raise ValueError(
            "transfer attacks need the attacker's training inputs: call "
            "robustsweep.attacks.transfer.register_substitute_data(model, data.x_train) before attacking"
        ) from None


def _make_substitute(arch: str, input_shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    from robustsweep.models.baselines import cnn, mlp

    if arch == "auto":
        arch = "cnn" if len(input_shape) == 3 and min(input_shape[1:]) >= 4 else "mlp"
    if arch == "cnn":
        return cnn(input_shape, num_classes)
    if arch == "mlp":
        return mlp(input_shape, num_classes)
    raise ValueError(f"substitute arch must be 'auto', 'cnn' or 'mlp', got {arch!r}")


def _train(sub: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, epochs: int, lr: float, batch_size: int,
           seed: int) -> None:
    """Minibatch Adam on cross-entropy to ``target`` (hard labels (N,) or probability vectors (N, C))."""
    opt = torch.optim.Adam(sub.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    sub.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            logp = sub(x[idx]).log_softmax(1)
            t = target[idx]
            loss = F.nll_loss(logp, t) if t.dim() == 1 else -(t * logp).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sub.eval()


def _cached(model: torch.nn.Module, key: tuple) -> torch.nn.Module | None:
    return _CACHE.get(model, {}).get(key)


def greybox_substitute(model: torch.nn.Module, x_train: torch.Tensor, arch: str = "auto", epochs: int = 10,
                       lr: float = 1e-3, batch_size: int = 100, seed: int = 0) -> torch.nn.Module:
    """Student network distilled from the victim's output probabilities on ``x_train`` (cached)."""
    key = ("grey", x_train.data_ptr(), tuple(x_train.shape), arch, epochs, lr, batch_size, seed)
    sub = _cached(model, key)
    if sub is not None:
        return sub
    dev = model_device(model)
    x_train = x_train.to(dev)
    probs = batched_logits(model, x_train).softmax(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sub = _make_substitute(arch, tuple(x_train.shape[1:]), probs.shape[1]).to(dev)
    _train(sub, x_train, probs, epochs, lr, batch_size, seed)
    _CACHE.setdefault(model, {})[key] = sub
    return sub


def blackbox_substitute(model: torch.nn.Module, x_train: torch.Tensor, arch: str = "auto", n_seed: int = 150,
                        rounds: int = 6, aug_lambda: float = 0.1, epochs: int = 10, lr: float = 1e-3,
                        batch_size: int = 100, seed: int = 0) -> torch.nn.Module:
    """Papernot et al.'s substitute: label-only queries + Jacobian-based dataset augmentation (cached)."""
    key = ("black", x_train.data_ptr(), tuple(x_train.shape), arch, n_seed, rounds, aug_lambda, epochs, lr,
           batch_size, seed)
    sub = _cached(model, key)
    if sub is not None:
        return sub
    dev = model_device(model)
    g = torch.Generator().manual_seed(seed)
    s = x_train[torch.randperm(len(x_train), generator=g)[:n_seed]].to(dev)
    labels = batched_logits(model, s).argmax(1)
    num_classes = int(getattr(model, "num_classes", int(labels.max()) + 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sub = _make_substitute(arch, tuple(s.shape[1:]), num_classes).to(dev)
    for r in range(rounds + 1):
        _train(sub, s, labels, epochs, lr, batch_size, seed + r)
        if r == rounds:
            break
        # Jacobian augmentation: move each point along the sign of the substitute's gradient for its oracle label
        xs = s.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = sub(xs).gather(1, labels[:, None]).sum()
            (grad,) = torch.autograd.grad(out, xs)
        new = (s + aug_lambda * grad.sign()).clamp(0, 1)
        s = torch.cat([s, new])
        labels = torch.cat([labels, batched_logits(model, new).argmax(1)])
    _CACHE.setdefault(model, {})[key] = sub
    return sub


def _craft(sub: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, method: str, eps: float, steps: int,
           step_size: float, decay: float, random_start: bool = True) -> torch.Tensor:
    """The white-box attack run on the substitute. ``random_start`` for both methods: paper 001's public code runs
    its white-box PGD and MIM configurations (``rand_init``) on the distilled substitute as on the victim."""
    if method == "pgd":
        return pgd(sub, x, y, eps=eps, steps=steps, step_size=step_size, random_start=random_start)
    if method == "mim":
        return mim(sub, x, y, eps=eps, steps=steps, step_size=step_size, decay=decay, random_start=random_start)
    raise ValueError(f"transfer method must be 'pgd' or 'mim', got {method!r}")


@ATTACKS.register("transfer-greybox", norm="linf", budget="eps", threat="transfer", iterative=True,
                 prepare=prepare_substitute_data)
def transfer_greybox(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    method: str = "pgd",
    steps: int = 40,
    step_size: float = 0.01,
    decay: float = 1.0,
    random_start: bool = True,
    sub_arch: str = "auto",
    sub_epochs: int = 10,
    sub_lr: float = 1e-3,
    seed: int = 0,
) -> torch.Tensor:
    """Grey-box transfer (paper 001 §4.2): PGD/MIM on a student distilled from the victim's probabilities."""
    if eps == 0:
        return x.clone()
    sub = greybox_substitute(model, _substitute_inputs(model), sub_arch, sub_epochs, sub_lr, seed=seed)
    return _craft(sub, x, y, method, eps, steps, step_size, decay, random_start)


@ATTACKS.register("transfer-blackbox", norm="linf", budget="eps", threat="transfer", iterative=True,
                 prepare=prepare_substitute_data)
def transfer_blackbox(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float = 0.1,
    method: str = "pgd",
    steps: int = 40,
    step_size: float = 0.01,
    decay: float = 1.0,
    random_start: bool = True,
    sub_arch: str = "auto",
    n_seed: int = 150,
    rounds: int = 6,
    aug_lambda: float = 0.1,
    sub_epochs: int = 10,
    sub_lr: float = 1e-3,
    seed: int = 0,
) -> torch.Tensor:
    """Black-box transfer (paper 001 §4.2, Papernot et al. 2017): label queries + Jacobian augmentation."""
    if eps == 0:
        return x.clone()
    sub = blackbox_substitute(model, _substitute_inputs(model), sub_arch, n_seed, rounds, aug_lambda, sub_epochs,
                              sub_lr, seed=seed)
    return _craft(sub, x, y, method, eps, steps, step_size, decay, random_start)


def cache_info(model: torch.nn.Module) -> dict[str, Any]:
    """Which substitutes are cached for ``model`` (for tests and debugging)."""
    return {"n_substitutes": len(_CACHE.get(model, {})), "has_data": model in _DATA}
