"""Paper 001 on MNIST: Fig. 3 / appendix B (white-box FGSM / PGD / MIM over ε, with marginal / logit / KL detection),
Fig. 5 (CW-L2 over c), Fig. 6 (CW examples), Tables 1 and 3 (grey- / black-box transfer, SPSA) from
``p001_whitebox.yaml``, ``p001_blackbox.yaml`` and ``p001_baselines.yaml``; and the table shapes CIFAR-binary
(``p001_cifar.py``) repeats over its own rows. What the paper draws as curves is tabulated at the grid points; "min.
perturbation / accuracy" cells are split into two tables because a cell holds one number.

Table 1 reads accuracy at the *third* point of the ε grid (the paper: 0.3 of {0.1, …, 0.5}), so a ci grid
{0.05, 0.1, 0.15, 0.2, 0.3} reports it at 0.15; the title says which.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.checks import CheckResult, compare_means, compare_to_value, monotone, seed_mean
from robustsweep.report.declare import Axis, TableSpec, models
from robustsweep.report.figures import line_with_band
from robustsweep.report.html import Section
from robustsweep.report.images import first_ok, grid_row, image_grid
from robustsweep.report.paper_registry import PaperContext
from robustsweep.report.select import DEEP_BAYES, GENERATIVE, NO_BOTTLENECK, OK, at, grid, melt, near, nth, upper
from robustsweep.report.tables import Table
from robustsweep.store import columns

WHITE, BLACK = "deep-bayes-whitebox", "deep-bayes-blackbox"
BASE = "deep-bayes-baselines"  # p001_baselines.yaml: the discriminative baselines of Fig. 3 / appendix B / Fig. 5
WB_MODELS = DEEP_BAYES + ["bnn", "cnn"]  # the seven factorisations, then the baselines below them
TABLE13_MODELS = ["gfz", "gbz", "gfy", "gby"]  # Table 1's column order
TABLE3_MODELS = ["gfz", "gbz", "gby", "gfy"]  # Table 3's row order
DETECTORS = ["marginal", "logit", "kl"]
ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD", "mim": "MIM", "cw": "CW"}
TABLE1_ROWS = {"pgd": "PGD (white)", "mim": "MIM (white)", "pgd-grey": "PGD (grey)", "mim-grey": "MIM (grey)",
               "pgd-black": "PGD (black)", "mim-black": "MIM (black)"}
MODEL = pl.col("cfg.model.name")


def grid_axis(attack: str, key: str = "value") -> Axis:
    """``attack``'s grid as columns, "ε=0.1" (CW: "c=10")."""
    sym = "c" if attack == "cw" else "ε"
    return Axis(key, lambda rows: grid(rows, attack), lambda v: f"{sym}={v:g}")


def accuracy(tid: str, title: str, attack: str, experiment: str = WHITE, rows: list[str] = WB_MODELS,
             metric: str = "adv_accuracy") -> TableSpec:
    """Models × (clean, grid values): accuracy under ``attack`` (a panel of Fig. 3 / appendix B / Fig. 5)."""
    return TableSpec(tid, title, experiment, metric, models(rows), grid_axis(attack), pl.col("attack") == attack,
                     clean="clean_accuracy" if metric == "adv_accuracy" else None)


def detection(tid: str, title: str, attack: str, experiment: str = WHITE, rows: list[str] = WB_MODELS) -> TableSpec:
    """(model, detector) × grid values: TPR on the successful adversarials at 5% FPR on clean training data; built
    over :func:`detection_rows`."""
    order = [f"{m.upper()} {d}" for m in rows for d in DETECTORS]
    return TableSpec(tid, title, experiment, "v", Axis("__row", order, header="model / detector"),
                     grid_axis(attack, "__col"))


def detection_rows(rows: pl.DataFrame, attack: str, label: pl.Expr | None = None) -> pl.DataFrame:
    """One row per (row of ``attack``, detector): ``__row`` = "<label> <detector>", its TPR as ``v``."""
    label = upper() if label is None else label
    return melt(rows.filter(pl.col("attack") == attack), [(columns.det(d, "tpr"), d) for d in DETECTORS],
                lambda d: pl.format("{} {}", label, pl.lit(d)), pl.col("value"))


def by_model(attacks: dict[str, str], metric: str, tid: str, title: str, experiment: str = WHITE) -> TableSpec:
    """Attack rows × model columns (Tables 1-3), one metric; read by :func:`by_model_table`."""
    return TableSpec(tid, title, experiment, metric, Axis("attack", list(attacks), attacks, "attack"),
                     models(TABLE13_MODELS))


def by_model_table(spec: TableSpec, rows: pl.DataFrame, value: float | None = None, **overrides: str) -> Table:
    """``spec``'s attacks and models, at grid ``value`` when given (one row per trial and attack for a per-attack
    metric such as the minimum perturbation); failed rows kept so the table lists them."""
    keep = pl.col("attack").is_in(spec.rows.order) & MODEL.is_in(spec.cols.order)
    if value is not None:
        keep &= near("value", value)
    sub = rows.filter(keep | ~OK)
    if value is None and spec.metric.startswith(columns.METRIC):
        sub = sub.unique(["trial_id", "attack"], keep="first", maintain_order=True)
    return spec.build(sub, **overrides)


def pgd_vs_spsa(tid: str, title: str, experiment: str) -> TableSpec:
    return TableSpec(tid, title, experiment, "adv_accuracy", models(TABLE3_MODELS),
                     Axis("attack", ["pgd", "spsa"], {"pgd": "PGD", "spsa": "SPSA"}),
                     pl.col("attack").is_in(["pgd", "spsa"]))


SPECS = [
    fig3 := accuracy("fig3", "Fig. 3: victim accuracy under white-box FGSM", "fgsm"),
    fig3d := detection("fig3-detection", "Fig. 3: TPR (5% FPR) on successful FGSM adversarials", "fgsm"),
    app_pgd := accuracy("appB-pgd", "Appendix B: victim accuracy under white-box PGD", "pgd"),
    app_pgdd := detection("appB-pgd-detection", "Appendix B: TPR on successful PGD adversarials", "pgd"),
    app_mim := accuracy("appB-mim", "Appendix B: victim accuracy under white-box MIM", "mim"),
    fig5 := accuracy("fig5-cw", "Fig. 5: victim accuracy under CW-L2", "cw"),
    fig5l2 := accuracy("fig5-cw-l2", "Fig. 5: mean l2 distortion of successful CW adversarials", "cw",
                       metric="mean_l2"),
    fig5d := detection("fig5-cw-detection", "Fig. 5: TPR on successful CW adversarials", "cw"),
    t1min := by_model(TABLE1_ROWS, "m.min_perturbation", "table1-minpert",
                      "Table 1: mean minimum l-inf perturbation (max ε + 0.1 when no ε succeeds)"),
    t1acc := by_model(TABLE1_ROWS, "adv_accuracy", "table1-accuracy",
                      "Table 1: victim accuracy at the third ε of the grid (MNIST: 0.3)"),
    t3 := pgd_vs_spsa("table3", "Table 3: victim accuracy under white-box PGD vs SPSA (MNIST)", BLACK),
]


def _at(attack: str, value: float | None, model: str | None = None) -> pl.Expr:
    return at(attack, value) & (MODEL == model) if model else at(attack, value)


def _claims(white: pl.DataFrame, black: pl.DataFrame) -> list[CheckResult]:
    out: list[CheckResult] = []
    gen, dis = MODEL.is_in(GENERATIVE), MODEL.is_in(NO_BOTTLENECK)
    for atk in ("fgsm", "pgd"):
        mid = nth(grid(white, atk), 2)
        out.append(compare_means(white, _at(atk, mid) & gen, _at(atk, mid) & dis, "adv_accuracy", ">",
                                 label_a="generative (GFZ GFY GBZ GBY)", label_b="discriminative (DFX DFZ)",
                                 at=f"{ATTACK_NAMES[atk]} eps={mid}", name=f"generative-more-robust-{atk}",
                                 claim=f"§4.1 / Fig. 3: generative classifiers keep a higher accuracy than the "
                                       f"discriminative DFX / DFZ under white-box {ATTACK_NAMES[atk]}"))
    mid = nth(grid(white, "pgd"), 2)
    out.append(compare_means(white, _at("pgd", mid, "gbz"), _at("pgd", mid, "dfx"), "adv_accuracy", ">",
                             label_a="GBZ", label_b="DFX", at=f"PGD eps={mid}", name="gbz-beats-dfx-pgd",
                             claim="§4.1: GBZ is more robust than the discriminative DFX under PGD"))
    for m in ("gfz", "dfx"):
        out.append(monotone(white, "value", "adv_accuracy", filter=_at("pgd", None, m), label=m.upper(),
                            tolerance=0.02, name=f"accuracy-falls-with-eps-{m}",
                            claim=f"Fig. 3 / appendix B: {m.upper()}'s accuracy under PGD falls as ε grows"))
    top = (grid(white, "fgsm") or [None])[-1]
    out.append(compare_to_value(white, _at("fgsm", top) & gen, columns.det("kl", "tpr"), ">=", 0.5,
                                label=f"generative, FGSM eps={top}", name="kl-detects-fgsm",
                                claim="Fig. 3: the KL detector flags most successful FGSM adversarials of the "
                                      "generative classifiers at large ε (TPR at 5% FPR >= 0.5)"))
    out += [_detects_large_eps(white, atk) for atk in ("pgd", "mim")]
    out.append(compare_means(white, _at("cw", 10.0, "gbz"), _at("cw", 10.0, "dfx"), "adv_accuracy", ">",
                             label_a="GBZ", label_b="DFX", at="CW c=10", name="gbz-beats-dfx-cw",
                             claim="§4.1 / Fig. 5: 'GBZ is a clear winner' under CW-L2 (vs the discriminative DFX)"))
    eps = nth(grid(black, "pgd-grey"), 2)
    both = pl.concat([white.filter(pl.col("attack") == "pgd"), black.filter(pl.col("attack") == "pgd-grey")],
                     how="diagonal_relaxed")
    out.append(compare_means(both, _at("pgd-grey", eps) & gen, _at("pgd", eps) & gen, "adv_accuracy", ">",
                             label_a="grey-box PGD", label_b="white-box PGD", at=f"eps={eps}",
                             name="transfer-weaker-than-white-box",
                             claim="§4.2 / Table 1: PGD transferred from a grey-box substitute leaves the generative "
                                   "classifiers a higher accuracy than white-box PGD (no gradient masking)"))
    spsa = black.filter(pl.col("attack").is_in(["spsa", "pgd"]))
    out.append(compare_means(spsa, at("spsa"), at("pgd"), "adv_accuracy", ">", label_a="SPSA",
                             label_b="white-box PGD", at="same eps, GFZ GBZ GFY GBY", name="spsa-weaker-than-pgd",
                             claim="§4.2 / Table 3: SPSA performs much worse on the generative classifiers than white-box PGD"))
    return out


def _detects_large_eps(white: pl.DataFrame, attack: str) -> CheckResult:
    """§4.1 / appendix B: "generative classifiers successfully detect the adversarial examples with ε ≥ 0.3 on MNIST"
    -- read for PGD and MIM as: at the largest ε of the grid, logit or KL detection (the better of the two, each at
    5 % FPR) flags most successful adversarials of the generative classifiers (TPR ≥ 0.5)."""
    top = (grid(white, attack) or [None])[-1]
    sel = _at(attack, top) & MODEL.is_in(GENERATIVE)
    vals = {d: seed_mean(white, sel, columns.det(d, "tpr")) for d in ("logit", "kl")}
    shown = ", ".join(f"{d} {'—' if v is None else f'{v:.3f}'} (n={n})" for d, (v, n) in vals.items())
    got = [v for v, _ in vals.values() if v is not None]
    return CheckResult(f"logit-kl-detect-{attack}", f"§4.1 / appendix B: logit or KL detection flags most successful "
                       f"{ATTACK_NAMES[attack]} adversarials of the generative classifiers at large ε (TPR >= 0.5)",
                       None if not got else max(got) >= 0.5,
                       f"TPR at 5% FPR, generative, {ATTACK_NAMES[attack]} eps={top}: {shown}; best >= 0.5")


def _figures(ctx: PaperContext, white: pl.DataFrame) -> list[tuple]:
    figs = []
    ok = white.filter(OK & pl.col("value").is_not_null())
    for atk in ("fgsm", "pgd", "mim", "cw"):
        sub = ok.filter(pl.col("attack") == atk).with_columns(upper().alias("model"))
        if sub.is_empty():
            continue
        sym = "c" if atk == "cw" else "ε"
        p = line_with_band(sub, "value", "adv_accuracy", "model", ctx.figure(f"accuracy_{atk}.png"),
                           title=f"{ATTACK_NAMES[atk]}: victim accuracy", xlabel=sym, ylabel="accuracy",
                           logx=atk == "cw")
        figs.append((p, f"Accuracy under white-box {ATTACK_NAMES[atk]} vs {sym}, mean ± std over seeds "
                        f"({'Fig. 5' if atk == 'cw' else 'Fig. 3' if atk == 'fgsm' else 'appendix B'})"))
    det = ok.filter(pl.col("attack") == "fgsm")
    for d in DETECTORS:
        if columns.det(d, "tpr") in det.columns and not det.is_empty():
            p = line_with_band(det.with_columns(upper().alias("model")), "value", columns.det(d, "tpr"), "model",
                               ctx.figure(f"detection_fgsm_{d}.png"), title=f"FGSM: {d} detection rate", xlabel="ε",
                               ylabel="TPR at 5% FPR")
            figs.append((p, f"Fig. 3: {d} detection rate of successful FGSM adversarials vs ε"))
    return figs


FIG6 = "Fig. 6: clean inputs and CW adversarial examples (c = 10) crafted on GFZ"


def cw_examples_figure(ctx: PaperContext, white: pl.DataFrame) -> tuple[str, str]:
    """Fig. 6: the kept test images (``eval.examples``) clean and under CW at c = 10 ("the sweet-spot parameter",
    §4.1) on GFZ -- the paper's two panels as two rows -- then, not in the paper, the same on the other six models."""
    cw = at("cw", 10.0, ok=False)
    first = first_ok(white, (MODEL == "gfz") & cw)
    rows = [grid_row(first, "(a) clean", "ex.clean", "ex.pred_clean") if first else None,
            grid_row(first, "(b) CW on GFZ") if first else None]
    for m in DEEP_BAYES:
        if m != "gfz" and (r := first_ok(white, (MODEL == m) & cw)) is not None:
            rows.append(grid_row(r, f"CW on {m.upper()}*"))
    path = image_grid(rows, ctx.figure("fig6_cw_examples.png"), title=FIG6)
    return str(path), (f"{FIG6}: first attacked test images of the lowest seed, each captioned with the prediction "
                       "(✗ = fooled). Rows marked * are not in the paper: the same images under CW c = 10 on the "
                       "other factorisations.")


def build_mnist(ctx: PaperContext) -> list[Section]:
    """The MNIST sections (module docstring)."""
    white, black = ctx.rows(WHITE), ctx.rows(BLACK)
    wb = pl.concat([white, ctx.rows(BASE)], how="diagonal_relaxed")  # the baselines print below the seven models
    # Table 1's white-box rows are p001_whitebox's; the blackbox file's own PGD row is Table 3's
    both = pl.concat([white, black.filter(pl.col("attack") != "pgd")], how="diagonal_relaxed")
    eps1 = nth(grid(black, "pgd-grey"), 2) or nth(grid(white, "pgd"), 2)
    return [
        Section("Fig. 3 and appendix B: white-box l-inf attacks on the seven factorisations", tables=[
            fig3.build(wb), fig3d.build(detection_rows(wb, "fgsm")), app_pgd.build(wb),
            app_pgdd.build(detection_rows(wb, "pgd")), app_mim.build(wb)], figures=_figures(ctx, wb)),
        Section("Fig. 5: CW-L2", tables=[fig5.build(wb), fig5l2.build(wb), fig5d.build(detection_rows(wb, "cw"))],
                figures=[cw_examples_figure(ctx, white)]),
        Section("Tables 1 and 3: gradient-masking sanity checks (transfer and SPSA)", tables=[
            by_model_table(t1min, both), by_model_table(t1acc, both, eps1,
                                                        title=f"Table 1: victim accuracy at ε = {eps1}"),
            t3.build(black, title=f"Table 3: victim accuracy, white-box PGD vs SPSA at ε = "
                                  f"{(grid(black, 'spsa') or ['?'])[0]}")], checks=_claims(wb, black)),
    ]
