"""Model zoo: importing this package registers every model factory with ``robustsweep.registry.MODELS``."""
from robustsweep.models import baselines  # noqa: F401
from robustsweep.models import deep_bayes  # noqa: F401
from robustsweep.models import fusion  # noqa: F401
from robustsweep.models import gmm_vae  # noqa: F401
