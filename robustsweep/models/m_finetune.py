"""Deep-CAMA-style fine-tuning of the perturbation latent m on perturbed inputs (Zhang et al. 2020, [18] of paper 000).

Why: paper 000 trains its causal head on clean data with m = 0 and only *samples* m from q(m|x1, x2, y) at inference
(§3.2), so q(m|·) never learns anything and m carries no information about a perturbation. Deep CAMA, the model it
extends, instead fine-tunes the m-part of the model on manipulated data. This option makes that difference
measurable: ``m_finetune: {eps, steps, step_size, epochs, n}`` on ``causal`` and ``deep-cama``.

What it does (our reading of CAMA's fine-tuning on labelled manipulated training data; the papers give no numbers,
so every default here is chosen):

1. after the usual clean training, ``n`` training images (seeded choice; null = all) are perturbed by L∞ PGD against
   the trained model's own classification (``steps`` × ``step_size`` inside ``eps``, uniform random start;
   :func:`robustsweep.ops.train.pgd_examples`);
2. the head switches to a learned q(m) (its ``m_learned`` buffer: the ELBO draws m from q(m|·) with its KL term, and
   eq. 10's importance weights carry p(m)/q(m));
3. only the parameters of the m-path train -- q(m|·) and the decoder's input weights from m (a gradient mask on the
   decoder's first layer keeps its y and z columns, and everything else, as trained) -- on the clean and the
   perturbed images together, ``epochs`` epochs with the trial's batch size and learning rate.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from robustsweep.ops.batching import batched
from robustsweep.ops.train import Progress, TrainConfig, fit_loss, pgd_examples


@dataclasses.dataclass(frozen=True)
class MFinetune:
    eps: float
    steps: int
    step_size: float
    epochs: int = 5
    n: int | None = 2000

    @classmethod
    def parse(cls, spec: dict[str, Any] | None) -> MFinetune | None:
        """From the model option; a clear error names the keys and what they must be."""
        if spec is None:
            return None
        keys = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(spec, dict) or not {"eps", "steps", "step_size"} <= set(spec) or set(spec) - keys:
            raise ValueError(f"m_finetune must be a mapping with keys eps, steps, step_size (and optionally epochs, "
                             f"n), got {spec!r}")
        out = cls(**spec)
        if not (out.eps > 0 and out.steps >= 1 and out.step_size > 0 and out.epochs >= 1
                and (out.n is None or out.n >= 1)):
            raise ValueError(f"m_finetune needs eps > 0, steps >= 1, step_size > 0, epochs >= 1, n >= 1 or null; "
                             f"got {spec!r}")
        if out.steps * out.step_size < out.eps - 1e-9:
            raise ValueError(f"m_finetune: {out.steps} steps x {out.step_size} cannot reach eps {out.eps}")
        return out


def m_path_parameters(head: nn.Module) -> list[nn.Parameter]:
    """q(m|·)'s parameters and the decoder's first layer (whose m columns the mask keeps trainable)."""
    return [*head.q_m.parameters(), head.dec[0].weight]


def finetune_m(model: nn.Module, head: nn.Module, to_head: Callable[[torch.Tensor], torch.Tensor],
               x: torch.Tensor, y: torch.Tensor, spec: MFinetune, cfg: TrainConfig, device: torch.device,
               progress: Progress | None, seed: int) -> None:
    """Fine-tune ``head`` (a :class:`~robustsweep.models.causal.CausalHead`) as the module docstring says.
    ``model`` maps images to logits (the whole pipeline, attacked by the PGD), ``to_head`` images to head inputs."""
    gen = torch.Generator().manual_seed(seed + 1)
    if spec.n is not None and spec.n < len(x):
        idx = torch.randperm(len(x), generator=gen)[: spec.n]
        x, y = x[idx], y[idx]
    if progress:
        progress(f"m fine-tuning: PGD eps={spec.eps} ({spec.steps} x {spec.step_size}) on {len(x)} training images")
    model.eval()

    def ce(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(xb), yb)

    chunks = []
    for i in range(0, len(x), cfg.batch_size):
        xb, yb = x[i:i + cfg.batch_size].to(device), y[i:i + cfg.batch_size].to(device)
        chunks.append(pgd_examples(model, ce, xb, yb, spec.eps, spec.steps, spec.step_size, gen))
    x_adv = torch.cat(chunks)
    with torch.no_grad():
        h = torch.cat([batched(to_head, x, batch_size=512, device=device).to(device),
                       batched(to_head, x_adv, batch_size=512, device=device).to(device)])
    yy = torch.cat([y, y]).to(device)

    head.m_learned.fill_(True)
    trainable = m_path_parameters(head)
    ids = {id(p) for p in trainable}
    saved = {p: p.requires_grad for p in head.parameters()}
    for p in head.parameters():
        p.requires_grad_(id(p) in ids)
    dec_w = head.dec[0].weight
    mask = torch.zeros_like(dec_w)
    mask[:, -head.dim_m:] = 1.0  # the decoder input is cat(y, z, m): only m's columns learn
    hook = dec_w.register_hook(lambda g: g * mask)
    try:
        fit_loss(head, h, yy, dataclasses.replace(cfg, epochs=spec.epochs, adversarial=None, weight_decay=0.0), device, progress,
                 seed + 1)
    finally:
        hook.remove()
        for p, r in saved.items():
            p.requires_grad_(r)
    head.eval()
