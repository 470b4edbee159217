"""Model zoo: importing this package registers every model factory with ``robustsweep.registry.MODELS``.

Every public module here is imported (a new model is one new file)."""
from robustsweep.registry import import_submodules

import_submodules(__name__, __path__)
