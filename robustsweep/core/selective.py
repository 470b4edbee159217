"""Paper 003's selective-classifier metrics of an attack point: targeted / fooling success against the model's own
reject option (eq. 10, eq. 11) and eq. 9 reclassification of rejected inputs (Table 2). The evaluator
(:mod:`robustsweep.core.evaluate`) calls them for an attack registered with a ``goal`` and for a detector whose
``reclassifies(attack)`` is true; they live here so the evaluator keeps one job (the attack grid and its rows).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from robustsweep.ops.batching import batched, model_device
from robustsweep.ops.metrics import perturbation_norms


def goal_metrics(model: torch.nn.Module, goal: str, fn: Callable[..., Any], params: dict[str, Any], x: torch.Tensor,
                  x_adv: torch.Tensor, y: torch.Tensor, correct: torch.Tensor, pred_adv: torch.Tensor,
                  batch_size: int) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """Metrics of a targeted attack on a selective classifier (paper 003 §4), its success mask and its targets.

    The attacked pool is the initially-correct inputs for eq. 10 (``goal="target"``) and every image for eq. 11
    (``goal="fooling"``: the clean input only sets the target). Over the pool: ``success_rate`` = classified as
    the target (no thresholds; the mask the detector columns see), ``m.target_success`` = classified as the target
    *and* accepted by the model's own reject option (``predict_with_reject``; the paper's success), ``m.rejected``
    = rejected, ``m.reverted`` = accepted and classified as the true label (eq. 10 only; eq. 11:
    ``m.accepted_other`` = accepted as a class other than the target). Perturbation sizes are of the eq. 10
    successes against x; a fooling image is not a perturbation of x, so ``mean_l2`` / ``rho`` / ``mean_linf`` /
    ``adv_accuracy`` are null and ``m.l2_from_noise`` is the mean ℓ2 distance from its uniform-noise start.
    Targets and noise are recomputed on the attack's own batches (same ``batch_size``) from its module's
    ``attack_targets`` / ``noise_start``, so they are the ones the attack used."""
    import inspect

    from robustsweep.attacks import gmm_vae as gv

    defaults = {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}
    target, seed = params.get("target", defaults.get("target", "next")), int(params.get("seed", defaults.get("seed", 0)))
    num_classes = len(gv.GmmVaeView(model).means)
    t = batched(lambda yb: gv.attack_targets(yb, num_classes, target, seed), y, batch_size=batch_size).long()
    dev = model_device(model)
    with torch.no_grad():
        if hasattr(model, "predict_with_reject"):
            rej = batched(lambda xb: model.predict_with_reject(xb)[1], x_adv, batch_size=batch_size, device=dev)
        else:  # a selective classifier without its own reject option: nothing is rejected
            rej = torch.zeros(len(x_adv), dtype=torch.bool)
    rej, t, pa = rej.bool().cpu(), t.cpu(), pred_adv.cpu()
    yc, pool = y.cpu(), (torch.ones_like(correct) if goal == "fooling" else correct).bool().cpu()
    hit = pa == t
    success = (pool & hit).to(y.device)
    out: dict[str, Any] = {
        "success_rate": _frac(hit, pool), "m.target_success": _frac(hit & ~rej, pool), "m.rejected": _frac(rej, pool),
        "m.n_attacked": float(pool.sum()), "n_success": float(success.sum()),
    }
    if goal == "fooling":
        start = batched(lambda xb: gv.noise_start(xb, seed), x, batch_size=batch_size)
        out |= {"adv_accuracy": None, "mean_linf": None, "mean_l2": None, "rho": None,
                "m.accepted_other": _frac(~hit & ~rej, pool),
                "m.l2_from_noise": float((x_adv - start).flatten(1).norm(dim=1).mean())}
    else:
        linf, l2 = (n.cpu() for n in perturbation_norms(x, x_adv))
        s = success.cpu()
        xnorm = x.flatten(1).norm(dim=1).clamp_min(1e-12).cpu()
        out |= {"adv_accuracy": float((pa == yc).float().mean()), "m.reverted": _frac((pa == yc) & ~rej, pool),
                "mean_linf": _mean_or_none(linf[s]), "mean_l2": _mean_or_none(l2[s]),
                "rho": _mean_or_none((l2 / xnorm)[s])}
    return out, success, t


def _frac(mask: torch.Tensor, pool: torch.Tensor) -> float | None:
    """Fraction of ``pool`` where ``mask`` holds; None for an empty pool."""
    return float((mask & pool).sum()) / float(pool.sum()) if pool.any() else None


def _mean_or_none(t: torch.Tensor) -> float | None:
    return float(t.float().mean()) if t.numel() else None


def reclass_columns(name: str, det: Any, model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor,
                     correct: torch.Tensor, success: torch.Tensor) -> dict[str, Any]:
    """Eq. 9 (paper 003, Table 2) on the adversarials of initially-correct inputs that ``det`` rejected:

    ``n_rejected`` of them, ``reclass_accuracy`` = fraction whose reclassified label is the true one,
    ``reclass_accepted_accuracy`` = the same but counting inputs eq. 9 rejects again (z* beyond τ_enc or its
    reconstruction beyond τ_dec) as wrong, ``reclass_rejected`` = that re-rejected fraction, and
    ``n_rejected_fooled`` / ``reclass_accuracy_fooled`` on the rejected ones that had fooled the classifier."""
    pool = correct.bool()
    xs, ys, fooled = x_adv[pool], y[pool].cpu(), success.bool()[pool].cpu()
    rej = det.reject(model, xs).bool().cpu()
    labels, again = det.reclassify(model, xs[rej.to(xs.device)])
    ok, f = labels == ys[rej], fooled[rej]
    cols = {"n_rejected": float(rej.sum()), "reclass_accuracy": _mean_or_none(ok),
            "reclass_accepted_accuracy": _mean_or_none(ok & ~again), "reclass_rejected": _mean_or_none(again),
            "n_rejected_fooled": float(f.sum()), "reclass_accuracy_fooled": _mean_or_none(ok[f])}
    return {f"det.{name}.{k}": v for k, v in cols.items()}


def clean_reclass_columns(name: str, det: Any, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                           correct: torch.Tensor) -> dict[str, Any]:
    """Eq. 9 on the clean test inputs ``det`` rejected (paper 003 §4: "among the 181 samples rejected ... 110 are
    now correctly classified, improving the accuracy to 99.07%"): ``clean_n_rejected``, ``clean_n_recovered``
    (reclassified to the true label), ``clean_reclass_accuracy`` (recovered / rejected) and
    ``clean_accuracy_reclassified`` = (accepted and correct + recovered) / all inputs."""
    rej = det.reject(model, x).bool().cpu()
    labels, _ = det.reclassify(model, x[rej.to(x.device)])
    recovered = float((labels == y.cpu()[rej]).sum())
    accepted_ok = float((correct.cpu() & ~rej).sum())
    cols = {"clean_n_rejected": float(rej.sum()), "clean_n_recovered": recovered,
            "clean_reclass_accuracy": recovered / float(rej.sum()) if rej.any() else None,
            "clean_accuracy_reclassified": (accepted_ok + recovered) / len(x) if len(x) else None}
    return {f"det.{name}.{k}": v for k, v in cols.items()}
