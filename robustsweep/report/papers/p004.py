"""Paper 004 (Beadini & Masi): the energy E(x) = -logsumexp(logits) of a discriminative classifier as a
training-free detector of untargeted attacks (eq. 9), and the High-Energy PGD that evades it (eq. 11).

Why the tables look as they do:

- **Labels work at both scales** (a reference entry must name a row / column every scale has): each carries the
  paper-scale name and its ci stand-in, "CIFAR-10 / digits", "ResNet10 / cnn"; "PGD (8)" / "PGD (16)" are the
  smaller / larger ε of the PGD grid (8/255, 16/255 at paper scale; 0.2, 0.4 at ci).
- **Table 1 mixes metrics** (DR and FPR side by side), so the rows are melted into one value column; the paper's
  "Defense" column is in the row label: "Energy (G-mean)" is §5.1's threshold rule, "Energy (Youden)" the code's.
- **No per-input energies in the rows**: the detector stores the mean score of clean and of successful adversarial
  inputs (the score is -E) and the AUC P(E(adv) < E(clean)) (> 0.5: adversarials have *lower* energy, the paper's
  finding); Fig. 2(a) / 3(a) come from the binned score histograms (``hist_bins``), :mod:`.p004_hist`.
- The cross-paper sweep (p004_cross.yaml) is :mod:`.p004_cross`.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.aggregate import column_or
from robustsweep.report.checks import CheckResult, compare_means, drops, flat, monotone, point, run_claims, seed_mean
from robustsweep.report.declare import Order, TableSpec, melted
from robustsweep.report.figures import line_with_band, roc_curves
from robustsweep.report.html import Section
from robustsweep.report.paper_registry import PaperContext, paper
from robustsweep.report.papers.p004_cross import TABLES as CROSS_TABLES
from robustsweep.report.papers.p004_cross import build_cross
from robustsweep.report.papers.p004_fig4 import FIG4, build_fig4
from robustsweep.report.papers.p004_fig4 import TABLE as FIG4_TABLE
from robustsweep.report.papers.p004_hist import hist_figure, hist_table
from robustsweep.report.select import OK, melt, near, num
from robustsweep.report.tables import Table
from robustsweep.store import columns

E_AUC, E_DR = columns.det("energy", "auc"), columns.det("energy", "tpr")  # the Youden detector's AUC / DR
CIFAR, IMAGENETTE = "energy-cifar10", "energy-imagenette"  # spec names of p004_cifar10.yaml / p004_imagenette.yaml
DATASET = {IMAGENETTE: "imagenette / mnist5k", CIFAR: "CIFAR-10 / digits"}  # paper-scale name / ci stand-in
MODEL = {"resnet10": "ResNet10 / cnn", "cnn": "ResNet10 / cnn", "vgg16": "VGG16 / mlp", "mlp": "VGG16 / mlp"}
MODELS = ["ResNet10 / cnn", "VGG16 / mlp"]
RULE = {"energy-gmean": "G-mean", "energy": "Youden"}  # detector label -> threshold rule (paper §5.1 / public code)
BUDGETS = ["(8)", "(16)"]  # PGD eps grid, smallest first
ATTACKS = {IMAGENETTE: ["PGD (8)", "PGD (16)"], CIFAR: ["PGD (8)", "PGD (16)", "APGD (8)"]}
LAM_LABEL = {0.0: "0 (PGD)", 1.2: "1.2 (paper)"}

CAPTION = ("Labels read 'paper scale / ci scale': at ci, mnist5k stands in for imagenette, digits for CIFAR-10, cnn for "
           "ResNet10, mlp for VGG16, and ε 0.2 / 0.4 for 8/255 / 16/255.")


def _prepared(ctx: PaperContext, experiment: str) -> pl.DataFrame:
    """The experiment's rows plus ``__model`` (column label) and ``__atk`` (Table 1 attack label or null)."""
    df = ctx.rows(experiment)
    name = pl.col("cfg.model.name") if "cfg.model.name" in df.columns else pl.lit(None, pl.String)
    pgd_eps = df.filter((pl.col("attack") == "pgd") & (pl.col("param") == "eps"))["value"].drop_nulls().unique()
    budget = {v: f"PGD {b}" for v, b in zip(sorted(pgd_eps.to_list()), BUDGETS)}
    atk = (pl.when((pl.col("attack") == "pgd") & (pl.col("param") == "eps"))
           .then(pl.col("value").replace_strict(budget, default=None, return_dtype=pl.String))
           .when(pl.col("attack") == "apgd").then(pl.lit("APGD (8)")).otherwise(pl.lit(None, pl.String)))
    return df.with_columns(name.replace_strict(MODEL, default=None, return_dtype=pl.String).alias("__model"),
                           atk.alias("__atk"))


def _melt(df: pl.DataFrame, row: pl.Expr, metrics: dict[str, str]) -> pl.DataFrame:
    """:func:`select.melt` of ``metrics`` (label -> column), ``__col`` = "<metric> · <model>"; rows with a null key
    (outside the table) dropped."""
    return melt(df, [(col, label) for label, col in metrics.items()], row,
                lambda label: pl.format("{} · {}", pl.lit(label), pl.col("__model"))).filter(
        pl.col("__row").is_not_null() & pl.col("__col").is_not_null())


def _spec(tid: str, title: str, header: str, rows: Order, metrics: list[str]) -> TableSpec:
    """A mixed-metric table, columns "<metric> · <model>" per model column."""
    return melted(tid, title, header, rows, [f"{m} · {model}" for model in MODELS for m in metrics], CAPTION)


AUC_METRICS = {"AUC": E_AUC, "DR either dir.": columns.det("energy-auto", "tpr"),
               "FPR either dir.": columns.det("energy-auto", "fpr")}
STEP_METRICS = {"acc": "adv_accuracy", "E(adv)": "__energy_adv", "AUC": E_AUC, "DR": E_DR}
LAM_METRICS = {"success": "success_rate", "AUC": E_AUC, "DR Youden": E_DR, "DR G-mean": columns.det("energy-gmean", "tpr")}


def _steps(df: pl.DataFrame) -> list[str]:
    return [str(int(v)) for v in sorted(df.filter(pl.col("param") == "steps")["value"].drop_nulls().unique()
                                        .to_list())] or ["5", "10", "20", "40"]


def _lambdas(df: pl.DataFrame) -> dict[float, str]:
    vals = sorted(df.filter((pl.col("attack") == "he-pgd") & (pl.col("param") == "lam"))["value"].drop_nulls()
                  .unique().to_list()) or [0.0, 0.6, 1.2, 2.4]
    return {v: LAM_LABEL.get(v, f"{v:g}") for v in vals}


TABLE1 = _spec("table1", "Table 1: attack detection with the energy function (DR on all adversarial test images, as "
               "the public code counts it; rows older than det.<d>.reject_adv: on successful attacks; FPR on clean)",
               "dataset · defense · attack", [f"{DATASET[e]} · Energy ({r}) · {a}" for e in (IMAGENETTE, CIFAR)
                                              for r in RULE.values() for a in ATTACKS[e]], ["DR", "FPR"])
ENERGY_AUC = _spec("energy-auc", "§4.1: AUC of the energy score P(E(adv) < E(clean)) (> 0.5: adversarials have lower "
                   "energy), and DR / FPR when the detector may flag high energy instead (Youden)", "dataset · attack",
                   [f"{DATASET[e]} · {a}" for e in (IMAGENETTE, CIFAR) for a in ATTACKS[e]], list(AUC_METRICS))
STEPS = _spec("fig-energy-steps", "Fig. 2(b) / 3(b): adversarial accuracy, mean energy E of the successful "
              "adversarials, energy AUC and DR (Youden) vs number of steps (PGD; HE-PGD at λ = 1.2)", "steps", _steps,
              [f"{lab} {k}" for lab in ("PGD", "HE-PGD") for k in STEP_METRICS])
LAMBDA = _spec("he-pgd-lambda", "HE-PGD (eq. 11) vs λ: attack success, energy AUC and detection rate of the "
               "PGD-fitted detector", "λ", lambda df: list(_lambdas(df).values()), list(LAM_METRICS))


def table1(data: dict[str, pl.DataFrame]) -> Table:
    """Table 1: DR / FPR of the energy detector per dataset, threshold rule and attack (ResNet10 -> our models)."""
    parts = []
    for exp in (IMAGENETTE, CIFAR):
        df = data[exp].filter(pl.col("__atk").is_not_null())
        parts += [_melt(df, pl.lit(f"{DATASET[exp]} · Energy ({rule}) · ") + pl.col("__atk"),
                        {"DR": dr_column(df, det), "FPR": columns.det(det, "fpr")}) for det, rule in RULE.items()]
    return TABLE1.build(pl.concat(parts))


def dr_column(df: pl.DataFrame, det: str) -> str:
    """The detection rate of Table 1: the flagged fraction of ALL adversarial test images (the public code's
    ``TP = (energy_adv <= threshold).sum()``), ``det.<det>.reject_adv``; rows written before it existed only have
    the flagged fraction of the successful adversarials, ``det.<det>.tpr``."""
    return column_or(df, columns.det(det, "reject_adv"), columns.det(det, "tpr"))


def energy_auc(data: dict[str, pl.DataFrame]) -> Table:
    """§4.1 in numbers: AUC of the low-energy score, and the detector free to flag either direction (ours)."""
    return ENERGY_AUC.build(pl.concat([_melt(data[e].filter(pl.col("__atk").is_not_null()),
                                             pl.lit(f"{DATASET[e]} · ") + pl.col("__atk"), AUC_METRICS)
                                       for e in (IMAGENETTE, CIFAR)]))


def energy_steps(df: pl.DataFrame) -> Table:
    """Fig. 2(b) (PGD) and 3(b) (HE-PGD, λ = 1.2): accuracy, mean energy of the successful adversarials, AUC and DR
    against the number of steps. The mean energy is -``det.energy.score_adv_mean`` (the paper's detector flags low
    energy, so its score is -E)."""
    steps = df.filter((pl.col("param") == "steps") & pl.col("attack").is_in(["pgd", "he-pgd"]))
    steps = steps.with_columns((-num(steps, columns.det("energy", "score_adv_mean"))).alias("__energy_adv"))
    return STEPS.build(pl.concat([_melt(steps.filter(pl.col("attack") == a), pl.col("value").cast(pl.Int64)
                                        .cast(pl.String), {f"{lab} {k}": v for k, v in STEP_METRICS.items()})
                                  for a, lab in (("pgd", "PGD"), ("he-pgd", "HE-PGD"))]), source=steps)


def he_pgd_lambda(df: pl.DataFrame) -> Table:
    """§5.2 / Fig. 3(a): HE-PGD against its weight λ (λ = 0 is plain PGD from the same random start)."""
    lam = df.filter((pl.col("attack") == "he-pgd") & (pl.col("param") == "lam"))
    row = pl.col("value").replace_strict(_lambdas(df), default=None, return_dtype=pl.String)
    return LAMBDA.build(_melt(lam, row, LAM_METRICS), source=df)


def _detects(df: pl.DataFrame, filt: pl.Expr, what: str) -> CheckResult:
    """DR > 0.5 and FPR <= 0.05 at the paper's own threshold rule: the G-mean (§5.1: "We utilize the G-mean metric
    to estimate the threshold", which Table 1's numbers come from), i.e. the ``energy-gmean`` detector; a sweep
    without it is judged at the Youden threshold, and the detail says which rule it was."""
    det = "energy-gmean" if columns.det("energy-gmean", "tpr") in df.columns and seed_mean(
        df, filt, columns.det("energy-gmean", "tpr"))[0] is not None else "energy"
    dr, n = seed_mean(df, filt, dr_column(df.filter(filt), det))
    fpr, _ = seed_mean(df, filt, columns.det(det, "fpr"))
    if dr is None or fpr is None:
        return CheckResult("", "", None, f"{what}: no rows")
    return CheckResult("", "", dr > 0.5 and fpr <= 0.05, f"{what}, {RULE[det]} threshold: DR {dr:.3f}, FPR {fpr:.3f} "
                                                         f"(n={n}); need DR > 0.5, FPR <= 0.05")


def claims(data: dict[str, pl.DataFrame]) -> dict[str, list[CheckResult]]:
    """The paper's qualitative claims per model column, keyed by the section they belong to."""
    out: dict[str, list[CheckResult]] = {"table1": [], "steps": [], "lambda": []}
    for model in MODELS:
        _model_claims(data[CIFAR], data[IMAGENETTE], model, out)
    return out


def _model_claims(cif: pl.DataFrame, img: pl.DataFrame, model: str, out: dict[str, list[CheckResult]]) -> None:
    """One model column's claims (CIFAR-10 / digits rows unless a claim names imagenette), added to ``out``."""
    mm, tag = pl.col("__model") == model, f"[{model}]"
    most = cif.filter(pl.col("param") == "steps")["value"].max() or 0.0  # the largest step count of the grid
    pgd8, apgd, pgd16 = (mm & (pl.col("__atk") == a) for a in ("PGD (8)", "APGD (8)", "PGD (16)"))
    steps = mm & (pl.col("param") == "steps")
    pgd_steps, he_steps = steps & (pl.col("attack") == "pgd"), steps & (pl.col("attack") == "he-pgd")
    lam = mm & (pl.col("attack") == "he-pgd") & (pl.col("param") == "lam")
    lam12, lam0 = lam & near("value", 1.2), lam & (pl.col("value") == 0.0)
    out["table1"] += run_claims([
        (f"pgd-lower-energy CIFAR-10 {tag}", "§4.1: PGD (8) points have lower energy than natural data (AUC of the "
         "low-energy score > 0.5)", lambda _: point(cif, pgd8, E_AUC, lambda a: a > 0.5, "CIFAR-10 / digits PGD (8)",
                                                      "> 0.5")),
        (f"pgd-lower-energy imagenette {tag}", "§4.1, Fig. 2(a): PGD (8) points have lower energy than natural data "
         "(AUC of the low-energy score > 0.5)",
         lambda _: point(img, pgd8, E_AUC, lambda a: a > 0.5, "imagenette / mnist5k PGD (8)", "> 0.5")),
        (f"energy-detects-pgd CIFAR-10 {tag}", "Table 1: energy detects PGD (8) with DR > 0.5 and FPR <= 0.05 at the "
         "G-mean threshold (paper: DR 98.4%, FPR 1.6%)", lambda _: _detects(cif, pgd8, "CIFAR-10 / digits PGD (8)")),
        (f"energy-detects-pgd imagenette {tag}", "Table 1: energy detects PGD (8) with DR > 0.5 and FPR <= 0.05 at "
         "the G-mean threshold (paper: DR 98.2%, FPR 1.4%)",
         lambda _: _detects(img, pgd8, "imagenette / mnist5k PGD (8)")),
        (f"apgd-detected {tag}", "Table 1: the detector fitted on PGD also catches the unseen APGD (8): DR > 0.5 and "
         "FPR <= 0.05 at the G-mean threshold (paper: DR 85.5%, FPR 1.2%)",
         lambda _: _detects(cif, apgd, "CIFAR-10 / digits APGD (8)")),
        (f"stronger-easier {tag}", "§1/Table 1: the stronger the attack, the easier to detect: the energy score "
         "separates PGD (16) better than PGD (8) (AUC), imagenette (paper: DR 99.6% vs 98.2%)",
         lambda _: compare_means(img, pgd16, pgd8, E_AUC, ">", label_a="PGD (16)", label_b="PGD (8)",
                                 at="imagenette / mnist5k")),
    ])
    out["steps"] += run_claims([
        (f"energy-falls-with-steps {tag}", "Fig. 2(b): PGD energy falls as the number of steps grows (AUC of the "
         "low-energy score non-decreasing in steps, 0.01 slack)", lambda _: monotone(
             cif, "value", E_AUC, filter=pgd_steps, direction="increasing", tolerance=0.01, label="PGD")),
        (f"he-pgd-steps-invariant {tag}", "Fig. 3(b): HE-PGD energy is roughly invariant to the number of steps "
         "(AUC spread over steps <= 0.1)", lambda _: flat(cif, he_steps, E_AUC, "HE-PGD")),
        (f"he-pgd-accuracy-zero {tag}", "Fig. 3(b): HE-PGD still drives accuracy to about 0 (<= 0.05 at the most "
         "steps)", lambda _: point(cif, he_steps & (pl.col("value") == most), "adv_accuracy", lambda a: a <= 0.05,
                                   f"HE-PGD {most:g} steps", "<= 0.05")),
    ])
    out["lambda"] += run_claims([
        (f"he-pgd-lambda-lowers-dr {tag}", "§4.3/§5.2: a larger λ lowers the detection rate (DR Youden "
         "non-increasing in λ and > 0.05 lower at the largest λ than at λ = 0)",
         lambda _: drops(cif, lam, E_DR, "HE-PGD")),
        (f"he-pgd-evades {tag}", "Fig. 3(a): at λ = 1.2 adversarial and natural energies overlap, the detector is "
         "worthless (|AUC - 0.5| <= 0.1)",
         lambda _: point(cif, lam12, E_AUC, lambda a: abs(a - 0.5) <= 0.1, "HE-PGD λ=1.2", "within 0.5 ± 0.1")),
        (f"he-pgd-as-effective {tag}", "§5.2: HE-PGD (λ = 1.2) is at least as effective as PGD (success rate no "
         "more than 0.02 below λ = 0)", lambda _: compare_means(
             cif, lam12, lam0, "success_rate", ">=", margin=-0.02, label_a="λ=1.2", label_b="λ=0 (PGD)")),
    ])


def _roc_figure(ctx: PaperContext, data: dict[str, pl.DataFrame], model: str) -> tuple[str, str] | None:
    """ROC of the energy score (first seed) for every Table 1 row of one model column, plus HE-PGD at λ = 1.2."""
    curves = []
    for exp in (IMAGENETTE, CIFAR):
        df = data[exp]
        if columns.det("energy", "roc_fpr") not in df.columns or df.is_empty():
            continue
        df = df.filter((pl.col("__model") == model) & OK)
        if df.is_empty():
            continue
        df = df.filter(pl.col("seed") == df["seed"].min())
        sel = [(f"{DATASET[exp]} {a}", pl.col("__atk") == a) for a in ATTACKS[exp]]
        if exp == CIFAR:
            sel.append((f"{DATASET[exp]} HE-PGD λ=1.2", (pl.col("attack") == "he-pgd") & (pl.col("param") == "lam")
                        & near("value", 1.2)))
        for label, filt in sel:
            r = df.filter(filt)
            fpr, tpr = columns.det("energy", "roc_fpr"), columns.det("energy", "roc_tpr")
            if r.height and r[fpr][0] is not None:
                curves.append((label, r[fpr][0].to_list(), r[tpr][0].to_list(), r[E_AUC][0]))
    if not curves:
        return None
    slug = model.split(" /")[0].lower()
    path = roc_curves(curves, ctx.figure(f"roc_{slug}.png"), title=f"Energy score ROC, {model} (first seed)")
    return str(path), f"ROC of the low-energy score (clean = negatives, successful adversarials = positives), {model}"


def _line_figure(ctx: PaperContext, df: pl.DataFrame, filt: pl.Expr, metrics: dict[str, str], name: str,
                 xlabel: str, ylabel: str, caption: str) -> tuple[str, str] | None:
    sub = df.filter(filt & pl.col("__model").is_not_null()) if "__model" in df.columns else df.clear()
    atk = pl.col("attack").replace_strict({"pgd": "PGD", "he-pgd": "HE-PGD"}, default="", return_dtype=pl.String)
    long = pl.concat([sub.select("seed", "status", "value", num(sub, col).alias("v"),
                                 pl.format("{}{} · {}", pl.lit(lab), atk, pl.col("__model")).alias("curve"))
                      for lab, col in metrics.items()])
    if long.drop_nulls("v").is_empty():
        return None
    path = line_with_band(long, "value", "v", "curve", ctx.figure(name), xlabel=xlabel, ylabel=ylabel, title=caption)
    return str(path), caption


@paper("004", name="energy",
       title="Beadini & Masi: Exploring the connection between robust and generative models (energy detector, High-Energy PGD)",
       source="004_61013f1954d73720.txt",
       experiments=["p004_imagenette.yaml", "p004_cifar10.yaml", "p004_cross.yaml", "p004_cross_gmmvae.yaml",
                    "p004_fig4.yaml"],
       tables={"table1": "Table 1: attack detection with the energy function (DR / FPR)",
               "energy-auc": "§4.1: adversarial vs natural energy (AUC of the energy score; either-direction DR)",
               "fig-energy-steps": "Fig. 2(b) / 3(b): accuracy and energy separation vs number of PGD / HE-PGD steps",
               "he-pgd-lambda": "§4.3 / §5.2: HE-PGD detection rate vs λ (λ = 1.2 in the paper)",
               "energy-hist": "Fig. 2(a) / 3(a): overlap of natural and adversarial energy histograms",
               "fig4": FIG4_TABLE, **CROSS_TABLES},
       figures={"roc_resnet10": "ROC of the energy score, ResNet10 / cnn", "roc_vgg16": "ROC, VGG16 / mlp",
                "energy_steps": "energy AUC vs steps (Fig. 2(b), 3(b))", "accuracy_steps": "accuracy vs steps",
                "he_pgd_lambda": "DR and AUC vs λ", "energy_hist_resnet10": "energy histograms (Fig. 2(a), 3(a)), "
                "ResNet10 / cnn", "energy_hist_vgg16": "energy histograms, VGG16 / mlp", "fig4_gradients": FIG4},
       notes="Not built: the KD+BU and LID rows of Table 1 (other detectors, quoted by the paper from [2], not run "
             "by it); the §5.3 synthesis figure (image generation with a robust model).")
def build(ctx: PaperContext) -> list[Section]:
    """Table 1, the energy-AUC table, the steps table (Fig. 2(b)/3(b)) and the λ table, with figures and claims."""
    data = {exp: _prepared(ctx, exp) for exp in (IMAGENETTE, CIFAR)}
    cif = data[CIFAR]
    ch = claims(data)
    figs = [f for m in MODELS if (f := _roc_figure(ctx, data, m))]
    steps = (pl.col("param") == "steps") if "param" in cif.columns else pl.lit(False)
    step_figs = [f for f in (
        _line_figure(ctx, cif, steps & pl.col("attack").is_in(["pgd", "he-pgd"]), {"": E_AUC},
                     "energy_steps.png", "steps", "AUC P(E(adv) < E(clean))",
                     "Energy AUC vs steps (PGD; HE-PGD at λ = 1.2)"),
        _line_figure(ctx, cif, steps & pl.col("attack").is_in(["pgd", "he-pgd"]), {"": "adv_accuracy"},
                     "accuracy_steps.png", "steps", "adversarial accuracy", "Accuracy vs steps (PGD and HE-PGD)"),
    ) if f]
    lam = (pl.col("attack") == "he-pgd") & (pl.col("param") == "lam")
    lam_figs = [f for f in (_line_figure(ctx, cif, lam, {"DR ": E_DR, "AUC ": E_AUC},
                                         "he_pgd_lambda.png", "λ", "DR (Youden) / AUC",
                                         "HE-PGD: detection rate and energy AUC vs λ"),) if f]
    mapping = ("At ci scale the labels' second names apply: mnist5k / digits with cnn / mlp, ε 0.2 / 0.4 for 8/255 / 16/255 (step "
               "ε/8 as the paper's 1/255). The paper-scale files run the paper's ResNet10 (and VGG16, not in the paper).")
    return [
        Section("Table 1: energy detection of PGD and APGD", text=mapping + " DR is measured on successful adversarials only, FPR "
                "on the clean test inputs. Thresholds never see test data: they are fitted on a validation split held out of the "
                "training data (det.energy.fit_split) and, per attack point, on validation adversarials of that very attack "
                "(det.energy.fit_adv), as the paper fits its threshold for the attack it detects. KD+BU and LID rows not built.",
                tables=[table1(data), energy_auc(data)], figures=figs, checks=ch["table1"]),
        Section("Fig. 2(b) / 3(b): energy vs number of steps", text="The paper plots the mean energy per step "
                "count: E(adv) is the mean energy of the successful adversarials (the paper's sign: lower = more "
                "suspicious to its detector); the AUC of the energy score (P(E(adv) < E(clean))) shows the same "
                "trend without the scale: a falling energy shows as a rising AUC.",
                tables=[energy_steps(cif)], figures=step_figs, checks=ch["steps"]),
        Section("HE-PGD (eq. 11) vs λ", text="The detector is fitted on plain PGD and then faces HE-PGD at each λ "
                "(λ = 0: plain PGD from the same random start; the paper uses 1.2).",
                tables=[he_pgd_lambda(cif)], figures=lam_figs, checks=ch["lambda"]),
        Section("Fig. 2(a) / 3(a): energy histograms", text="Energy E(x) of the natural test inputs and of the "
                "successful adversarials, PGD at the most steps (Fig. 2(a)) and HE-PGD per λ (Fig. 3(a)), from the "
                "binned histograms the energy detector stores (shared bins per row). The overlap is the overlapping "
                "coefficient of the two normalised histograms (1: indistinguishable, 0: disjoint).",
                tables=[hist_table(cif, MODELS, CAPTION)],
                figures=[f for m in MODELS if (f := hist_figure(ctx, cif, m))]),
        *build_fig4(ctx),
        *build_cross(ctx),
    ]
