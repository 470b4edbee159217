"""Attacks register themselves on import; one attack per module on the shared helpers of ``base``."""
from robustsweep.attacks import (  # noqa: F401
    apgd,
    cw,
    deepfool,
    fgsm,
    gmm_vae,
    he_pgd,
    ifgsm,
    mim,
    pgd,
    speed,
    spsa,
    transfer,
    zoo,
)
