"""τ_enc / τ_dec rejection of the GMM-prior VAE selective classifier (paper 003).

Reject x if the squared Mahalanobis distance of its encoding to the mean of its predicted class exceeds τ_enc
(a chi-square critical value, "3σ rule") or its reconstruction error exceeds τ_dec. By default the model's own
thresholds (``model.tau_enc`` / ``model.tau_dec``) are used, so the detector is exactly the classifier's
rejection option; with ``use_model_thresholds=False`` (or a model without them) both are re-fitted as the
``quantile`` of the clean fit data's distances. ``score`` = max(m/τ_enc, rec/τ_dec) (for ``which="both"``), so
score > 1 is rejection and ROC curves sweep a common scale factor on both thresholds.

``reclassify=True`` opts into eq. 9 (paper 003, Table 2): the evaluator
(:func:`robustsweep.core.evaluate.evaluate`) hands the inputs this detector rejected to :meth:`TauDetector.reclassify`,
which runs the model's ``GMMVAE.reclassify`` (z optimised from every class mean, best reconstruction wins) in
batches, and records how many of them get their true label back (``det.<label>.reclass_*`` columns).
``reclassify_attacks`` limits that to some attacks (eq. 9 is an optimisation per rejected input: Table 2 needs it
for FGSM only); the steps / rate are the optimiser's.
"""
from __future__ import annotations

import torch

from robustsweep.attacks.adaptive import hinge_or_raw
from robustsweep.attacks.gmm_vae import GmmVaeView
from robustsweep.detect._common import NotApplicable
from robustsweep.detect.base import Detector
from robustsweep.ops.batching import batched, model_device
from robustsweep.registry import DETECTORS


class TauDetector(Detector):
    threshold = 1.0

    def __init__(self, which: str = "both", use_model_thresholds: bool = True, quantile: float = 0.9973,
                 reclassify: bool = False, reclassify_attacks: list[str] | None = None, reclassify_steps: int = 200,
                 reclassify_lr: float = 0.05, reclassify_batch: int = 256):
        if which not in ("both", "enc", "dec"):
            raise ValueError(f"which must be 'both', 'enc' or 'dec', got {which!r}")
        if reclassify_steps < 1 or reclassify_lr <= 0 or reclassify_batch < 1:
            raise ValueError(f"reclassify_steps and reclassify_batch must be >= 1 and reclassify_lr > 0, got "
                             f"{reclassify_steps}, {reclassify_batch}, {reclassify_lr}")
        self.which, self.use_model, self.quantile = which, use_model_thresholds, quantile
        self.reclassify_on, self.reclassify_attacks = reclassify, reclassify_attacks
        self.reclassify_steps, self.reclassify_lr, self.reclassify_batch = reclassify_steps, reclassify_lr, reclassify_batch
        self.tau_enc: float | None = None
        self.tau_dec: float | None = None
        self.calibration_scores: torch.Tensor | None = None  # `score` of the clean fit data (set by fit)

    @staticmethod
    def _view(model: torch.nn.Module) -> GmmVaeView:
        try:
            return GmmVaeView(model)
        except TypeError as e:
            raise NotApplicable(f"gmmvae-tau detector: {e}") from None

    @torch.no_grad()
    def _distances(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        view = self._view(model)
        dev = model_device(model)
        c = batched(view.predict_latent, x, device=dev) if y is None else y
        return batched(view.latent_distance, x, c, device=dev), batched(view.recon_error, x, device=dev)

    def fit(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> TauDetector:
        view = self._view(model)
        if self.use_model and getattr(model, "tau_enc", None) is not None:
            self.tau_enc, self.tau_dec = view.tau_enc, view.tau_dec
        else:
            m, r = self._distances(model, x, y)
            self.tau_enc = float(torch.quantile(m.float(), self.quantile))
            self.tau_dec = float(torch.quantile(r.float(), self.quantile))
        # clean fit scores: the evaluator recomputes 1/5/10 % FPR thresholds on them (one no-grad pass)
        self.calibration_scores = self.score(model, x).detach().cpu()
        return self

    def score(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.tau_enc is None:
            raise RuntimeError("gmmvae-tau detector used before fit()")
        m, r = self._distances(model, x)
        enc, dec = m / self.tau_enc, r / self.tau_dec
        if self.which == "enc":
            return enc
        if self.which == "dec":
            return dec
        return torch.maximum(enc, dec)

    def reject(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.score(model, x) > self.threshold

    def reclassifies(self, attack: str) -> bool:
        """Whether the evaluator should reclassify (eq. 9) this detector's rejections of ``attack``'s adversarials."""
        return self.reclassify_on and (self.reclassify_attacks is None or attack in self.reclassify_attacks)

    def reclassify(self, model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 9 on ``x`` (the rejected inputs): (label, rejected again as a fooling sample) per input, from the
        model's ``reclassify`` in batches of ``reclassify_batch`` inputs (each batch optimises classes x inputs
        latent codes at once). Not rejecting again is the paper's choice for Table 2 ("one can choose not to
        reject samples during reclassification"); the flag is returned so both readings can be reported."""
        if not hasattr(model, "reclassify"):
            raise NotApplicable(f"gmmvae-tau reclassify: {type(model).__name__} has no reclassify (eq. 9)")
        dev = model_device(model)
        if len(x) == 0:
            return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.bool)
        out = [model.reclassify(x[i:i + self.reclassify_batch].to(dev), steps=self.reclassify_steps,
                                lr=self.reclassify_lr, reject_fooling=True) for i in range(0, len(x), self.reclassify_batch)]
        return torch.cat([o[0].cpu() for o in out]), torch.cat([o[1].cpu() for o in out])

    def evasion(self, model: torch.nn.Module, x: torch.Tensor, form: str = "hinge",
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable evasion term (:mod:`robustsweep.attacks.adaptive`): :meth:`score` recomputed with
        gradients (``score`` runs under no_grad in batches), hinge relu(score - 1) or raw. The predicted class is
        the nearest mean (not differentiated); ``logits`` are unused (the score is on the latent code)."""
        if self.tau_enc is None:
            raise RuntimeError("gmmvae-tau detector used before fit()")
        view = self._view(model)
        with torch.no_grad():
            c = view.predict_latent(x)
        enc = view.latent_distance(x, c) / self.tau_enc
        dec = view.recon_error(x) / self.tau_dec
        score = enc if self.which == "enc" else dec if self.which == "dec" else torch.maximum(enc, dec)
        return hinge_or_raw(score, self.threshold, form)


@DETECTORS.register("gmmvae-tau", calibration="train", needs="gmmvae")
def gmmvae_tau(which: str = "both", use_model_thresholds: bool = True, quantile: float = 0.9973,
               reclassify: bool = False, reclassify_attacks: list[str] | None = None, reclassify_steps: int = 200,
               reclassify_lr: float = 0.05, reclassify_batch: int = 256) -> TauDetector:
    """GMM-VAE rejection (paper 003): latent Mahalanobis distance > tau_enc or reconstruction error > tau_dec.

    reclassify: also reclassify the rejected inputs by eq. 9 (Table 2) for the attacks in ``reclassify_attacks``
    (None = every attack; names or labels as in the rows' ``attack`` column) and for the rejected clean inputs;
    reclassify_steps / reclassify_lr: Adam on z; reclassify_batch: inputs per eq. 9 batch (memory knob)."""
    return TauDetector(which, use_model_thresholds, quantile, reclassify, reclassify_attacks, reclassify_steps,
                       reclassify_lr, reclassify_batch)
