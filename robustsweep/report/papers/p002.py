"""Paper 002 (student report): are generative classifiers (GFZ) more robust than discriminative ones (DFZ)?

Why this layout: the paper's appendix prints five small tables with the classifiers as rows ("Classifier/Attack") and
the attacks as columns (Table 1 clean accuracy, Table 2 runtimes of all five attacks, Tables 3-5 success rate, rho and
logit detection rate for DeepFool and Fast Gradient Sign only); we print them the same way, so
``experiments/reference/002.yaml`` reads off the paper directly, plus tables "not in the paper" for all five attacks.
Figs. 3-6 are redrawn from the stored ``det.logit.roc_*`` points. The paper never gives the FGS ε: the tables read
``FGS_EPS``. Claims come from the text (§V, Conclusion); where its own table contradicts it, the claim says so.
"""
from __future__ import annotations

import warnings

import polars as pl

from robustsweep.report.aggregate import ensure_columns
from robustsweep.report.checks import CheckResult, all_of, compare_means, compare_to_value, seed_mean
from robustsweep.report.declare import Axis, TableSpec, models, titles
from robustsweep.report.figures import line_with_band, roc_curves
from robustsweep.report.html import Section
from robustsweep.report.images import first_ok, grid_row, image_grid
from robustsweep.report.paper_registry import PaperContext, paper
from robustsweep.report.select import OK, near
from robustsweep.report.tables import Table
from robustsweep.store import columns

EXPERIMENT = "p002-student"
FGS_EPS = 0.2  # the FGS ε the paper's tables are read at (paper silent; experiments/p002_student.yaml says why)
MODELS = ["dfz", "gfz"]
MODEL_LABELS = {"dfz": "DFZ", "gfz": "GFZ"}
ATTACKS = ["fgsm", "deepfool", "truncated-deepfool", "cw", "zoo"]  # Table 2's column order
ATTACK_LABELS = {"fgsm": "Fast Gradient Sign", "deepfool": "DeepFool", "truncated-deepfool": "Truncated-DeepFool",
                 "cw": "Wagner Carlini", "zoo": "ZOO"}
PAPER_ATTACKS = ["deepfool", "fgsm"]  # Tables 3-5: DeepFool first, then Fast Gradient Sign
ROW_HEADER = "Classifier/Attack"
TDF_NOTE = ("Truncated-DeepFool: the paper names it but prints no algorithm; ours is DeepFool followed by a bisection "
            "of the perturbation back to the decision boundary (robustsweep/attacks/deepfool.py), our invention.")
RHO = "m.rho_all"  # Table 4's rho: averaged over every attacked sample, as the paper writes it
RHO_CAPTION = ("rho averaged as the paper writes it, 1/n_samples over every attacked sample (DeepFool's convention; "
               "an unsuccessful attack contributes the perturbation it ended with): column m.rho_all. The store's "
               "`rho` averages over successful attacks only (table4_successes).")
DET = "logit"
TPR, AUC, ROC_FPR, ROC_TPR = (columns.det(DET, m) for m in ("tpr", "auc", "roc_fpr", "roc_tpr"))

ROWS = models(MODELS, header=ROW_HEADER)
ALL, PAPER = Axis("attack", ATTACKS, ATTACK_LABELS), Axis("attack", PAPER_ATTACKS, ATTACK_LABELS)
NOTE_ALL = "Same metric as the paper's table, for every attack of the sweep (the paper reports two). " + TDF_NOTE
SUCCESSES = ("The store's `rho`: the same ratio averaged over the successful attacks only, for comparison with the "
             "paper's averaging over every attacked sample.")
# the runtime captions end with the hardware the rows ran on (hardware_caption, added at build time)
SPECS = [
    TableSpec("table1", "Table 1: classification performance (accuracy on the test set)", EXPERIMENT, "_acc",
              Axis("cfg.model.name", MODELS, MODEL_LABELS, "Classifier"),
              Axis("_set", ["test", "validation"], {"test": "Accuracy (test set)",
                                                    "validation": "Accuracy (validation set)"}), digits=4,
              caption="Accuracy on the attacked test subset (eval.n_eval images) and on a seeded subset of the validation split of "
                      "the same size (m.val_accuracy; the validation split is held out of the training data: dataset.val_size)."),
    TableSpec("table2", "Table 2: runtime of each attack (s)", EXPERIMENT, "attack_time_s", ROWS, ALL, digits=2,
              caption="Seconds for one attack over eval.n_eval images. "),
    TableSpec("table2_per_example", "Table 2 per attacked example (s / example; not in the paper)", EXPERIMENT,
              "_s_per_example", ROWS, ALL, digits=4, caption="attack_time_s / n_eval. "),
    TableSpec("table2_per_batch", "Table 2 per batch of the evaluation batch size (s / batch; not in the paper)",
              EXPERIMENT, "_s_per_batch", ROWS, ALL, caption="attack_time_s / ceil(n_eval / batch size). "),
    TableSpec("table3", "Table 3: attack success rate", EXPERIMENT, "success_rate", ROWS, PAPER),
    TableSpec("table4", "Table 4: robustness rho = 1/n_samples sum ||eta||_2 / ||x||_2 (every attacked sample)",
              EXPERIMENT, RHO, ROWS, PAPER, caption=RHO_CAPTION),
    TableSpec("table4_successes", "Table 4 averaged over successful attacks only (not in the paper)", EXPERIMENT,
              "rho", ROWS, PAPER, caption=SUCCESSES),
    TableSpec("table5", "Table 5: logit detection rate at 5% false-positive rate", EXPERIMENT, columns.det(DET, "tpr"),
              ROWS, PAPER),
    TableSpec("table3_all", "Table 3, all five attacks (not in the paper)", EXPERIMENT, "success_rate", ROWS, ALL,
              caption=NOTE_ALL),
    TableSpec("table4_all", "Table 4, all five attacks (not in the paper)", EXPERIMENT, RHO, ROWS, ALL,
              caption=NOTE_ALL + " " + RHO_CAPTION),
    TableSpec("table5_all", "Table 5, all five attacks (not in the paper)", EXPERIMENT, columns.det(DET, "tpr"),
              ROWS, ALL, caption=NOTE_ALL),
    TableSpec("auc", "AUC of the logit detector, Figs. 3-6 (the paper prints only the curves)", EXPERIMENT,
              columns.det(DET, "auc"), ROWS, PAPER),
]
SPEC = {s.id: s for s in SPECS}
TABLES = titles(SPECS)
FIGURES = {
    "fig1_examples_dfz": "Fig. 1: comparison of different attacks on DFZ classifier",
    "fig2_examples_gfz": "Fig. 2: comparison of different attacks on GFZ classifier",
    "fig3_roc_fgs_dfz": "Fig. 3: ROC, Fast Gradient Sign on DFZ",
    "fig4_roc_fgs_gfz": "Fig. 4: ROC, Fast Gradient Sign on GFZ",
    "fig5_roc_deepfool_dfz": "Fig. 5: ROC, DeepFool on DFZ",
    "fig6_roc_deepfool_gfz": "Fig. 6: ROC, DeepFool on GFZ",
    "fgs_success_vs_eps": "FGS success rate over the ε grid (not in the paper: shows the ε the tables use)",
}


def model_is(name: str) -> pl.Expr:
    return pl.col("cfg.model.name") == name


def attack_is(name: str) -> pl.Expr:
    """One column of the paper: FGS only at ``FGS_EPS`` (the other ε of the grid are not in the tables)."""
    if name == "fgsm":
        return (pl.col("attack") == "fgsm") & near("eps", FGS_EPS)
    return pl.col("attack") == name


def with_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """The columns the builder reads, as nulls where absent (an experiment that has not run, or no detector), so
    the paper's layout renders with "—" cells and the claims read "not evaluated" instead of crashing."""
    return ensure_columns(rows, {"cfg.model.name": pl.String, RHO: pl.Float64, TPR: pl.Float64, AUC: pl.Float64,
                                 ROC_FPR: pl.List(pl.Float64), ROC_TPR: pl.List(pl.Float64)})


def table_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows the tables read: one per (trial, attack); FGS at ``FGS_EPS`` only. Failed rows pass through so the
    tables list them."""
    if rows.is_empty():
        return rows
    keep = pl.col("attack").is_in([a for a in ATTACKS if a != "fgsm"]) | attack_is("fgsm")
    return rows.filter(keep | ~OK)


def table(rows: pl.DataFrame, tid: str, caption: str = "") -> Table:
    """One of Tables 2-5 (``SPECS``): classifiers as rows, the spec's attacks (and only those) as columns; failed
    rows kept so the table lists them; ``caption`` appended to the spec's."""
    spec = SPEC[tid]
    keep = pl.col("attack").is_in(list(spec.cols.order)) | ~OK
    return spec.build(rows.filter(keep) if not rows.is_empty() else rows, caption=spec.caption + caption)


def runtime_columns(rows: pl.DataFrame) -> pl.DataFrame:
    """``_s_per_example`` = attack_time_s / n_eval and ``_s_per_batch`` = attack_time_s / ceil(n_eval / batch size):
    the attacks run batched, so a per-batch time is what a run with another n_eval would scale by."""
    rows = ensure_columns(rows, {"attack_time_s": pl.Float64, "n_eval": pl.Int64, "m.eval_batch_size": pl.Int64})
    n = pl.col("n_eval").cast(pl.Float64)
    batches = (n / pl.col("m.eval_batch_size").cast(pl.Float64)).ceil()
    return rows.with_columns((pl.col("attack_time_s") / n).alias("_s_per_example"),
                             (pl.col("attack_time_s") / batches).alias("_s_per_batch"))


def hardware_caption(rows: pl.DataFrame) -> str:
    """Which hardware and batch size the runtimes were measured on (distinct values over the ok rows)."""
    ok = rows.filter(OK) if not rows.is_empty() else rows

    def seen(col: str) -> str:
        return ", ".join(map(str, sorted(ok[col].drop_nulls().unique().to_list()))) if col in ok.columns else ""

    return (f"Measured on {seen('m.device') or 'an unrecorded device'}, batch size "
            f"{seen('m.eval_batch_size') or 'unrecorded'}, {seen('n_eval') or '?'} attacked images per trial; "
            "runtimes compare only on the same hardware.")


def accuracy_table(rows: pl.DataFrame) -> Table:
    """Table 1: test and validation accuracy. Both are the same on every row of a trial, so one attack's rows
    (DeepFool's) carry them; the two columns come from two metrics stacked into one long frame."""
    one = rows.filter((pl.col("attack") == "deepfool") | ~OK) if not rows.is_empty() else rows
    one = ensure_columns(one, {"clean_accuracy": pl.Float64, "m.val_accuracy": pl.Float64})
    long = pl.concat([one.with_columns(pl.lit("test").alias("_set"), pl.col("clean_accuracy").alias("_acc")),
                      one.with_columns(pl.lit("validation").alias("_set"), pl.col("m.val_accuracy").alias("_acc"))],
                     how="diagonal_relaxed")
    return SPEC["table1"].build(long)


def _models(rows: pl.DataFrame, attack: str, metric: str, op: str) -> CheckResult:
    """GFZ ``op`` DFZ on ``metric`` under ``attack``."""
    return compare_means(rows, model_is("gfz") & attack_is(attack), model_is("dfz") & attack_is(attack), metric,
                         op, label_a="GFZ", label_b="DFZ", at=ATTACK_LABELS[attack])


def _attacks(rows: pl.DataFrame, model: str, a: str, b: str, metric: str, op: str) -> CheckResult:
    """Attack ``a`` ``op`` attack ``b`` on ``metric`` for one model."""
    return compare_means(rows, model_is(model) & attack_is(a), model_is(model) & attack_is(b), metric, op,
                         label_a=ATTACK_LABELS[a], label_b=ATTACK_LABELS[b], at=MODEL_LABELS[model])


def extreme_attack(rows: pl.DataFrame, attack: str, which: str, *, name: str, claim: str) -> CheckResult:
    """Is ``attack`` the fastest / slowest of the five on both models (seed-mean attack_time_s)? ``observed`` lists
    every attack's time per model, so the ranking is visible in one line."""
    holds: list[bool | None] = []
    parts = []
    for m in MODELS:
        times = {a: seed_mean(rows, model_is(m) & attack_is(a), "attack_time_s")[0] for a in ATTACKS}
        parts.append(f"{MODEL_LABELS[m]}: " + ", ".join(
            f"{ATTACK_LABELS[a]} {'—' if v is None else f'{v:.3g} s'}" for a, v in times.items()))
        if any(v is None for v in times.values()):
            holds.append(None)
            continue
        best = (min if which == "fastest" else max)(times, key=lambda a: times[a])
        holds.append(best == attack)
    ok = None if None in holds else all(holds)
    return CheckResult(name, claim, ok, "attack_time_s " + "; ".join(parts))


def claims(rows: pl.DataFrame) -> dict[str, list[CheckResult]]:
    """The paper's qualitative claims, grouped by the section that shows their numbers."""
    t = "attack_time_s"
    return {
        "table1": [compare_means(
            rows, model_is("dfz") & attack_is("deepfool"), model_is("gfz") & attack_is("deepfool"),
            "clean_accuracy", ">", label_a="DFZ", label_b="GFZ", name="dfz_more_accurate",
            claim="§V.1 / Tab. 1: the discriminative DFZ is more accurate than the generative GFZ")],
        "table2": [
            extreme_attack(rows, "fgsm", "fastest", name="fgs_fastest",
                           claim="§V.2 / Tab. 2: FGS is the fastest attack (on both models)"),
            extreme_attack(rows, "zoo", "slowest", name="zoo_slowest",
                           claim="§V.2: ZOO is the slowest attack (on both models; the paper's own Tab. 2 has "
                                 "Wagner Carlini slower: 26.3 s vs 22.0 s on DFZ, 24.2 s vs 23.5 s on GFZ)"),
            all_of("gfz_attacks_slower", "Conclusion: robustness 'also translates to larger runtimes for a given "
                   "algorithm': every attack takes longer on GFZ than on DFZ (Tab. 2: 4 of 5, not CW)",
                   [_models(rows, a, t, ">") for a in ATTACKS]),
        ],
        "table3": [
            all_of("gfz_lower_success", "§V.3: 'the generative classifier is more robust' (Tab. 3 and 4), read on "
                   "Tab. 3 as a lower success rate on GFZ under DeepFool and FGS (the paper's own Tab. 3 shows the "
                   "opposite: 0.556 vs 0.493 and 0.373 vs 0.214)",
                   [_models(rows, a, "success_rate", "<") for a in PAPER_ATTACKS]),
            all_of("gfz_lower_success_cw", "Conclusion: generative classifiers are more robust to the attacks "
                   "studied: lower success rate on GFZ under Wagner Carlini (no CW numbers in the paper)",
                   [_models(rows, "cw", "success_rate", "<")]),
            all_of("gfz_lower_success_zoo", "Conclusion: ... and under the black-box ZOO (no ZOO numbers in the "
                   "paper)", [_models(rows, "zoo", "success_rate", "<")]),
        ],
        "table4": [
            all_of("gfz_larger_rho", "§V.3 / Tab. 4: GFZ needs larger perturbations (rho) than DFZ, under "
                   "DeepFool and FGS", [_models(rows, a, RHO, ">") for a in PAPER_ATTACKS]),
            all_of("deepfool_smaller_than_fgs", "§V.3 / Tab. 4: DeepFool creates smaller perturbations than FGS "
                   "(both models)", [_attacks(rows, m, "deepfool", "fgsm", RHO, "<") for m in MODELS]),
            all_of("truncated_smaller", "Conclusion: Truncated-DeepFool creates smaller perturbations than "
                   "DeepFool (both models; no numbers in the paper)",
                   [_attacks(rows, m, "truncated-deepfool", "deepfool", RHO, "<") for m in MODELS]),
        ],
        "table5": [
            all_of("gfz_detects_more", "§V.4 / Tab. 5: logit detection catches more attacks on GFZ than on DFZ, "
                   "under FGS and DeepFool", [_models(rows, a, TPR, ">") for a in PAPER_ATTACKS]),
            all_of("fgs_mostly_detected", "§V.4: 'most of the FGS attacks are detected by both classifiers' (detection rate > 0.5)",
                   [compare_to_value(rows, model_is(m) & attack_is("fgsm"), TPR, ">", 0.5,
                                     label=f"{MODEL_LABELS[m]} FGS") for m in MODELS]),
            all_of("deepfool_harder_to_detect", "§V.4: DeepFool attacks are much harder to detect than FGS "
                   "(both models)", [_attacks(rows, m, "deepfool", "fgsm", TPR, "<") for m in MODELS]),
        ],
        "auc": [all_of("gfz_larger_auc", "§V.4 / Figs. 3-6: the ROC area is larger for GFZ than for DFZ, for "
                       "both FGS and DeepFool", [_models(rows, a, AUC, ">") for a in PAPER_ATTACKS])],
    }


def roc_figure(ctx: PaperContext, rows: pl.DataFrame, stem: str, attack: str, model: str) -> tuple[str, str]:
    """One of Figs. 3-6: the stored ROC points of every seed (one curve each)."""
    sel = rows.filter(OK & model_is(model) & attack_is(attack)) if not rows.is_empty() else rows
    curves = []
    if ROC_FPR in sel.columns:
        for r in sel.sort("seed").iter_rows(named=True):
            if r[ROC_FPR]:
                curves.append((f"seed {r['seed']}", r[ROC_FPR], r[ROC_TPR], r.get(AUC)))
    with warnings.catch_warnings():  # no run yet: an empty plot, and matplotlib warns that its legend is empty
        warnings.filterwarnings("ignore", "No artists with labels", UserWarning)
        path = roc_curves(curves, ctx.figure(f"{stem}.png"), title=FIGURES[stem].split(": ", 1)[1],
                          ylabel="detection rate (successful adversarials)")
    return str(path), FIGURES[stem] + " (logit detector; one curve per seed)"


def example_figure(ctx: PaperContext, rows: pl.DataFrame, stem: str, model: str) -> tuple[str, str]:
    """Figs. 1-2: the same few test images, clean and under each of the five attacks, on one model (seed-0 trial's
    ``eval.examples`` images; FGS at ``FGS_EPS``), each captioned with the model's prediction."""
    first = first_ok(rows, model_is(model) & attack_is("deepfool"))
    grid = [grid_row(first, "clean", "ex.clean", "ex.pred_clean") if first else None]
    grid += [grid_row(r, ATTACK_LABELS[a]) if (r := first_ok(rows, model_is(model) & attack_is(a))) else None
             for a in ATTACKS]
    path = image_grid(grid, ctx.figure(f"{stem}.png"), title=FIGURES[stem].split(": ", 1)[1])
    return str(path), (FIGURES[stem] + f" (the first attacked test images of the lowest seed; FGS at ε = {FGS_EPS};"
                       " under each image the model's prediction, ✗ = not the true label)")


def figures(ctx: PaperContext, rows: pl.DataFrame) -> list[tuple[str, str]]:
    out = [example_figure(ctx, rows, "fig1_examples_dfz", "dfz"), example_figure(ctx, rows, "fig2_examples_gfz", "gfz")]
    out += [roc_figure(ctx, rows, stem, atk, m) for stem, atk, m in (
        ("fig3_roc_fgs_dfz", "fgsm", "dfz"), ("fig4_roc_fgs_gfz", "fgsm", "gfz"),
        ("fig5_roc_deepfool_dfz", "deepfool", "dfz"), ("fig6_roc_deepfool_gfz", "deepfool", "gfz"))]
    fgs = rows.filter(OK & (pl.col("attack") == "fgsm")) if not rows.is_empty() else rows
    if not fgs.is_empty():
        p = line_with_band(fgs, "eps", "success_rate", "cfg.model.name", ctx.figure("fgs_success_vs_eps.png"),
                           title="FGS success rate", xlabel="ε", ylabel="success rate")
        out.append((str(p), FIGURES["fgs_success_vs_eps"]))
    return out


@paper("002", name="student", source="002_9fab8e0f6d58ef05.txt", experiments=["p002_student.yaml"],
       title="Akhannouss, Barbier & Lutt: Are Generative Classifiers More Robust to Adversarial Attacks? "
             "(DFZ vs GFZ on Fashion-MNIST)",
       tables=SPECS, figures=FIGURES,
       notes="Runtimes (Table 2) are our attack_time_s: wall time of one attack over all eval.n_eval images of a "
             "trial on the trial's hardware; the paper does not say how many images its times cover. FGS is read "
             f"at ε = {FGS_EPS} (the paper gives no ε). Figs. 1-2 show the images eval.examples keeps. "
             "At ci and mini scale the data is mnist5k (5,000 real MNIST digits, the same 28x28 greyscale shape) "
             "in place of Fashion-MNIST: the paper's numbers are shown for orientation only, and its claims are checked on MNIST.")
def build(ctx: PaperContext) -> list[Section]:
    rows = with_columns(ctx.rows(EXPERIMENT))
    tr = table_rows(rows)
    c = claims(rows)
    hw = hardware_caption(rows) + " " + TDF_NOTE
    return [
        Section("Table 1: classification performance", tables=[accuracy_table(rows)], checks=c["table1"]),
        Section("Table 2: runtimes", tables=[table(tr, "table2", hw), table(runtime_columns(tr), "table2_per_example", hw),
                                             table(runtime_columns(tr), "table2_per_batch", hw)], checks=c["table2"]),
        Section("Table 3: success rate", tables=[table(tr, "table3"), table(tr, "table3_all")], checks=c["table3"]),
        Section("Table 4: robustness rho", tables=[table(tr, t) for t in ("table4", "table4_successes", "table4_all")],
                checks=c["table4"]),
        Section("Table 5: logit detection at 5% FPR", tables=[table(tr, "table5"), table(tr, "table5_all")],
                checks=c["table5"]),
        Section("Figs. 1-6: example images and ROC curves of the logit detector", figures=figures(ctx, rows),
                tables=[table(tr, "auc")], checks=c["auc"]),
    ]
