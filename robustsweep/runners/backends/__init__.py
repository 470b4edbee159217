"""Every backend, one module each: a module here registers a :class:`robustsweep.runners.base.Backend` and is found by
:func:`robustsweep.registry.import_submodules` (a new backend is one new file, no list to keep in step).

These modules are read on a login node (``status``, the CLI's ``--backend`` choices), so they import nothing heavy at
the top: what runs trials (Ray, torch, submitit, pydantic options) is imported inside ``Backend.make``.
"""
from __future__ import annotations

from robustsweep.registry import import_submodules

#: what ``run`` uses, and ``resume`` of a sweep never submitted to a scheduler
RUN_HERE = "local"
#: what ``submit`` uses unless ``--backend`` says otherwise
SUBMIT_TO = "slurm"

import_submodules(__name__, __path__)
