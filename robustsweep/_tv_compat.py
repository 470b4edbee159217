"""Make ``import torchvision`` work when its C extension cannot load (CUDA torchvision wheel + CPU torch).

The registry's torchvision 0.28.0 is a CUDA build; against the CPU torch wheel its ``_C`` extension fails to
load and ``torchvision._meta_registrations`` then dies registering fake kernels for ``torchvision::nms``
("operator torchvision::nms does not exist"). Defining the two operator schemas first lets the pure-Python parts
(datasets, models, transforms) import. Only done when the extension is really missing, so a working install on a
cluster is left alone. Import ``torchvision`` only through :func:`import_torchvision`.
"""
from __future__ import annotations

import importlib.util
from types import ModuleType

_done = False


def _extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import glob
    import os

    import torch

    for loc in spec.submodule_search_locations:
        for lib in glob.glob(os.path.join(loc, "_C*.so")):
            try:
                torch.ops.load_library(lib)
                return True
            except (OSError, RuntimeError):
                return False
    return False


def import_torchvision() -> ModuleType:
    global _done
    import torch

    if not _done:
        _done = True
        if not _extension_loads() and not _has_schema("torchvision::nms"):
            lib = torch.library.Library("torchvision", "DEF")  # noqa: F841 — kept alive below
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            globals()["_lib"] = lib
    import torchvision

    return torchvision


def _has_schema(name: str) -> bool:
    import torch

    try:
        torch._C._get_schema(name, "")
        return True
    except RuntimeError:
        return False
