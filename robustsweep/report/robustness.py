"""What every report adds beside its own layout (issue 38): robust accuracy with intervals and the worst case over
attacks, and the gradient-masking sanity checks -- for a user's sweep (``robustsweep report``) and every paper.

Robust accuracy (:func:`robust_accuracy_table`): per model config, clean accuracy and, per norm and budget, the
accuracy under each attack and under the worst case over all of them (``worst-case`` rows, built per example in the
trial: :mod:`robustsweep.core.steps.outcomes`), each cell the rate pooled over seeds with its 95 % Wilson interval
and its number of attacked points (:mod:`robustsweep.report.intervals`; † marks fewer than 30).

Sanity (:func:`sanity_checks`), per model config, each a :class:`~robustsweep.report.checks.CheckResult` holding
or not with its numbers (Carlini et al. 2019 §5; Athalye et al. 2018; Croce & Hein 2020):

1. accuracy does not rise as ε grows (beyond the intervals);
2. an unbounded attack (PGD at ``eval.sanity.eps``, 1 = the whole [0, 1] box, no random start) reaches chance or
   below;
3. doubling the steps of PGD does not raise accuracy;
4. transfer and score-based attacks do not beat the white-box attacks of the same budget;
5. a margin-loss attack (APGD-DLR, APGD-T, AutoAttack's targeted components) and a cross-entropy one of the same
   budget agree within their intervals (a large gap marks a saturated softmax hiding the gradient);
6. input gradients are finite and not all zero;
7. a stochastic model's outputs vary between draws and its white-box attacks used EOT.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from robustsweep.report.aggregate import CLEAN, CONFIG
from robustsweep.report.checks import CheckResult
from robustsweep.report.html import Section
from robustsweep.report.intervals import THIN, fmt_interval, pooled, wilson
from robustsweep.report.select import OK
from robustsweep.report.tables import Table
from robustsweep.store import columns as col

WORST = "worst-case"
NORM = col.metric("norm")
THREAT = col.metric("threat")
_NORM_LABEL = {"linf": "L∞", "l2": "L2"}


def _attack_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """ok rows of an ε-ball attack or a worst case, with a norm (rows written before ``m.norm`` existed have none)."""
    if NORM not in rows.columns or "eps" not in rows.columns:
        return rows.clear()
    kind = pl.col(col.KIND) if col.KIND in rows.columns else pl.lit(col.ATTACK)
    return rows.filter(OK & kind.is_in([col.ATTACK, col.WORST_CASE]) & pl.col(NORM).is_not_null()
                       & pl.col("eps").is_not_null())


def _column(norm: str, eps: float) -> str:
    return f"{_NORM_LABEL.get(norm, norm)} ε={eps:g}"


def robust_accuracy_table(rows: pl.DataFrame, *, id: str = "robust-accuracy", digits: int = 3) -> Table | None:  # noqa: A002
    """One row per (model config, attack) -- the worst case last -- and one column per (norm, ε), after a clean
    column; cells ``rate [lo, hi] n=points`` (module docstring). None when no row has an ε-ball attack."""
    att = _attack_rows(rows)
    if att.is_empty():
        return None
    cells = pooled(att, [CONFIG, "attack", NORM, "eps"], "adv_accuracy")
    clean = pooled(rows.filter(OK).unique(["trial_id"], keep="first"), [CONFIG], "clean_accuracy")
    budgets = sorted({(n, e) for n, e in att.select(NORM, "eps").unique().iter_rows()}, key=lambda b: (b[0], b[1]))
    configs = list(dict.fromkeys(att[CONFIG].to_list()))
    grid: dict[str, list[str]] = {CONFIG: [], "attack": [], CLEAN: [], **{_column(*b): [] for b in budgets}}
    numeric: list[dict] = []
    by_cell = {(r[CONFIG], r["attack"], r[NORM], r["eps"]): r for r in cells.iter_rows(named=True)}
    by_clean = {r[CONFIG]: r for r in clean.iter_rows(named=True)}
    for c in configs:
        names = sorted({a for a in att.filter(pl.col(CONFIG) == c)["attack"].to_list()}, key=lambda a: (a == WORST, a))
        for a in names:
            grid[CONFIG].append(c)
            grid["attack"].append("**worst case (any attack)**" if a == WORST else a)
            cr = by_clean.get(c)
            grid[CLEAN].append(fmt_interval(*(cr[k] for k in ("rate", "lo", "hi", "points")), digits=digits)
                               if cr else "—")
            for b in budgets:
                r = by_cell.get((c, a, *b))
                grid[_column(*b)].append(fmt_interval(r["rate"], r["lo"], r["hi"], r["points"], digits) if r else "")
                if r:
                    numeric.append({"row": f"{c} / {a}", "column": _column(*b), "mean": r["rate"], "std": None,
                                    "ci_lo": None, "ci_hi": None, "n": None, "points": r["points"],
                                    "bi_lo": r["lo"], "bi_hi": r["hi"]})
    frame = pl.DataFrame(grid, schema={k: pl.String for k in grid})
    labels = [f"{c} / {a}" for c, a in zip(grid[CONFIG], grid["attack"])]
    thin = sum(1 for r in numeric if r["points"] < THIN)
    caption = ("Accuracy under each attack and under the worst case over all attacks of the same norm and budget "
               "(an example counts as robust only if every attack left it correctly classified), pooled over seeds; "
               "[lo, hi] is the 95 % Wilson interval over the attacked points, n their number"
               + (f"; † marks {thin} cell(s) on fewer than {THIN} points" if thin else "") + ".")
    return Table(id=id, title="Robust accuracy: every attack and the worst case, with 95 % intervals", frame=frame,
                 numeric=pl.DataFrame(numeric, schema={"row": pl.String, "column": pl.String, "mean": pl.Float64,
                                                       "std": pl.Float64, "ci_lo": pl.Float64, "ci_hi": pl.Float64,
                                                       "n": pl.Int64, "points": pl.Float64, "bi_lo": pl.Float64,
                                                       "bi_hi": pl.Float64}),
                 rows=labels, columns=[CLEAN, *(_column(*b) for b in budgets)], caption=caption)


# ------------------------------------------------------------------------------------------------------ sanity
def _fmt(r: dict) -> str:
    return fmt_interval(r["rate"], r["lo"], r["hi"], r["points"])


def _rises(att: pl.DataFrame) -> CheckResult:
    claim = "accuracy does not rise as ε grows (beyond the 95 % intervals)"
    cells = pooled(att.filter(pl.col(col.KIND) == col.ATTACK) if col.KIND in att.columns else att,
                   ["attack", NORM, "eps"], "adv_accuracy").sort("eps")
    if cells.is_empty() or cells.group_by("attack", NORM).len()["len"].max() < 2:
        return CheckResult("monotone", claim, None, "no attack with two or more ε values")
    bad = []
    for (a, _), g in cells.group_by(["attack", NORM], maintain_order=True):
        recs = g.sort("eps").to_dicts()
        for i, lo in enumerate(recs):
            for hi in recs[i + 1:]:
                if hi["lo"] is not None and lo["hi"] is not None and hi["lo"] > lo["hi"]:
                    bad.append(f"{a}: ε={lo['eps']:g} {_fmt(lo)} < ε={hi['eps']:g} {_fmt(hi)}")
    n_att = cells["attack"].n_unique()
    return CheckResult("monotone", claim, not bad,
                       "; ".join(bad[:3]) if bad else f"{n_att} attack(s) over {cells['eps'].n_unique()} ε values: "
                                                      "no significant rise")


def _binom(rows: pl.DataFrame, rate: str, n: str) -> dict | None:
    one = rows.filter(OK).unique(["trial_id"], keep="first")
    if rate not in one.columns or n not in one.columns:
        return None
    one = one.filter(pl.col(rate).is_not_null())
    if one.is_empty():
        return None
    k = float((one[rate] * one[n]).round(0).sum())
    pts = float(one[n].sum())
    lo, hi = wilson(k, pts)
    return {"rate": k / pts, "lo": lo, "hi": hi, "points": pts}


def _unbounded(rows: pl.DataFrame) -> CheckResult:
    eps = rows[col.metric("sanity_eps")].drop_nulls() if col.metric("sanity_eps") in rows.columns else pl.Series([])
    claim = "an unbounded attack (PGD, no random start) brings accuracy to chance or below"
    r = _binom(rows, col.metric("sanity_acc_large_eps"), col.metric("sanity_n"))
    if r is None or not eps.len():
        return CheckResult("unbounded", claim, None, "not measured (eval.sanity off, no white-box attack, or inputs "
                                                     "outside [0, 1])")
    chance = float(rows[col.metric("sanity_chance")].drop_nulls()[0])
    claim = f"PGD at ε = {eps[0]:g} (no random start) brings accuracy to chance ({chance:.3f}) or below"
    return CheckResult("unbounded", claim, r["lo"] <= chance, f"accuracy {_fmt(r)}")


def _doubling(rows: pl.DataFrame) -> CheckResult:
    claim = "doubling PGD's steps does not raise accuracy (beyond the intervals)"
    one = _binom(rows, col.metric("sanity_acc_steps"), col.metric("sanity_n"))
    two = _binom(rows, col.metric("sanity_acc_2steps"), col.metric("sanity_n"))
    if one is None or two is None:
        return CheckResult("steps", claim, None, "not measured (no L∞ attack, or eval.sanity off)")
    s = rows[col.metric("sanity_steps")].drop_nulls()[0]
    e = rows[col.metric("sanity_steps_eps")].drop_nulls()[0]
    return CheckResult("steps", claim, not (two["lo"] > one["hi"]),
                       f"ε={e:g}: {s:.0f} steps {_fmt(one)}, {2 * s:.0f} steps {_fmt(two)}")


def _by_budget(att: pl.DataFrame, threat: Iterable[str]) -> pl.DataFrame:
    sub = att.filter(pl.col(col.KIND) == col.ATTACK) if col.KIND in att.columns else att
    if THREAT not in sub.columns:
        return pl.DataFrame()
    return pooled(sub.filter(pl.col(THREAT).is_in(list(threat))), ["attack", NORM, "eps"], "adv_accuracy")


def _transfer(att: pl.DataFrame) -> CheckResult:
    claim = "transfer and score-based attacks do not beat the white-box attacks of the same budget"
    wb, other = _by_budget(att, ["white-box"]), _by_budget(att, ["transfer", "score"])
    if wb.is_empty() or other.is_empty():
        return CheckResult("transfer", claim, None, "no transfer or score-based attack beside a white-box one")
    bad, seen = [], 0
    for r in other.iter_rows(named=True):
        same = wb.filter((pl.col(NORM) == r[NORM]) & (pl.col("eps") == r["eps"]) & (pl.col("eps") > 0))
        if same.is_empty():
            continue
        seen += 1
        best = same.sort("rate").row(0, named=True)
        if r["hi"] is not None and best["lo"] is not None and r["hi"] < best["lo"]:
            bad.append(f"{r['attack']} {_fmt(r)} < {best['attack']} {_fmt(best)} at ε={r['eps']:g}")
    if not seen:
        return CheckResult("transfer", claim, None, "no shared budget between them")
    return CheckResult("transfer", claim, not bad, "; ".join(bad[:3]) if bad else f"{seen} budget(s) compared")


def _is_margin(attack: str, params: str | None) -> bool:
    p = json.loads(params) if params else {}
    return p.get("loss") == "dlr" or "apgd-t" in attack or "fab" in attack or attack.endswith("/apgd-dlr")


def _margin(att: pl.DataFrame) -> CheckResult:
    claim = "a margin-loss attack (DLR) and a cross-entropy one of the same budget agree within their intervals"
    sub = att.filter(pl.col(col.KIND) == col.ATTACK) if col.KIND in att.columns else att
    if sub.is_empty() or THREAT not in sub.columns:
        return CheckResult("margin", claim, None, "no ε-ball attacks")
    sub = sub.filter(pl.col(THREAT) == "white-box").with_columns(
        pl.struct("attack", "attack_params").map_elements(lambda s: _is_margin(s["attack"], s["attack_params"]),
                                                          return_dtype=pl.Boolean).alias("__margin"))
    cells = pooled(sub, ["__margin", "attack", NORM, "eps"], "adv_accuracy").filter(pl.col("eps") > 0)
    margin, ce = cells.filter(pl.col("__margin")), cells.filter(~pl.col("__margin"))
    pairs = margin.join(ce, on=[NORM, "eps"], suffix="_ce")
    if pairs.is_empty():
        return CheckResult("margin", claim, None, "no margin-loss attack beside a cross-entropy one at the same "
                                                  "budget (add apgd with loss: dlr, or autoattack)")
    bad = [f"ε={r['eps']:g}: {r['attack']} {_fmt(r)} vs {r['attack_ce']} "
           f"{fmt_interval(r['rate_ce'], r['lo_ce'], r['hi_ce'], r['points_ce'])}"
           for r in pairs.iter_rows(named=True) if r["lo"] > r["hi_ce"] or r["lo_ce"] > r["hi"]]
    return CheckResult("margin", claim, not bad, "; ".join(bad[:3]) if bad else f"{pairs.height} pair(s) agree")


def _gradients(rows: pl.DataFrame) -> CheckResult:
    claim = "input gradients are finite and not all zero"
    f, z = col.metric("sanity_grad_finite"), col.metric("sanity_grad_nonzero")
    if f not in rows.columns or rows[f].drop_nulls().is_empty():
        return CheckResult("gradients", claim, None, "not measured (eval.sanity off or no white-box attack)")
    one = rows.filter(OK).unique(["trial_id"], keep="first")
    fin, nz = float(one[f].min()), float(one[z].min())
    return CheckResult("gradients", claim, fin == 1.0 and nz >= 0.9,
                       f"finite on {fin:.0%} of the points, not all zero on {nz:.0%} (worst trial)")


def _stochastic(rows: pl.DataFrame, att: pl.DataFrame) -> CheckResult | None:
    s = col.metric("stochastic")
    if s not in rows.columns or not rows[s].drop_nulls().any():
        return None
    claim = "the stochastic model's outputs vary between draws and its white-box attacks used EOT"
    flip = rows[col.metric("flip_rate")].drop_nulls() if col.metric("flip_rate") in rows.columns else pl.Series([])
    wb = att.filter((pl.col(col.KIND) == col.ATTACK) & (pl.col(THREAT) == "white-box")) \
        if THREAT in att.columns and col.KIND in att.columns else att.clear()
    eot = col.attack_param("eot")
    one = wb.filter(pl.col(eot).fill_null(1) <= 1)["attack"].unique().sort().to_list() if eot in wb.columns \
        else wb["attack"].unique().sort().to_list()
    vary = f"clean predictions change between draws on {flip.mean():.1%} of the points" if flip.len() \
        else "draws not measured"
    used = f"white-box attacks with eot = 1: {', '.join(one)}" if one else "every white-box attack used eot > 1"
    return CheckResult("eot", claim, not one if flip.len() else None, f"{vary}; {used}")


def sanity_checks(rows: pl.DataFrame) -> list[CheckResult]:
    """The checks of the module docstring on one model config's ok rows."""
    att = _attack_rows(rows)
    out = [_rises(att) if not att.is_empty() else CheckResult("monotone", "accuracy does not rise as ε grows", None,
                                                              "no ε-ball attack"),
           _unbounded(rows), _doubling(rows), _transfer(att), _margin(att), _gradients(rows)]
    if (st := _stochastic(rows, att)) is not None:
        out.append(st)
    return out


def sanity_table(rows: pl.DataFrame, *, id: str = "sanity") -> tuple[Table, list[CheckResult]] | None:  # noqa: A002
    """Every config's checks as one table (config × check, "holds" / "DOES NOT HOLD" / "—" with the numbers),
    and the checks themselves (named ``<config>: <check>``). None without ok rows."""
    ok = rows.filter(OK)
    if ok.is_empty() or CONFIG not in ok.columns:
        return None
    recs, checks = [], []
    for c in list(dict.fromkeys(ok[CONFIG].to_list())):
        for r in sanity_checks(ok.filter(pl.col(CONFIG) == c)):
            status = {True: "holds", False: "**DOES NOT HOLD**", None: "not evaluated"}[r.holds]
            recs.append({CONFIG: c, "check": r.claim, "status": status, "numbers": r.observed})
            checks.append(CheckResult(f"{c}: {r.name}", f"{c}: {r.claim}", r.holds, r.observed))
    frame = pl.DataFrame(recs, schema={CONFIG: pl.String, "check": pl.String, "status": pl.String, "numbers": pl.String})
    n_bad = sum(r.holds is False for r in checks)
    caption = (f"{n_bad} check(s) do not hold: read the robust accuracy of those configs as an upper bound"
               if n_bad else "No sign of gradient masking among the checks that could be evaluated.")
    numeric = pl.DataFrame({"row": [f"{r[CONFIG]} / {r['check']}" for r in recs], "column": ["holds"] * len(recs),
                            "mean": [None if r.holds is None else float(r.holds) for r in checks],
                            "n": [None] * len(recs)},
                           schema={"row": pl.String, "column": pl.String, "mean": pl.Float64, "n": pl.Int64})
    return (Table(id=id, title="Sanity checks (gradient masking)", frame=frame, numeric=numeric,
                  rows=[r[CONFIG] for r in recs], columns=["check", "status", "numbers"], caption=caption), checks)



def evaluation_sections(rows: pl.DataFrame, out_tables: Path | None = None, formats: Iterable[str] = (),
                        *, prefix: str = "") -> tuple[list[Section], list[Path], list[CheckResult]]:
    """The robust-accuracy and sanity sections of a report over ``rows`` (which carry a ``config`` label column),
    the table files written under ``out_tables`` (ids prefixed by ``prefix``: a paper writes one pair per
    experiment), and the sanity checks themselves."""
    from robustsweep.report.tables import write_table_files

    sections, written, checks = [], [], []
    if (t := robust_accuracy_table(rows, id=f"{prefix}robust-accuracy")) is not None:
        sections.append(Section(f"Robust accuracy{': ' + prefix.rstrip('-') if prefix else ''} "
                                "(every attack and the worst case, 95 % intervals)", text=t.caption, tables=[t]))
    if (st := sanity_table(rows, id=f"{prefix}sanity")) is not None:
        table, checks = st
        sections.append(Section(f"Sanity checks{': ' + prefix.rstrip('-') if prefix else ''} (gradient masking)",
                                text=SANITY_TEXT + " " + table.caption, tables=[table]))
    if out_tables is not None:
        for s in sections:
            for t in s.tables:
                written += write_table_files(t, out_tables, formats)
    return sections, written, checks


SANITY_TEXT = ("Checks for gradient masking (Carlini et al. 2019; Athalye et al. 2018), per model config, from "
               "the rows and the trial's own probes (eval.sanity): a check that does not hold means the attacks may "
               "have under-estimated the attacker, so the model's robust accuracy is an upper bound.")
