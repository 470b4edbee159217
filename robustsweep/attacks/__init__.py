"""Attacks register themselves on import; one attack per module on the shared helpers of ``base``.

Every public module here is imported (a new attack is one new file)."""
from robustsweep.registry import import_submodules

import_submodules(__name__, __path__)
