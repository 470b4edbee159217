"""Paper 003's tables in the paper's layout (declared once as :class:`TableSpec`), and the row conversions they
share; ``p003.py`` says what each printed number is made of and holds the claims, figures and the ``@paper`` entry.
"""
from __future__ import annotations

from functools import partial

import polars as pl

from robustsweep.report import select
from robustsweep.report.aggregate import column_or, ensure_columns, one_row_per_trial
from robustsweep.report.declare import Axis, Order, melted
from robustsweep.report.select import OK, near
from robustsweep.report.tables import Table
from robustsweep.store import columns

EXPERIMENT = "gmm-vae"
ENTROPY = "gmm-vae-entropy"  # Fig. 5: fixed vs learned encoder entropy under FGSM
SVHN, COIL = "gmm-vae-svhn", "gmm-vae-coil100"  # Table 1's other rows (p003_svhn.yaml / p003_coil100.yaml, paper scale)
DATASET_LABELS = {"mnist": "MNIST", "digits": "digits (ci stand-in for MNIST)",
                  "mnist5k": "mnist5k (mini stand-in for MNIST)", "svhn": "SVHN", "coil-100": "COIL-100"}
DATASET_ORDER = list(DATASET_LABELS)
REF_ALPHA = 1.0  # the row the paper's numbers are compared with (its α is not stated; 1.0 is the model default)
SUP, SEMI = "Supervised", "Semi-supervised"
SETTINGS = [SUP, SEMI]
REF = near("cfg.model.alpha", REF_ALPHA)  # the reference α's rows
TAU, TAU_ENC, TAU_DEC = "tau", "tau-enc", "tau-dec"
T1_METRICS = [("clean accuracy", "accuracy (no thresholds)"), ("accuracy with τ", "accuracy (thresholds)"),
              ("error with τ", "error (thresholds)"), ("clean rejection", "rejection (thresholds)")]
ATTACK_METRICS = [("success_rate", "success (no thresholds)"), (columns.det(TAU, "tpr"), "rejected (thresholds)"),
                  (columns.det(TAU_ENC, "tpr"), "rejected by τ_enc"), (columns.det(TAU_DEC, "tpr"), "rejected by τ_dec"),
                  ("success with τ", "success (thresholds)"), ("relative size", "‖η‖₂/‖x‖₂ of successes")]
# Fig. 3 / Fig. 5 split ALL attacked inputs into accuracy / error / rejected with the thresholds (the paper's error
# "rises to a maximum value of only 3.89% and then decreases": only a share of all inputs can fall again); rows from
# before det.<τ>.reject_adv existed fall back to the successful adversarials' columns (fig_metrics)
ATT_ACC, ATT_ERR, ATT_REJ = "accuracy with τ (attacked)", "error with τ (attacked)", "rejected (attacked)"
FIG3_METRICS = [("adv_accuracy", "accuracy (no thresholds)"), (ATT_ACC, "accuracy (thresholds)"),
                (ATT_ERR, "error (thresholds)"), (ATT_REJ, "rejected (thresholds)")]
WHITE, FOOL = "gmmvae-whitebox", "gmmvae-fooling"
FIG4_METRICS = [("success_rate", "target reached (no thresholds)"), ("success with τ", "success (target and accepted)"),
                (columns.metric("rejected"), "rejected"), ("accepted other", "accepted, not as the target")]
T2_METRICS = [(columns.det(TAU, "reclass_accuracy"), "reclassification accuracy"),
              (columns.det(TAU, "reclass_accepted_accuracy"), "reclassified and accepted by eq. 9's check"),
              (columns.det(TAU, "n_rejected"), "rejected adversarials (count)")]
T2_CLEAN = [("clean rejected", "rejected clean inputs (fraction of test)"),
            (columns.det(TAU, "clean_reclass_accuracy"), "recovered (fraction of rejected)"),
            ("accuracy with τ", "accuracy (thresholds)"),
            (columns.det(TAU, "clean_accuracy_reclassified"), "accuracy after reclassification")]
FIG5_METRICS = [(ATT_REJ, "rejected (thresholds)"), (ATT_ERR, "error (thresholds)"),
                ("adv_accuracy", "accuracy (no thresholds)")]
#: the older columns a figure metric falls back to on rows without det.<τ>.reject_adv (successful adversarials only)
OLD_FIG = {ATT_REJ: columns.det(TAU, "tpr"), ATT_ERR: "success with τ", ATT_ACC: None}
FIXED, LEARNED = "fixed entropy", "learned entropy"
TARGET = columns.metric("target_success")  # eq. 10 / 11: classified as the target and accepted
_NEEDED = {"cfg.model.learn_entropy": pl.Boolean, TARGET: pl.Float64, columns.metric("rejected"): pl.Float64,
           "n_eval": pl.Float64,
           **{columns.det(TAU, m): pl.Float64 for m in ("reclass_accuracy", "reclass_accepted_accuracy", "n_rejected",
                                                      "clean_n_rejected", "clean_reclass_accuracy",
                                                      "clean_accuracy_reclassified")},
           "cfg.model.alpha": pl.Float64, "cfg.model.labels_per_class": pl.Int64, "success_rate": pl.Float64,
           "clean_accuracy": pl.Float64, "adv_accuracy": pl.Float64, "value": pl.Float64, "rho": pl.Float64,
           "attack": pl.String,
           **{columns.det(d, m): pl.Float64 for d in (TAU, TAU_ENC, TAU_DEC)
              for m in ("tpr", "fpr", "reject_adv", "accept_correct_adv")}}


def has_split(rows: pl.DataFrame) -> bool:
    """Whether the rows record clean rejection separately for correct and wrong predictions (exact Table 1)."""
    return {columns.det(TAU, "fpr_correct"), columns.det(TAU, "fpr_wrong")} <= set(rows.columns)


def derive(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows plus the derived columns of the module docstring (``__setting``, ``accuracy with τ``, ``success with τ`` …)."""
    df = ensure_columns(rows, _NEEDED)
    a, r = pl.col("clean_accuracy"), pl.col(columns.det(TAU, "fpr"))
    if has_split(df):
        acc_tau = a * (1 - pl.col(columns.det(TAU, "fpr_correct")))
    else:  # worst case: every rejected clean input was classified correctly
        acc_tau = pl.max_horizontal(a - r, pl.lit(0.0))
    s, t = pl.col("success_rate"), pl.col(columns.det(TAU, "tpr"))
    goal = pl.col("attack").is_in([WHITE, FOOL]) & pl.col(TARGET).is_not_null()
    with_tau = pl.when(goal).then(pl.col(TARGET)).when(s == 0).then(pl.lit(0.0)).otherwise(s * (1 - t))
    return df.with_columns(
        pl.when(pl.col("cfg.model.labels_per_class").is_null()).then(pl.lit(SUP)).otherwise(pl.lit(SEMI))
        .alias("__setting"),
        pl.col("cfg.model.alpha").map_elements(alpha_label, return_dtype=pl.String).alias("__alpha"),
        a.alias("clean accuracy"), acc_tau.alias("accuracy with τ"), r.alias("clean rejection"),
        pl.max_horizontal(1 - r - acc_tau, pl.lit(0.0)).alias("error with τ"),  # no "-0.000" from rounding
        with_tau.alias("success with τ"),
        pl.max_horizontal(1 - pl.col(TARGET) - pl.col(columns.metric("rejected")), pl.lit(0.0))  # no "-0.000"
        .alias("accepted other"),
        (pl.col(columns.det(TAU, "clean_n_rejected")) / pl.col("n_eval").cast(pl.Float64)).alias("clean rejected"),
        pl.col(columns.det(TAU, "reject_adv")).alias(ATT_REJ), pl.col(columns.det(TAU, "accept_correct_adv")).alias(ATT_ACC),
        pl.when(pl.col(columns.det(TAU, "reject_adv")).is_not_null() & pl.col(columns.det(TAU, "accept_correct_adv")).is_not_null())
        .then(pl.max_horizontal(1 - pl.col(columns.det(TAU, "reject_adv")) - pl.col(columns.det(TAU, "accept_correct_adv")),
                                pl.lit(0.0))).otherwise(None).alias(ATT_ERR),
        pl.when(pl.col("cfg.model.learn_entropy").fill_null(False)).then(pl.lit(LEARNED)).otherwise(pl.lit(FIXED))
        .alias("__entropy"),
        # a fooling image is not a perturbation of the clean input it was paired with: no size
        pl.when(pl.col("attack") == FOOL).then(None).otherwise(pl.col("rho")).cast(pl.Float64).alias("relative size"),
    )


def fig_metrics(df: pl.DataFrame, metrics: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``metrics`` with each all-attacked-inputs column replaced by its older successful-adversarials column where
    the rows predate ``det.<τ>.reject_adv`` (labelled so: a reader must not take one for the other)."""
    if column_or(df, ATT_REJ, "") == ATT_REJ:
        return metrics
    return [(OLD_FIG.get(m, m), f"{label} [of successful adversarials: older rows]") for m, label in metrics
            if OLD_FIG.get(m, m) is not None]


def attacked_col(df: pl.DataFrame, col: str) -> str:
    """``col`` (an all-attacked-inputs column) where the rows have it, else its older stand-in (OLD_FIG)."""
    return column_or(df, col, OLD_FIG.get(col) or col)


def alpha_label(a: float) -> str:
    return f"α = {a:g}"


def alphas(df: pl.DataFrame) -> list[float]:
    """α values that ran, sorted; the reference α is always listed so the paper's row exists before any run."""
    return sorted({*df.filter(OK)["cfg.model.alpha"].drop_nulls().to_list(), REF_ALPHA})


def melt(df: pl.DataFrame, metrics: list[tuple[str, str]], row: pl.Expr, col: pl.Expr) -> pl.DataFrame:
    """:func:`select.melt` with an "@" in the ``row`` / ``col`` keys standing for the metric's label."""
    return select.melt(df, metrics, lambda label: row.str.replace("@", label, literal=True),
                       lambda label: col.str.replace("@", label, literal=True))


_spec = partial(melted, experiment=EXPERIMENT)  # a table over :func:`melt` (``build(long, source=derived rows)``)


def _by_setting(metrics: list[tuple[str, str]]) -> list[str]:
    return [f"{s}: {label}" for s in SETTINGS for _, label in metrics]


def _eps(df: pl.DataFrame) -> list[float]:
    """FGSM's ε values that ran (sorted), or the paper's Table 2 points before any run."""
    return select.grid(df, "fgsm") or [0.06, 0.12, 0.18, 0.24, 0.3]


def _blocks(metrics: list[tuple[str, str]], fallback: bool = True) -> Order:
    """Row blocks "<setting>, <α>: <quantity>" (``fallback``: the older columns' labels where the rows predate them)."""
    return lambda df: [f"{s}, {alpha_label(a)}: {label}" for s in SETTINGS for a in alphas(df)
                       for _, label in (fig_metrics(df, metrics) if fallback else metrics)]


EPS = Axis("__col", _eps, lambda e: f"ε={e:g}")
GOALS = ((WHITE, "White-box, eq. 10"), (FOOL, "Fooling, eq. 11"))


def _dataset_order(ref: pl.DataFrame) -> list[str]:
    if "cfg.dataset.name" not in ref.columns:
        return []
    ran = ref["cfg.dataset.name"].drop_nulls().unique().to_list()
    return [DATASET_LABELS.get(d, d) for d in sorted(ran, key=lambda d: (DATASET_ORDER + [d]).index(d))]


def _targets_order(ref: pl.DataFrame) -> list[str]:
    order = []
    for atk, label in GOALS:
        sub = ref.filter(pl.col("attack") == atk)
        ks = sorted(sub["value"].drop_nulls().unique().to_list()) if not sub.is_empty() else []
        order += [f"{label} · target y+{int(k)}" for k in ks] or [f"{label} · random target"]
    return order


TABLE1 = _spec("table1", "Table 1: accuracy, error and rejection on the clean test set, without and with the τ_enc / "
               "τ_dec thresholds", "eq. 7 trade-off", lambda df: [alpha_label(a) for a in alphas(df)],
               _by_setting(T1_METRICS))
TABLE1_DATASETS = _spec(
    "table1_datasets", "Table 1 by data set (the paper's rows), α = 1: accuracy, error and rejection on the clean test "
    "set without and with the τ_enc / τ_dec thresholds", "data set", _dataset_order, _by_setting(T1_METRICS),
    "One row per data set that ran at this scale: MNIST (ci: digits, mini: mnist5k) from p003_gmmvae.yaml, SVHN and COIL-100 from "
    "p003_svhn.yaml / p003_coil100.yaml (paper scale only). Semi-supervised: 100 labels per class (ci: 20).")
ATTACKS = _spec(
    "attacks", "§4: white-box (eq. 10), fooling (eq. 11) and threshold-unaware attacks: success without and with "
    "τ_enc / τ_dec", "attack · α", lambda df: [f"{label} · {alpha_label(a)}" for _, label in attack_rows(df)
                                               for a in alphas(df)], _by_setting(ATTACK_METRICS),
    "success = fraction of correctly classified inputs the attack gets misclassified (fooling: the clean input only "
    "sets the target); rejected = fraction of those adversarials the thresholds reject; success (thresholds) = "
    "misclassified and accepted; ‖η‖₂/‖x‖₂ = relative size of the successful perturbations (the eq. 10 attack has "
    "no ε bound, only an ‖η‖₂ penalty; n/a for fooling images).", duplicates="mean")
FIG3 = _spec("fig3", "Fig. 3: FGSM on the encoder over ε", "model: quantity", _blocks(FIG3_METRICS), EPS,
             "fractions of ALL attacked inputs, as the paper's Fig. 3: accuracy without thresholds; with them, accepted "
             "and correct (accuracy), accepted and wrong (error) and rejected, which add up to 1.")
FIG4_TABLE = _spec(
    "fig4", "Fig. 4 (tabulated): targeted white-box attack (eq. 10) and fooling images from uniform noise (eq. 11) "
    "against the selective classifier", "attack · α",
    lambda df: [f"{label} · {alpha_label(a)}" for _, label in GOALS for a in alphas(df)], _by_setting(FIG4_METRICS),
    "Fractions of the attacked pool (eq. 10: initially-correct test inputs; eq. 11: one uniform-noise image per test "
    "input), averaged over the target classes the run used (target (y + k) mod C for each offset k of its grid: "
    "every other class at paper scale, §4). success = classified as the target and accepted by both thresholds; the "
    "last column = accepted as another class (eq. 10: mostly the true class, 'reverted'). Per target: fig4_targets; "
    "the images: the Fig. 4 PNGs.", duplicates="mean")
FIG4_TARGETS = _spec(
    "fig4_targets", f"Fig. 4 per target class: eq. 10 / eq. 11 at α = {REF_ALPHA:g}, target (y + k) mod C",
    "attack · target", _targets_order, _by_setting(FIG4_METRICS),
    "As the fig4 table, one row per target offset k of the run's grid (every one of the nine other classes as the target, §4).")
TABLE2 = _spec(
    "table2", "Table 2: reclassification (eq. 9) of the FGSM samples the thresholds rejected", "model: quantity",
    _blocks(T2_METRICS, fallback=False), EPS,
    "Of the FGSM adversarials of initially-correct inputs that τ_enc / τ_dec rejected: fraction eq. 9 (z optimised from every "
    "class mean, best reconstruction) gives their true label back (the paper's row), the same when eq. 9's own fooling check (z* "
    "beyond τ_enc or reconstruction beyond τ_dec) counts as a failure, and how many were rejected (mean over seeds).")
TABLE2_CLEAN = _spec(
    "table2_clean", "§4: reclassifying the rejected clean test inputs", "model",
    lambda df: [f"{s}, {alpha_label(a)}" for s in SETTINGS for a in alphas(df)], [label for _, label in T2_CLEAN],
    "Eq. 9 on the clean test inputs the thresholds rejected; accuracy after reclassification = (accepted and correct "
    "+ recovered) / all test inputs (paper, supervised MNIST: 181 rejected = 1.81%, 110 recovered, 97.97% → 99.07%).")
FIG5 = _spec("fig5", "Fig. 5: FGSM on the model with fixed vs learned encoder entropy", "encoder: quantity",
             lambda df: [f"{e}: {label}" for e in (FIXED, LEARNED) for _, label in fig_metrics(df, FIG5_METRICS)], EPS,
             "fractions of ALL attacked inputs: rejected by the thresholds; error = accepted and misclassified (paper: "
             "with learned entropy the rejection stays low and the error rises with ε).", experiment=ENTROPY)
SPECS = [TABLE1, TABLE1_DATASETS, FIG3, ATTACKS, FIG4_TABLE, FIG4_TARGETS, TABLE2, TABLE2_CLEAN, FIG5]
SETTING_COL = pl.col("__setting") + pl.lit(": @")


def table1(df: pl.DataFrame) -> Table:
    """Table 1 as printed (supervised | semi-supervised; accuracy without, accuracy / error / rejection with τ);
    rows are our α values (the paper prints one row per data set)."""
    one = one_row_per_trial(df)  # clean metrics repeat on every attack row (measured on all the trial's points)
    how = ("exact (rejection split by correct / wrong prediction)" if has_split(df) else
           "worst case: the rows record only the total clean rejection R, so accuracy (thresholds) = "
           "max(A − R, 0) assumes every rejected input was correct, and error (thresholds) = 1 − R − that")
    return TABLE1.build(melt(one, T1_METRICS, pl.col("__alpha"), SETTING_COL), source=df,
                        caption=f"Fractions of the evaluated test inputs. Accuracy / error with thresholds: {how}.")


def table1_datasets(frames: list[pl.DataFrame]) -> Table:
    """Table 1 with the paper's rows, one per data set (MNIST, SVHN, COIL-100), at the reference α: the main
    experiment's and the SVHN / COIL-100 files' rows (``derive``d), each data set that ran one row. At ci / mini only
    the MNIST stand-in runs (the SVHN and COIL-100 files are paper scale only), so the table has that row alone."""
    parts = [f for f in frames if not f.is_empty() and "cfg.dataset.name" in f.columns]
    df = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    if df.is_empty():
        return TABLE1_DATASETS.build(pl.DataFrame())
    ref = one_row_per_trial(df.filter(REF))
    row = pl.col("cfg.dataset.name").replace_strict(DATASET_LABELS, default=pl.col("cfg.dataset.name"),
                                                    return_dtype=pl.String)
    return TABLE1_DATASETS.build(melt(ref, T1_METRICS, row, SETTING_COL), source=ref)


def attack_rows(df: pl.DataFrame) -> list[tuple[pl.Expr, str]]:
    """(row filter, label) of the attacks table, in the order §4 discusses them; FGSM at its largest ε."""
    fg = select.grid(df, "fgsm") or [0.3]
    return [(pl.col("attack") == WHITE, "White-box, eq. 10"), (pl.col("attack") == FOOL, "Fooling, eq. 11"),
            ((pl.col("attack") == "fgsm") & near("value", fg[-1]), f"FGSM ε={fg[-1]:g}"),
            (pl.col("attack") == "pgd", "PGD (CleverHans defaults)"),
            (pl.col("attack") == "mim", "MIM (CleverHans defaults)")]


def _per_attack(df: pl.DataFrame, rows: list[tuple[pl.Expr, str]], metrics: list[tuple[str, str]],
                row: pl.Expr | None = None) -> pl.DataFrame:
    """Row blocks "<attack> · <α>" (or ``row``) of ``metrics`` per setting, one block per (filter, label)."""
    return pl.concat([melt(df.filter(flt), metrics, pl.lit(f"{label} · ") + pl.col("__alpha") if row is None else row,
                           SETTING_COL) for flt, label in rows], how="vertical_relaxed")


def attacks_table(df: pl.DataFrame) -> Table:
    """Attack × α rows; per setting: success without τ, rejected (both / each threshold), success with τ."""
    return ATTACKS.build(_per_attack(df, attack_rows(df), ATTACK_METRICS), source=df)


def _fgsm_eps(df: pl.DataFrame, metrics: list[tuple[str, str]], row: pl.Expr) -> pl.DataFrame:
    """The long frame Fig. 3, Table 2 and Fig. 5 share: ``metrics`` of the FGSM rows as row blocks (``row`` labels
    each block, "@" is replaced by the metric label), FGSM's ε as columns."""
    long = melt(df.filter(pl.col("attack") == "fgsm"), metrics, row, pl.col("value").cast(pl.String))
    return long.with_columns(pl.col("__col").cast(pl.Float64))


BLOCK = pl.col("__setting") + pl.lit(", ") + pl.col("__alpha") + pl.lit(": @")


def fig3_table(df: pl.DataFrame) -> Table:
    """Fig. 3 tabulated: per setting and α, accuracy without τ, error with τ and rejection over FGSM's ε."""
    return FIG3.build(_fgsm_eps(df, fig_metrics(df, FIG3_METRICS), BLOCK), source=df)


def fig4_table(df: pl.DataFrame) -> Table:
    """Fig. 4 tabulated: eq. 10 / eq. 11 outcomes per attack × α, per setting (what the image grids show)."""
    return FIG4_TABLE.build(_per_attack(df, [(pl.col("attack") == a, label) for a, label in GOALS], FIG4_METRICS), source=df)


def fig4_targets_table(df: pl.DataFrame) -> Table:
    """Eq. 10 / eq. 11 outcomes per target offset k (target = (y + k) mod C), at the reference α: "all 9 targets in
    the table" (§4 attacks every input towards each other class)."""
    ref = df.filter(REF) if not df.is_empty() else df
    parts = [melt(ref.filter(pl.col("attack") == atk), FIG4_METRICS, pl.when(pl.col("value").is_null())
                  .then(pl.lit(f"{label} · random target"))
                  .otherwise(pl.format("{} · target y+{}", pl.lit(label), pl.col("value").cast(pl.Int64))), SETTING_COL)
             for atk, label in GOALS]
    return FIG4_TARGETS.build(pl.concat(parts, how="vertical_relaxed"), source=ref)


def table2(df: pl.DataFrame) -> Table:
    """Table 2 as printed (reclassification accuracy over FGSM's ε), one row block per setting and α."""
    return TABLE2.build(_fgsm_eps(df, T2_METRICS, BLOCK), source=df)


def first_fgsm_rows(df: pl.DataFrame) -> pl.DataFrame:
    """Each trial's first FGSM row: where the clean-input eq. 9 columns are (eq. 9 runs with the reclassifying attack,
    on its points -- at mini, FGSM's own n_eval -- so both sides of a clean comparison are of those points)."""
    return df.filter(pl.col("attack") == "fgsm").unique("trial_id", keep="first", maintain_order=True)


def table2_clean(df: pl.DataFrame) -> Table:
    """§4's remark after Table 2: reclassifying the rejected clean test inputs (181 rejected, 110 recovered, 99.07%)."""
    long = melt(first_fgsm_rows(df), T2_CLEAN, pl.col("__setting") + pl.lit(", ") + pl.col("__alpha"), pl.lit("@"))
    return TABLE2_CLEAN.build(long, source=df)


def fig5_table(df: pl.DataFrame) -> Table:
    """Fig. 5 tabulated: FGSM over ε on the fixed- and the learned-entropy model (supervised, α = 1)."""
    return FIG5.build(_fgsm_eps(df, fig_metrics(df, FIG5_METRICS), pl.col("__entropy") + pl.lit(": @")), source=df)
