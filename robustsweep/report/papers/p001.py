"""Paper 001 — Li, Bradshaw & Sharma (ICML 2019), "Are generative classifiers more robust to adversarial attacks?".

Experiments: ``p001_whitebox.yaml`` (the seven deep-Bayes factorisations under FGSM / PGD / MIM over ε and CW-L2 over
c, with marginal / logit / KL detection: Fig. 3, appendix B, Fig. 5, footnote 4) and ``p001_blackbox.yaml`` (grey-
and black-box transfer of PGD / MIM and SPSA: Tables 1 and 3) and ``p001_transfer_matrix.yaml`` (appendix A.3: PGD
transferred between every pair of classifiers, built by ``p001_a3.py``) and ``p001_adaptive.yaml`` (appendix A.1:
PGD aware of the marginal / logit / KL detector over λ, with and without EOT, built by ``p001_a1.py``). What the
paper draws as curves is tabulated at the grid points (a table per panel) and drawn again as PNG; the numbers it
prints (Tables 1 and 3) are laid out as printed, with "min. perturbation / accuracy" split into two tables because a
cell holds one number.

The ε column of Table 1's accuracy (the paper: ε = 0.3 of the grid {0.1, …, 0.5}) is the *third* grid point of the
run, so a ci run (grid {0.05, 0.1, 0.15, 0.2, 0.3} on 8×8 digits) reports it at 0.15; the table title says which.
Fig. 2 (two rings) comes from the grid columns of ``p001_fig2.yaml`` (``p001_fig2.py``); Fig. 6 from the images
``eval.examples`` keeps. CIFAR-binary (Fig. 4, Fig. 7, Table 2, Table 3's second half): ``p001_cifar.py`` over
``p001_cifar_binary.yaml``; Fig. 8 (VGG16 CONV9 / FC1 features): ``p001_fig8.py`` over ``p001_fig8.yaml``.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.checks import CheckResult, compare_means, monotone
from robustsweep.report.figures import line_with_band
from robustsweep.report.html import Section
from robustsweep.report.images import first_ok, grid_row, image_grid
from robustsweep.report.papers import PaperContext, paper
from robustsweep.report.papers.p001_a1 import A1_TABLES, build_a1
from robustsweep.report.papers.p001_a2 import TABLES as A2_TABLES
from robustsweep.report.papers.p001_a2 import build_a2
from robustsweep.report.papers.p001_a3 import A3_FIGURES, A3_TABLES, build_a3
from robustsweep.report.papers.p001_cifar import EXPERIMENT as CIFAR_BINARY
from robustsweep.report.papers.p001_cifar import TABLES as CB_TABLES
from robustsweep.report.papers.p001_cifar import build_cifar_binary
from robustsweep.report.papers.p001_fig2 import FIG2, build_fig2
from robustsweep.report.papers.p001_fig2 import TITLE as FIG2_TABLE
from robustsweep.report.papers.p001_fig8 import TABLES as FIG8_TABLES
from robustsweep.report.papers.p001_fig8 import build_fig8
from robustsweep.report.papers.p001_tables import (  # noqa: F401 -- re-exported: tests and section modules
    ATTACK_NAMES,
    BASE,
    BASELINES,
    BLACK,
    DETECTORS,
    DISCRIMINATIVE,
    GENERATIVE,
    MODEL,
    MODELS,
    OK,
    TABLE1_ROWS,
    TABLE3_MODELS,
    TABLE13_MODELS,
    WHITE,
    _fmt,
    _grid,
    _labels,
    _third_eps,
    accuracy_table,
    by_model_table,
    detection_table,
)
from robustsweep.report.tables import pivot_table


def _at(attack: str, value: float | None, model: str | None = None) -> pl.Expr:
    e = (pl.col("attack") == attack) & (pl.col("status") == "ok")
    if value is not None:
        e &= (pl.col("value") - value).abs() < 1e-9
    return e & (MODEL == model) if model else e


def _claims(white: pl.DataFrame, black: pl.DataFrame) -> list[CheckResult]:
    out: list[CheckResult] = []
    for atk in ("fgsm", "pgd"):
        mid = _third_eps(white, atk)
        out.append(compare_means(white, _at(atk, mid) & MODEL.is_in(GENERATIVE), _at(atk, mid) & MODEL.is_in(DISCRIMINATIVE),
                                 "adv_accuracy", ">", label_a="generative (GFZ GFY GBZ GBY)",
                                 label_b="discriminative (DFX DFZ)", at=f"{ATTACK_NAMES[atk]} eps={mid}",
                                 name=f"generative-more-robust-{atk}",
                                 claim=f"§4.1 / Fig. 3: generative classifiers keep a higher accuracy than the "
                                       f"discriminative DFX / DFZ under white-box {ATTACK_NAMES[atk]}"))
    mid = _third_eps(white, "pgd")
    out.append(compare_means(white, _at("pgd", mid, "gbz"), _at("pgd", mid, "dfx"), "adv_accuracy", ">",
                             label_a="GBZ", label_b="DFX", at=f"PGD eps={mid}", name="gbz-beats-dfx-pgd",
                             claim="§4.1: GBZ is more robust than the discriminative DFX under PGD"))
    for m in ("gfz", "dfx"):
        out.append(monotone(white, "value", "adv_accuracy", filter=_at("pgd", None, m), label=m.upper(),
                            tolerance=0.02, name=f"accuracy-falls-with-eps-{m}",
                            claim=f"Fig. 3 / appendix B: {m.upper()}'s accuracy under PGD falls as ε grows"))
    out.append(_tpr_claim(white, (_grid(white, "fgsm") or [None])[-1]))
    out += [_detects_large_eps(white, atk) for atk in ("pgd", "mim")]
    c10 = 10.0
    out.append(compare_means(white, _at("cw", c10, "gbz"), _at("cw", c10, "dfx"), "adv_accuracy", ">",
                             label_a="GBZ", label_b="DFX", at="CW c=10", name="gbz-beats-dfx-cw",
                             claim="§4.1 / Fig. 5: 'GBZ is a clear winner' under CW-L2 (vs the discriminative DFX)"))
    out.append(_transfer_claim(white, black))
    spsa = black.filter(pl.col("attack").is_in(["spsa", "pgd"]))
    out.append(compare_means(spsa, (pl.col("attack") == "spsa") & OK, (pl.col("attack") == "pgd") & OK, "adv_accuracy",
                             ">", label_a="SPSA", label_b="white-box PGD", at="same eps, GFZ GBZ GFY GBY",
                             name="spsa-weaker-than-pgd", claim="§4.2 / Table 3: SPSA performs much worse on the "
                                                                "generative classifiers than white-box PGD"))
    return out


def _detects_large_eps(white: pl.DataFrame, attack: str) -> CheckResult:
    """§4.1 / appendix B: "generative classifiers successfully detect the adversarial examples with ε ≥ 0.3 on MNIST"
    -- read for PGD and MIM as: at the largest ε of the grid, logit or KL detection (the better of the two, each at
    5 % FPR) flags most successful adversarials of the generative classifiers (TPR ≥ 0.5)."""
    from robustsweep.report.checks import seed_mean

    top = (_grid(white, attack) or [None])[-1]
    at = _at(attack, top) & MODEL.is_in(GENERATIVE)
    vals = {d: seed_mean(white, at, f"det.{d}.tpr") for d in ("logit", "kl")}
    shown = ", ".join(f"{d} {'—' if v is None else f'{v:.3f}'} (n={n})" for d, (v, n) in vals.items())
    got = [v for v, _ in vals.values() if v is not None]
    return CheckResult(f"logit-kl-detect-{attack}", f"§4.1 / appendix B: logit or KL detection flags most successful "
                       f"{ATTACK_NAMES[attack]} adversarials of the generative classifiers at large ε (TPR >= 0.5)",
                       None if not got else max(got) >= 0.5,
                       f"TPR at 5% FPR, generative, {ATTACK_NAMES[attack]} eps={top}: {shown}; best >= 0.5")


def _tpr_claim(white: pl.DataFrame, top: float | None) -> CheckResult:
    from robustsweep.report.checks import compare_to_value

    return compare_to_value(white, _at("fgsm", top) & MODEL.is_in(GENERATIVE), "det.kl.tpr", ">=", 0.5,
                            label=f"generative, FGSM eps={top}", name="kl-detects-fgsm",
                            claim="Fig. 3: the KL detector flags most successful FGSM adversarials of the generative "
                                  "classifiers at large ε (TPR at 5% FPR >= 0.5)")


def _transfer_claim(white: pl.DataFrame, black: pl.DataFrame) -> CheckResult:
    eps = _third_eps(black, "pgd-grey")
    both = pl.concat([white.filter(pl.col("attack") == "pgd"), black.filter(pl.col("attack") == "pgd-grey")],
                     how="diagonal_relaxed")
    return compare_means(both, _at("pgd-grey", eps) & MODEL.is_in(GENERATIVE), _at("pgd", eps) & MODEL.is_in(GENERATIVE),
                         "adv_accuracy", ">", label_a="grey-box PGD", label_b="white-box PGD", at=f"eps={eps}",
                         name="transfer-weaker-than-white-box",
                         claim="§4.2 / Table 1: PGD transferred from a grey-box substitute leaves the generative "
                               "classifiers a higher accuracy than white-box PGD (no gradient masking)")


def _figures(ctx: PaperContext, white: pl.DataFrame) -> list[tuple]:
    figs = []
    ok = white.filter(OK & pl.col("value").is_not_null())
    for atk in ("fgsm", "pgd", "mim", "cw"):
        sub = ok.filter(pl.col("attack") == atk).with_columns(MODEL.str.to_uppercase().alias("model"))
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
        if f"det.{d}.tpr" in det.columns and not det.is_empty():
            sub = det.with_columns(MODEL.str.to_uppercase().alias("model"))
            p = line_with_band(sub, "value", f"det.{d}.tpr", "model", ctx.figure(f"detection_fgsm_{d}.png"),
                               title=f"FGSM: {d} detection rate", xlabel="ε", ylabel="TPR at 5% FPR")
            figs.append((p, f"Fig. 3: {d} detection rate of successful FGSM adversarials vs ε"))
    return figs


FIG6 = "Fig. 6: clean inputs and CW adversarial examples (c = 10) crafted on GFZ"
FIG6_C = 10.0  # the paper's Fig. 6 shows c = 10 ("the sweet-spot parameter", §4.1)


def cw_examples_figure(ctx: PaperContext, white: pl.DataFrame) -> tuple[str, str]:
    """Fig. 6: the kept test images (``eval.examples``) clean and under CW at c = 10 on GFZ -- the paper's two
    panels as two rows -- then, not in the paper, the same images under CW c = 10 on the other six models."""
    at = (pl.col("attack") == "cw") & ((pl.col("value") - FIG6_C).abs() < 1e-9)
    first = first_ok(white, (MODEL == "gfz") & at)
    grid = [grid_row(first, "(a) clean", "ex.clean", "ex.pred_clean") if first else None,
            grid_row(first, "(b) CW on GFZ") if first else None]
    for m in MODELS:
        if m != "gfz" and (r := first_ok(white, (MODEL == m) & at)) is not None:
            grid.append(grid_row(r, f"CW on {m.upper()}*"))
    path = image_grid(grid, ctx.figure("fig6_cw_examples.png"), title=FIG6)
    return str(path), (f"{FIG6}: first attacked test images of the lowest seed, each captioned with the prediction "
                       "(✗ = fooled). Rows marked * are not in the paper: the same images under CW c = 10 on the "
                       "other factorisations.")


@paper("001", name="deep-bayes", title="Li, Bradshaw & Sharma (ICML 2019): Are generative classifiers more robust "
                                       "to adversarial attacks?", source="001_c207276a6492ab58.txt",
       experiments=["p001_whitebox.yaml", "p001_blackbox.yaml", "p001_transfer_matrix.yaml",
                    "p001_adaptive.yaml", "p001_fig2.yaml", "p001_cifar_binary.yaml", "p001_fig8.yaml",
                    "p001_dimz.yaml", "p001_baselines.yaml"],
       tables={"fig3": "Fig. 3: accuracy under white-box FGSM", "fig3-detection": "Fig. 3: FGSM detection rates",
               "appB-pgd": "Appendix B: accuracy under white-box PGD", "appB-mim": "Appendix B: accuracy under MIM",
               "appB-pgd-detection": "Appendix B: PGD detection rates",
               "fig5-cw": "Fig. 5: accuracy under CW-L2", "fig5-cw-l2": "Fig. 5: CW-L2 mean l2 distortion",
               "fig5-cw-detection": "Fig. 5: CW-L2 detection rates",
               "table1-minpert": "Table 1: mean minimum l-inf perturbation (MNIST)",
               "table1-accuracy": "Table 1: victim accuracy at the third ε of the grid (MNIST: 0.3)",
               "table3": "Table 3: victim accuracy under white-box PGD vs SPSA (MNIST)", "fig2": FIG2_TABLE,
               **CB_TABLES, **FIG8_TABLES, **A2_TABLES, **A3_TABLES, **A1_TABLES},
       figures={"fig2_two_rings": FIG2, "fig6_cw_examples": FIG6, **A3_FIGURES},
       notes="CIFAR-binary (Fig. 4, Fig. 7, Table 2, Table 3's second half) comes from p001_cifar_binary.yaml; at ci "
             "a binary 3-vs-8 digits task stands in. Fig. 8 (VGG16 CONV9 / FC1 features) from p001_fig8.yaml.")
def build(ctx: PaperContext) -> list[Section]:
    white, black = ctx.rows(WHITE), ctx.rows(BLACK)
    # Fig. 3 / appendix B / Fig. 5 print the seven factorisations and, below them, the discriminative baselines
    wb, wm = pl.concat([white, ctx.rows(BASE)], how="diagonal_relaxed"), MODELS + BASELINES
    # Table 1's white-box rows are p001_whitebox's; the blackbox file's own PGD row is Table 3's
    both = pl.concat([white, black.filter(pl.col("attack") != "pgd")], how="diagonal_relaxed")
    eps1 = _third_eps(black, "pgd-grey") or _third_eps(white, "pgd")
    t1 = [(a, label) for a, _, label in TABLE1_ROWS]
    return [
        *build_fig2(ctx),  # Fig. 2: two rings, decision and rejection regions (p001_fig2.py)
        Section("Fig. 3 and appendix B: white-box l-inf attacks on the seven factorisations", tables=[
            accuracy_table(wb, "fgsm", "fig3", "Fig. 3: victim accuracy under white-box FGSM", wm),
            detection_table(wb, "fgsm", "fig3-detection", "Fig. 3: TPR (5% FPR) on successful FGSM adversarials", wm),
            accuracy_table(wb, "pgd", "appB-pgd", "Appendix B: victim accuracy under white-box PGD", wm),
            detection_table(wb, "pgd", "appB-pgd-detection", "Appendix B: TPR on successful PGD adversarials", wm),
            accuracy_table(wb, "mim", "appB-mim", "Appendix B: victim accuracy under white-box MIM", wm),
        ], figures=_figures(ctx, wb)),
        Section("Fig. 5: CW-L2", tables=[
            accuracy_table(wb, "cw", "fig5-cw", "Fig. 5: victim accuracy under CW-L2", wm),
            pivot_table(wb, row_key="cfg.model.name", col_key="value", metric="mean_l2", row_order=wm,
                        col_order=_grid(wb, "cw"), row_labels=_labels(wm),
                        col_labels={v: f"c={_fmt(v)}" for v in _grid(wb, "cw")}, filter=pl.col("attack") == "cw",
                        id="fig5-cw-l2", title="Fig. 5: mean l2 distortion of successful CW adversarials",
                        row_header="model"),
            detection_table(wb, "cw", "fig5-cw-detection", "Fig. 5: TPR on successful CW adversarials", wm),
        ], figures=[cw_examples_figure(ctx, white)]),
        Section("Tables 1 and 3: gradient-masking sanity checks (transfer and SPSA)", tables=[
            by_model_table(both, t1, "m.min_perturbation", "table1-minpert",
                           "Table 1: mean minimum l-inf perturbation (max ε + 0.1 when no ε succeeds)", TABLE13_MODELS),
            by_model_table(both, t1, "adv_accuracy", "table1-accuracy",
                           f"Table 1: victim accuracy at ε = {eps1}", TABLE13_MODELS, value=eps1),
            pivot_table(black, row_key="cfg.model.name", col_key="attack", metric="adv_accuracy",
                        row_order=TABLE3_MODELS, col_order=["pgd", "spsa"], row_labels=_labels(TABLE3_MODELS),
                        col_labels={"pgd": "PGD", "spsa": "SPSA"}, filter=pl.col("attack").is_in(["pgd", "spsa"]),
                        id="table3", title=f"Table 3: victim accuracy, white-box PGD vs SPSA at ε = "
                                           f"{(_grid(black, 'spsa') or ['?'])[0]}", row_header="model"),
        ], checks=_claims(wb, black)),
        *build_cifar_binary(ctx.rows(CIFAR_BINARY)),  # Fig. 4 / 7, Tables 2-3 on CIFAR-binary (p001_cifar.py)
        *build_fig8(ctx),  # Fig. 8: deep-Bayes heads on VGG16 features (p001_fig8.py)
        *build_a1(ctx),  # appendix A.1: PGD aware of each detector over λ, with/without EOT (p001_a1.py)
        *build_a2(ctx),  # appendix A.2: dim(z) bottleneck (p001_a2.py)
        *build_a3(ctx),  # appendix A.3: transfer matrix (p001_transfer_matrix.yaml, report/papers/p001_a3.py)
    ]
