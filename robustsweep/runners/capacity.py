"""Whether one trial fits on some node at all, checked before a run starts.

Why: a trial that asks for more CPUs or GPUs than any node has is never scheduled; Ray Tune only logs "insufficient
resources" to the driver log and waits for ever (``run p002_student.yaml --scale mini --cpus 1``: the mini trial
asks for 2 CPUs). This turns that into one clear error, before a folder is created or (for a local run) Ray is
started; the SLURM backend has its own check of the same kind (:func:`robustsweep.runners.slurm.submit
.validate_resources`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from robustsweep.errors import UsageError


class CapacityError(UsageError):
    """No node can ever hold one trial as the experiment file asks; nothing was run."""


def capacity_problem(cpus_per_trial: float, gpus_per_trial: float, nodes: Iterable[Mapping[str, float]],
                     where: str) -> str | None:
    """Why no node of ``nodes`` (each a Ray resource dict, ``{"CPU": 2, "GPU": 1}``) can hold a trial needing
    ``cpus_per_trial`` / ``gpus_per_trial``, or None. ``where`` names the nodes in the message."""
    nodes = list(nodes)
    best_cpu = max((float(n.get("CPU", 0)) for n in nodes), default=0.0)
    best_gpu = max((float(n.get("GPU", 0)) for n in nodes), default=0.0)
    if gpus_per_trial > 0 and gpus_per_trial > best_gpu:
        return (f"a trial asks for {gpus_per_trial:g} GPU(s) (resources.gpus_per_trial) but {where} "
                f"{'has no GPU' if best_gpu == 0 else f'has at most {best_gpu:g} on a node'}: run it where a GPU is, "
                f"or set --set resources.gpus_per_trial=0 (the trial then runs on the CPU)")
    if cpus_per_trial > best_cpu:
        return (f"a trial asks for {cpus_per_trial:g} CPUs (resources.cpus_per_trial) but no node of {where} "
                f"has more than {best_cpu:g}, so it would never start: give it more (--cpus {int(-(-cpus_per_trial // 1))})"
                f" or lower it (--set resources.cpus_per_trial={max(1, int(best_cpu))})")
    return None


def local_resources(cpus: int | None, gpus_per_trial: float) -> dict[str, float]:
    """What a Ray started here by the runner gets: ``cpus`` (default: every core) and the GPUs torch sees. torch is
    only imported when a trial asks for a GPU, so the common CPU check costs nothing."""
    out: dict[str, float] = {"CPU": float(cpus or os.cpu_count() or 1)}
    if gpus_per_trial > 0:
        import torch

        out["GPU"] = float(torch.cuda.device_count())
    return out


def check_capacity(cpus_per_trial: float, gpus_per_trial: float, nodes: Iterable[Mapping[str, float]],
                   where: str) -> None:
    """Raise :class:`CapacityError` when :func:`capacity_problem` finds one."""
    if (problem := capacity_problem(cpus_per_trial, gpus_per_trial, nodes, where)) is not None:
        raise CapacityError(problem + "; nothing was run")
