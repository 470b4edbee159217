"""Attacks register themselves on import; one attack per module on the shared helpers of ``base``."""
from robustsweep.attacks import fgsm, pgd  # noqa: F401
