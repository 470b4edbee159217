"""robustsweep: distributed sweeps over generative classifiers and adversarial robustness."""
__version__ = "0.1.0"
