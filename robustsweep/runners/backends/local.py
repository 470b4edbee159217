"""``local``: Ray Tune on this machine (``--cpus``) or on a running Ray cluster (``--address``); runs to the end."""
from __future__ import annotations

import argparse
from typing import Any

from robustsweep.runners.base import Backend, Runner, register_backend


@register_backend
class Local(Backend):
    """Run here: Ray Tune on this machine or a given Ray cluster (returns when every trial has finished)."""

    name = "local"
    title = "local"

    def make(self, a: argparse.Namespace, spec: Any) -> Runner:
        from robustsweep.runners.capacity import check_capacity, local_resources
        from robustsweep.runners.tune import LocalBackend

        res = spec.resources
        if getattr(a, "address", None) is None:  # the Ray this command would start: refuse before it starts
            have = local_resources(getattr(a, "cpus", None), res.gpus_per_trial)
            where = (f"the local Ray ({have['CPU']:g} CPU(s){' from --cpus' if getattr(a, 'cpus', None) else ''}"
                     + (f", {have['GPU']:g} GPUs" if "GPU" in have else "") + ")")
            check_capacity(res.cpus_per_trial, res.gpus_per_trial, [have], where)
        return LocalBackend(address=getattr(a, "address", None), cpus=getattr(a, "cpus", None),
                            max_concurrent=getattr(a, "max_concurrent", None))
