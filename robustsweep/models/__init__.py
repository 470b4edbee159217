"""Model zoo: importing this package registers every model factory with ``robustsweep.registry.MODELS``."""
from robustsweep.models import (
    baselines,  # noqa: F401
    deep_bayes,  # noqa: F401
    fusion,  # noqa: F401
    gmm_vae,  # noqa: F401
)
