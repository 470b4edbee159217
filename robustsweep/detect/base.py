"""What every registered detector is: the :class:`Detector` base class and its declared contract.

A detector factory registered with ``@DETECTORS.register("name")`` takes its settings (``alpha``, ``target_fpr``,
``rule``…) as keyword arguments and returns a :class:`Detector`. Why a base class rather than a protocol: the
evaluator asks every detector the same questions (does it refit per attack? reclassify what it rejects? average its
rates over classes?), and a default answer declared here is what most detectors give. Before, the evaluator probed
for each optional method with ``getattr``, so a typo in a detector's method name silently switched a paper's
measurement off. A detector overrides only what it does differently.

Must implement:

- ``fit(model, x, y) -> self``: fit thresholds on CLEAN training or validation data (never the test set);
- ``score(model, x) -> (N,)``: higher = more suspicious (used for ROC curves and AUC);
- ``evasion(model, x, form="hinge", logits=None) -> (N,)``: the score recomputed WITH gradients w.r.t. x, as
  relu(score - threshold) (``hinge``) or the score itself (``raw``), so any gradient attack can be pointed at the
  detector (``detector_aware``, :mod:`robustsweep.attacks.adaptive`); ``logits`` lets it reuse the attack's forward
  pass;
- ``threshold``: the operating point on the ``score`` scale (reject iff score > threshold), set by ``fit``.

Declared with defaults (override where the detector differs): ``reject``, ``calibration_scores``, ``hist_bins``,
``class_averaged`` / ``score_and_class``, ``needs_fit_logits``, ``refits`` / ``refitted``, ``fitted_on_attack``,
``reclassifies`` / ``reclassify``.
"""
from __future__ import annotations

import torch


class Detector:
    """Base of every detector (module docstring). Class attributes are the defaults an instance may overwrite."""

    threshold: float | None = None
    calibration_scores: torch.Tensor | None = None  # `score` of the clean fit data: 1/5/10 % FPR thresholds
    fit_split: str | None = None  # "train" | "validation": set by detect.fit_detectors
    hist_bins: int = 0  # > 0: the evaluator stores binned score histograms (paper 004 Figs. 2(a) / 3(a))

    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Detector:
        raise NotImplementedError

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "hinge",
                logits: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """True where the input is flagged: score above the threshold."""
        return self.score(model, x) > self.threshold

    @property
    def class_averaged(self) -> bool:
        """Whether rates are reported averaged over the predicted classes (then :meth:`score_and_class` is needed)."""
        return False

    def score_and_class(self, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(score, class whose threshold it was compared with), from one model call. Only for ``class_averaged``."""
        raise NotImplementedError(f"{type(self).__name__} does not report class-averaged rates")

    def needs_fit_logits(self, model: torch.nn.Module) -> bool:
        """Whether :meth:`fit` takes the fit data's logits as ``logits=`` (computed once for all such detectors)."""
        return False

    def refits(self, *names: str) -> bool:
        """Whether an attack point of the attack called ``names`` (label, registry name) gets a threshold of its own,
        fitted on that point's adversarials of held-out data (:meth:`refitted`)."""
        return False

    def refitted(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> Detector:
        """A copy fitted on clean ``x`` and adversarials ``x_adv`` of it; ``self`` stays as it was."""
        raise NotImplementedError(f"{type(self).__name__} does not refit per attack")

    @property
    def fitted_on_attack(self) -> str | None:
        """The attack whose adversarials the trial's threshold was fitted on (None: clean data only)."""
        return None

    def reclassifies(self, attack: str) -> bool:
        """Whether the inputs this detector rejects under ``attack`` are handed to :meth:`reclassify`."""
        return False

    def reclassify(self, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(new labels, rejected again) for rejected inputs (paper 003 eq. 9)."""
        raise NotImplementedError(f"{type(self).__name__} does not reclassify")
