"""Paper 000's row labels, experiment names and selectors, shared by :mod:`p000` and :mod:`p000_curves`.

Row labels are the paper's model names derived from the trial config (not the data set), so one reference file serves
both scales: a ci stand-in gets the label of the paper model it stands in for (:func:`label_models`). A causal model
with ``m_finetune`` (Deep-CAMA-style fine-tuning of q(m), not in the paper) is the extra row "Ours (shallow) + m
fine-tuning", so the paper's reading (m never trained) and CAMA's can be compared.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report import checks
from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult
from robustsweep.report.select import near
from robustsweep.store import columns

C10, SPEED, C100, TINY = "causal-cifar10", "causal-cifar10-speed", "causal-cifar100", "causal-tiny-imagenet"
SPEED100 = "causal-cifar100-speed"
ROAR = "causal-cifar10-roar"
OURS, OURS_DEEP = "Ours (shallow)", "Ours (deep)"
DEEP_CAMA = "Deep CAMA"
#: not in the paper: the shallow causal model with q(m) fine-tuned on perturbed inputs as Deep CAMA does
OURS_FT = "Ours (shallow) + m fine-tuning"
#: the models of Fig. 4 in the order of the paper's Table 1, and our extra row last
MODELS = ["VGG16", "DBX-FC1", DEEP_CAMA, "GBZ-CONV9", "GBY-CONV9", OURS_DEEP, OURS, OURS_FT]
BASELINES = ["VGG16", "DBX-FC1", DEEP_CAMA, "GBZ-CONV9", "GBY-CONV9"]  # §4.2's baselines
SPEED_MODELS = ["VGG16", "GBZ-CONV9", OURS]  # §4.3 compares the shallow model with GBZ-CONV9 and VGG16 only
#: Table 1's rows in the paper's order
TABLE1_MODELS = ["VGG16", "DBX-FC1", DEEP_CAMA, "GBZ-CONV9", "GBY-CONV9", OURS_DEEP, OURS]
ROAR_METHODS = {"roar-ig": "ROAR", "roar-random": "Random pixels (control)"}
EPS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]  # p000_cifar10.yaml's grid (both scales)
SPEED_EPS = [0.02, 0.05, 0.1, 0.2]  # p000_cifar10_speed.yaml's grid (both scales)
ATTACKS = {"fgsm": "FGSM", "pgd": "PGD"}
CF_METHODS = {"cf-ifgsm": "I-FGSM", "cf-pgd": "PGD"}
#: Table 2 rows: (experiment, depth role) -> the paper's label
TABLE2 = {
    (C10, "shallow"): "CIFAR-10 / Shallow (9 CONV)", (C10, "deep"): "CIFAR-10 / Deep (13 CONV+1 Dense)",
    (C100, "shallow"): "CIFAR-100 / Shallow (12 CONV)", (C100, "deep"): "CIFAR-100 / Deep (13 CONV+1 Dense)",
    (TINY, "shallow"): "Tiny-ImageNet / Shallow (14 CONV)", (TINY, "deep"): "Tiny-ImageNet / Deep (16 CONV+2 Dense)",
}


def _depth_role() -> pl.Expr:
    """"deep" for a tap that includes a dense layer (conv13+fc1, conv16+fc2, fc1), else "shallow" (§4.1)."""
    return pl.when(pl.col("cfg.model.feature_depth").str.contains("fc")).then(pl.lit("deep")).otherwise(
        pl.lit("shallow"))


def label_models(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``model`` and ``depth``: ``vgg16`` / ``vgg19`` / ``cnn`` = "VGG16"; a ``fusion`` head "<HEAD>-FC1" on a dense
    tap, "<HEAD>-CONV9" on a convolutional one; ``causal`` "Ours (deep)" on a tap with a dense layer, else "Ours
    (shallow)" (§4.1: shallow = convolutions only); ``deep-cama`` "Deep CAMA"."""
    df = ensure_columns(df, dict.fromkeys(["cfg.model.name", "cfg.model.head", "cfg.model.feature_depth"], pl.String)
                        | dict.fromkeys([*map(columns.metric, ("min_perturbation", "cf_speed", "cf_reached", "roar_degradation")),
                                         "cfg.model.m_finetune.eps"], pl.Float64))
    name, head = pl.col("cfg.model.name"), pl.col("cfg.model.head").str.to_uppercase()
    deep = _depth_role() == "deep"
    model = (pl.when(name.is_in(["vgg16", "vgg19", "cnn"])).then(pl.lit("VGG16"))
             .when((name == "fusion") & deep).then(pl.format("{}-FC1", head))
             .when(name == "fusion").then(pl.format("{}-CONV9", head))
             .when((name == "causal") & deep).then(pl.lit(OURS_DEEP))
             .when((name == "causal") & pl.col("cfg.model.m_finetune.eps").is_not_null()).then(pl.lit(OURS_FT))
             .when(name == "causal").then(pl.lit(OURS))
             .when(name == "deep-cama").then(pl.lit(DEEP_CAMA))
             .otherwise(name))
    return df.with_columns(model.alias("model"), _depth_role().alias("depth"))


def eps_key(attack: str, eps: float) -> str:
    return f"{attack}@{round(eps * 1000)}"


def eps_col() -> pl.Expr:
    """Column key ``<attack>@<eps x 1000>`` (exact for the grids' values; avoids float formatting)."""
    return pl.format("{}@{}", pl.col("attack"), (pl.col("eps") * 1000).round(0).cast(pl.Int64))


def at_point(model: str, attack: str, eps: float) -> pl.Expr:
    return (pl.col("model") == model) & (pl.col("attack") == attack) & near("eps", eps)


def beats_all(rows: pl.DataFrame, metric: str, who: str, others: list[str], attack: str, eps: float, *,
              name: str, claim: str) -> CheckResult:
    """Does ``who`` have a larger seed-mean ``metric`` than every model in ``others`` at (attack, ε)?"""
    return checks.beats_all(rows, metric, who, others, lambda m: at_point(m, attack, eps), f"{attack} eps={eps:g}",
                            name=name, claim=claim)
