from robustsweep.models import baselines  # noqa: F401
