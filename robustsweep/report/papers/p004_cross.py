"""Cross-paper sweep: paper 004's energy detector and High-Energy PGD pointed at paper 001's deep-Bayes generative
classifiers (``p004_cross.yaml``) and at paper 003's GMM-VAE (``p004_cross_gmmvae.yaml``: its τ detector applies to it
alone), with the adaptive rows of issue 19. ``p004.py`` lists the experiments and calls :func:`build_cross`.

Why the tables look as they do:

- **The energy of a generative classifier is -log p(x)** (its logits are log p(x, y)): paper 001's marginal statistic
  with the opposite flag, so HE-PGD, which raises E, walks *into* the marginal detector; the tables show how far that
  carries to the logit and KL detectors.
- **Threshold-free first.** Each detector was fitted by its own paper's rule, so DRs at the fitted thresholds do not
  compare (the Youden energy threshold can sit at FPR 1.0): the first table gives each score's AUC, the second the
  attacker's success (fooled AND accepted) with every detector at 5 % FPR on its clean fit data, and its minimum over
  the detectors (an upper bound when all of them watch). The τ columns are a third table (GMM-VAE rows only).
- **Rows** are "MODEL · attack": HE-PGD over λ (λ = 0: plain PGD), PGD aware of the logit detector (GMM-VAE: of τ)
  and PGD aware of the fitted energy threshold.
"""
from __future__ import annotations

import polars as pl

from robustsweep.report.checks import CheckResult, seed_mean
from robustsweep.report.declare import melted
from robustsweep.report.html import Section
from robustsweep.report.paper_registry import PaperContext
from robustsweep.report.select import at, grid, melt
from robustsweep.report.tables import Table
from robustsweep.store import columns

CROSS = "energy-cross"  # p004_cross.yaml's spec name
CROSS_GMMVAE = "energy-cross-gmmvae"  # p004_cross_gmmvae.yaml's
MODELS = ["gfz", "gfy", "gbz", "gby", "dfx", "dfz", "dbx", "gmmvae"]  # paper 001 §2 order, then paper 003's
CI_MODELS = ["gfz", "gbz", "dfz", "gmmvae"]  # the ci grids, printed before any run
DETECTORS = {"energy": "energy", "energy-auto": "energy (auto)", "marginal": "marginal", "logit": "logit", "kl": "KL"}
AUC_DETECTORS = ["energy", "marginal", "logit", "kl"]  # energy-auto's AUC is energy's or 1 - it: left out
HE_LAMBDAS, AWARE_LAMBDAS = [0.0, 0.1, 1.2, 10.0], [1.0, 10.0]  # the file's grids (both sizes): empty-report rows
AWARE = {"logit-aware": "logit-aware PGD", "tau-aware": "τ-aware PGD", "energy-aware": "energy-aware PGD"}
#: the attack entries of each model's file: deep-Bayes (p004_cross.yaml) and GMM-VAE (p004_cross_gmmvae.yaml)
ENTRIES = {"gmmvae": ["he-pgd", "tau-aware", "energy-aware"]}
DEEP_BAYES_ENTRIES = ["he-pgd", "logit-aware", "energy-aware"]
TABLES = {"cross-auc": "Cross-paper: does the energy evasion transfer to the generative classifiers' own "
                       "detectors? (AUC per detector)",
          "cross-success": "Cross-paper: attacker success (fooled AND accepted) at 5 % FPR, per detector watching",
          "cross-tau": "Cross-paper, GMM-VAE: its own τ rejection against HE-PGD and the adaptive attacks"}
MARGIN = 0.02  # chosen: seed / Monte-Carlo noise of 100-200 attacked digits moves an AUC or a rate by ~0.01


def _attack_label(attack: str, value: float) -> str:
    if attack == "he-pgd":
        return "PGD (HE-PGD λ=0)" if value == 0 else f"HE-PGD λ={value:g}"
    return f"{AWARE.get(attack, attack)} λ={value:g}"


def _prepared(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows with ``__row`` = "MODEL · attack label" (null for rows outside the three attack entries)."""
    if rows.is_empty() or "cfg.model.name" not in rows.columns:  # not run: the tables print dashes
        return pl.DataFrame(schema={"seed": pl.Int64, "status": pl.String, "__row": pl.String})
    known = pl.col("attack").is_in(["he-pgd", *AWARE])
    label = pl.struct("attack", "value").map_elements(
        lambda s: _attack_label(s["attack"], s["value"]) if s["value"] is not None else None, return_dtype=pl.String)
    return rows.with_columns(pl.when(known).then(pl.format("{} · {}", pl.col("cfg.model.name").str.to_uppercase(),
                                                           label)).alias("__row"))


def _grid(rows: pl.DataFrame, attack: str, default: list[float]) -> list[float]:
    return grid(rows, attack) or default


def _row_order(rows: pl.DataFrame, only: list[str] | None = None) -> list[str]:
    ran = set(rows["cfg.model.name"].drop_nulls().to_list()) if "cfg.model.name" in rows.columns else set()
    models = [m for m in MODELS if m in ran] or CI_MODELS
    out = []
    for m in (x for x in models if only is None or x in only):
        sub = rows.filter(pl.col("cfg.model.name") == m) if ran else rows
        for entry in ENTRIES.get(m, DEEP_BAYES_ENTRIES):
            lams = _grid(sub, entry, HE_LAMBDAS if entry == "he-pgd" else AWARE_LAMBDAS)
            out += [f"{m.upper()} · {_attack_label(entry, v)}" for v in lams]
    return out


def _table(df: pl.DataFrame, metrics: dict[str, str], tid: str, caption: str, only: list[str] | None = None) -> Table:
    rows = _row_order(df, only)
    long = melt(df, [(col, label) for label, col in metrics.items()], pl.col("__row"), pl.lit)
    return melted(tid, TABLES[tid], "model · attack", rows, list(metrics), caption).build(
        long.filter(pl.col("__row").is_in(rows)))


def cross_tables(rows: pl.DataFrame) -> list[Table]:
    """The AUC table and the attacker-success table (module docstring)."""
    df = _prepared(rows)
    auc = {"accuracy": "adv_accuracy"} | {f"AUC · {DETECTORS[d]}": columns.det(d, "auc") for d in AUC_DETECTORS}
    succ = {f"success · {DETECTORS[d]}": columns.det(d, "attacker_success_fpr5") for d in DETECTORS}
    cols = [columns.det(d, "attacker_success_fpr5") for d in (*DETECTORS, "tau")]
    present = [c for c in cols if c in df.columns]
    df = df.with_columns((pl.min_horizontal(present) if present else pl.lit(None, pl.Float64)).alias("__min"))
    succ["success · all watching (≤ min)"] = "__min"
    return [
        _table(df, auc, "cross-auc", "AUC of each detector's score, successful adversarials vs clean test inputs "
               "(0.5 = blind; energy: the paper-004 low-energy score, whose AUC < 0.5 means adversarials have HIGHER "
               "energy). accuracy = accuracy under attack."),
        _table(df, succ, "cross-success", "fraction of originally-correct test points whose adversarial is misclassified AND "
               "accepted, each detector at 5 % FPR on its clean fit data; the last column, the minimum over the detectors (τ "
               "included for the GMM-VAE), bounds the success against all of them together from above."),
        _table(df, {"AUC · τ": columns.det("tau", "auc"), "DR · τ": columns.det("tau", "tpr"), "FPR · τ": columns.det("tau", "fpr"),
                    "success · τ": columns.det("tau", "attacker_success"), "success · τ at 5 % FPR":
                    columns.det("tau", "attacker_success_fpr5")}, "cross-tau",
               "paper 003's τ rejection at the model's own thresholds (DR on successful adversarials, FPR on clean "
               "test inputs, attacker success = fooled AND not rejected), and at 5 % FPR on clean fit data.",
               only=["gmmvae"]),
    ]


def _at(model: str, attack: str, value: float) -> pl.Expr:
    return at(attack, value, **{"cfg.model.name": model})


def _cmp(rows: pl.DataFrame, name: str, claim: str, a: tuple[pl.Expr, str, str], b: tuple[pl.Expr, str, str],
         test: str) -> CheckResult:
    """``test``: "lower" (a < b - MARGIN) or "not-lower" (a >= b - MARGIN); a, b = (filter, metric, label)."""
    va, na = seed_mean(rows, a[0], a[1])
    vb, _ = seed_mean(rows, b[0], b[1])
    if va is None or vb is None:
        return CheckResult(name, claim, None, f"{a[2]} / {b[2]}: no rows")
    holds = va < vb - MARGIN if test == "lower" else va >= vb - MARGIN
    need = f"{'<' if test == 'lower' else '>='} {b[2]} - {MARGIN}"
    return CheckResult(name, claim, holds, f"{a[2]} {va:.3f} vs {b[2]} {vb:.3f} (n={na}); need {need}")


def cross_checks(rows: pl.DataFrame) -> list[CheckResult]:
    """Per model: HE-PGD evades the energy detector and stays as effective as PGD (paper 004's claims, carried over);
    its evasion does not transfer to marginal / logit / KL (the question of the table); and the two adaptive
    attackers are stopped by the other side's detectors."""
    if rows.is_empty() or "cfg.model.name" not in rows.columns:
        return [CheckResult("cross-not-run", "the cross-paper sweep ran", None, "no rows")]
    ran = set(rows["cfg.model.name"].drop_nulls().to_list())
    he = _grid(rows, "he-pgd", HE_LAMBDAS)
    lam = 1.2 if 1.2 in he else max(he)
    out: list[CheckResult] = []
    auc = columns.det("energy", "auc")
    for m in (x for x in MODELS if x in ran):
        tag, pgd, hep = f"[{m.upper()}]", _at(m, "he-pgd", 0.0), _at(m, "he-pgd", lam)
        out.append(_cmp(rows, f"he-pgd-evades-energy {tag}", f"paper 004 §4.3 on a generative classifier: HE-PGD "
                        f"(λ={lam:g}) lowers the AUC of the low-energy score below plain PGD's",
                        (hep, auc, f"HE-PGD λ={lam:g} AUC"), (pgd, auc, "PGD AUC"), "lower"))
        out.append(_cmp(rows, f"he-pgd-as-effective {tag}", f"paper 004 §5.2 on a generative classifier: HE-PGD "
                        f"(λ={lam:g}) fools the classifier about as often as plain PGD (success rate not lower)",
                        (hep, "success_rate", f"HE-PGD λ={lam:g} success"), (pgd, "success_rate", "PGD success"),
                        "not-lower"))
        own = "tau" if m == "gmmvae" else "logit"  # the detector the adaptive attacker of this file knows
        for d in ("marginal", "logit", "kl", *(("tau",) if own == "tau" else ())):
            out.append(_cmp(rows, f"energy-evasion-not-transferred-{d} {tag}", f"cross-paper: HE-PGD (λ={lam:g}) does "
                            f"not evade the {DETECTORS.get(d, 'τ')} detector (its AUC not lower than under plain PGD; "
                            f"for a deep-Bayes model E = -log p(x), so raising E is what the marginal detector flags)",
                            (hep, columns.det(d, "auc"), f"HE-PGD λ={lam:g} AUC"), (pgd, columns.det(d, "auc"), "PGD AUC"),
                            "not-lower"))
        shown = "τ" if own == "tau" else "logit"
        top_l = max(_grid(rows.filter(pl.col("cfg.model.name") == m), f"{own}-aware", AWARE_LAMBDAS))
        la = _at(m, f"{own}-aware", top_l)
        out.append(_cmp(rows, f"{own}-aware-stopped-by-energy {tag}", f"issue 19: an attacker aware of the {shown} "
                        f"detector (λ={top_l:g}) gets through less often when the energy detector (auto "
                        f"direction) watches instead (success at 5 % FPR)",
                        (la, columns.det("energy-auto", "attacker_success_fpr5"), "vs energy (auto)"),
                        (la, columns.det(own, "attacker_success_fpr5"), f"vs {shown}"), "lower"))
        top_e = max(_grid(rows, "energy-aware", AWARE_LAMBDAS))
        ea = _at(m, "energy-aware", top_e)
        out.append(_cmp(rows, f"energy-aware-stopped-by-marginal {tag}", f"issue 19: an attacker aware of the "
                        f"energy detector (λ={top_e:g}) gets through less often when paper 001's marginal detector "
                        f"watches instead (success at 5 % FPR)",
                        (ea, columns.det("marginal", "attacker_success_fpr5"), "vs marginal"),
                        (ea, columns.det("energy", "attacker_success_fpr5"), "vs energy"), "lower"))
    return out


def build_cross(ctx: PaperContext) -> list[Section]:
    """The cross-paper section (three tables, the named checks) for p004's report."""
    parts = [r for r in (ctx.rows(CROSS), ctx.rows(CROSS_GMMVAE)) if not r.is_empty()]
    rows = pl.concat(parts, how="diagonal_relaxed") if parts else ctx.rows(CROSS)
    return [Section("Cross-paper: HE-PGD and the energy detector on the generative classifiers of papers 001 and 003",
                    text="What no paper ran (experiments/p004_cross.yaml, p004_cross_gmmvae.yaml): paper 004's energy "
                         "detector and HE-PGD on deep-Bayes classifiers, whose energy is -log p(x), and on the "
                         "GMM-VAE; every attack scored by every applicable detector, plus attacks aware of the logit "
                         "detector (GMM-VAE: of its τ rejection) and of the fitted energy threshold (issue 19).",
                    tables=cross_tables(rows), checks=cross_checks(rows))]
