"""Named qualitative claims of a paper ("GBZ is more robust than DFX under PGD"), checked against our rows.

Why separate from the number-by-number comparison: at laptop/CI scale absolute numbers move, but a paper's
*qualitative* conclusions (an ordering, a trend) should survive, and those are what a reproduction is judged on.
A verdict is never just a boolean: :class:`CheckResult.observed` always carries the numbers behind it, and
``holds=None`` means "could not be evaluated" (the rows it needs are missing or failed), which a report must
show differently from "does not hold".

All helpers aggregate like the tables do: failed trials dropped, each seed averaged first, then the mean over
seeds (``stats.per_seed``), so a check and the table cell it talks about show the same number.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from robustsweep.report.stats import per_seed, summarize

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one claim; ``holds`` is ``None`` when it could not be evaluated."""

    name: str
    claim: str
    holds: bool | None
    observed: str

    @property
    def status(self) -> str:
        return {True: "holds", False: "does not hold", None: "not evaluated"}[self.holds]


@dataclass(frozen=True)
class Check:
    """A paper's claim plus the function that evaluates it on a sweep's rows."""

    name: str
    claim: str
    paper: str
    fn: Callable[[Any], CheckResult]  # of the rows (a frame, or what the paper's claims need)

    def run(self, rows: Any) -> CheckResult:
        """Evaluate; the result carries this check's name/claim, and an exception becomes ``holds=None``."""
        try:
            res = self.fn(rows)
        except (KeyError, ValueError, pl.exceptions.PolarsError) as e:  # e.g. a column the sweep never wrote
            res = CheckResult(self.name, self.claim, None, f"could not evaluate: {type(e).__name__}: {e}")
        return replace(res, name=self.name, claim=self.claim)


def run_checks(checks: Iterable[Check], rows: pl.DataFrame) -> list[CheckResult]:
    return [c.run(rows) for c in checks]


Claim = tuple[str, str, Callable[[Any], CheckResult]]


def run_claims(claims: Iterable[Claim], rows: Any = None, paper: str = "") -> list[CheckResult]:
    """Claims declared as (name, text, check), each run through :meth:`Check.run` on ``rows`` (a check that needs
    several frames closes over them and ignores its argument)."""
    return [Check(name, text, paper, fn).run(rows) for name, text, fn in claims]


def seed_mean(rows: pl.DataFrame, filter: pl.Expr | None, metric: str) -> tuple[float | None, int]:  # noqa: A002
    """Mean over seeds of ``metric`` on the ok rows selected by ``filter``, and the number of seeds."""
    if metric not in rows.columns:  # a metric this sweep never wrote (or an experiment not run): no evidence
        return None, 0
    df = rows if filter is None else rows.filter(filter)
    vals = per_seed(df, [], metric)[metric]
    return (float(vals.mean()), vals.len()) if vals.len() else (None, 0)  # type: ignore[arg-type]


def _num(v: float, digits: int) -> str:
    return f"{v:.{digits}f}"


def compare_means(
    rows: pl.DataFrame,
    filter_a: pl.Expr,
    filter_b: pl.Expr,
    metric: str,
    op: str = ">",
    *,
    label_a: str = "A",
    label_b: str = "B",
    at: str = "",
    margin: float = 0.0,
    name: str = "",
    claim: str = "",
    digits: int = 3,
) -> CheckResult:
    """Does mean(metric | A) ``op`` mean(metric | B) hold, by at least ``margin``?

    ``>``/``>=`` test ``a op b + margin``, ``<``/``<=`` test ``a op b - margin``. ``observed`` reads e.g.
    "GBZ 0.620 (n=3) vs DFX 0.410 (n=3) at PGD eps=0.1".
    """
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    a, na = seed_mean(rows, filter_a, metric)
    b, nb = seed_mean(rows, filter_b, metric)
    where = f" at {at}" if at else ""
    sa = f"{label_a} {_num(a, digits)} (n={na})" if a is not None else f"{label_a} no rows"
    sb = f"{label_b} {_num(b, digits)} (n={nb})" if b is not None else f"{label_b} no rows"
    observed = f"{metric}: {sa} vs {sb}{where}"
    if a is None or b is None:
        return CheckResult(name, claim, None, observed)
    bound = b + margin if op in (">", ">=") else b - margin
    return CheckResult(name, claim, bool(_OPS[op](a, bound)), observed)


def compare_to_value(
    rows: pl.DataFrame,
    filter: pl.Expr | None,  # noqa: A002
    metric: str,
    op: str,
    value: float,
    *,
    label: str = "",
    name: str = "",
    claim: str = "",
    digits: int = 3,
) -> CheckResult:
    """Does mean(metric | filter) ``op`` ``value`` hold (e.g. clean accuracy >= 0.9)?"""
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    m, n = seed_mean(rows, filter, metric)
    who = f"{label} " if label else ""
    if m is None:
        return CheckResult(name, claim, None, f"{who}{metric}: no rows")
    return CheckResult(name, claim, bool(_OPS[op](m, value)),
                       f"{who}{metric} {_num(m, digits)} (n={n}) {op} {value:g}")


def monotone(
    rows: pl.DataFrame,
    x: str,
    metric: str,
    *,
    filter: pl.Expr | None = None,  # noqa: A002
    direction: str = "decreasing",
    tolerance: float = 0.0,
    label: str = "",
    name: str = "",
    claim: str = "",
    digits: int = 3,
) -> CheckResult:
    """Is the seed-mean of ``metric`` monotone in ``x`` (steps against the trend up to ``tolerance`` allowed)?

    Needs at least two x values; ``observed`` lists the curve, e.g. "eps 0→0.1→0.3: 0.950→0.610→0.220".
    """
    if direction not in ("decreasing", "increasing"):
        raise ValueError("direction must be 'decreasing' or 'increasing'")
    who = f"{label} " if label else ""
    if metric not in rows.columns:
        return CheckResult(name, claim, None, f"{who}{metric}: no such column in the rows")
    df = rows if filter is None else rows.filter(filter)
    curve = summarize(df, [x], metric).drop_nulls(x).sort(x)
    if curve.height < 2:
        return CheckResult(name, claim, None, f"{who}{metric} vs {x}: {curve.height} point(s), need 2")
    xs, ms = curve[x].to_list(), curve["mean"].to_list()
    steps = [b - a for a, b in zip(ms, ms[1:])]
    ok = all(s <= tolerance for s in steps) if direction == "decreasing" else all(s >= -tolerance for s in steps)
    observed = (f"{who}{metric} vs {x} " + "→".join(f"{v:g}" for v in xs) + ": "
                + "→".join(_num(m, digits) for m in ms))
    return CheckResult(name, claim, ok, observed)


def curve(rows: pl.DataFrame, filter: pl.Expr, metric: str, x: str = "value") -> list[tuple[float, float]]:  # noqa: A002
    """(x, seed mean of ``metric``) of the rows ``filter`` selects, sorted by x; x values without a mean left out."""
    sub = rows.filter(filter)
    pts = [(v, seed_mean(sub, pl.col(x) == v, metric)[0]) for v in sorted(sub[x].drop_nulls().unique().to_list())]
    return [(v, m) for v, m in pts if m is not None]


def show_curve(c: list[tuple[float, float]]) -> str:
    return "→".join(f"{m:.3f}" for _, m in c) + " at " + "→".join(f"{x:g}" for x, _ in c)


def point(rows: pl.DataFrame, filter: pl.Expr, metric: str, test: Callable[[float], bool], what: str,  # noqa: A002
          need: str) -> CheckResult:
    """Does the seed mean of ``metric`` pass ``test`` (``need`` says what it needs)? Name and claim: from the caller's
    :class:`Check`."""
    m, n = seed_mean(rows, filter, metric)
    if m is None:
        return CheckResult("", "", None, f"{what}: no rows")
    return CheckResult("", "", test(m), f"{what} {metric} {m:.3f} (n={n}); need {need}")


def drops(rows: pl.DataFrame, filter: pl.Expr, metric: str, what: str, slack: float = 0.02,  # noqa: A002
          drop: float = 0.05) -> CheckResult:
    """Is the curve of ``metric`` over the grid non-increasing (up to ``slack``) AND lower by more than ``drop`` at its
    last point than at its first?"""
    c = curve(rows, filter, metric)
    if len(c) < 2:
        return CheckResult("", "", None, f"{what}: {len(c)} point(s), need 2")
    ok = all(b - a <= slack for (_, a), (_, b) in zip(c, c[1:])) and c[0][1] - c[-1][1] > drop
    return CheckResult("", "", ok, f"{what} {metric}: {show_curve(c)}")


def flat(rows: pl.DataFrame, filter: pl.Expr, metric: str, what: str, spread: float = 0.1) -> CheckResult:  # noqa: A002
    """Does the curve of ``metric`` over the grid stay within ``spread`` (max - min)?"""
    c = curve(rows, filter, metric)
    if len(c) < 2:
        return CheckResult("", "", None, f"{what}: {len(c)} point(s), need 2")
    vals = [m for _, m in c]
    return CheckResult("", "", max(vals) - min(vals) <= spread,
                       f"{what} {metric}: {show_curve(c)}; spread {max(vals) - min(vals):.3f} (need <= {spread})")


def beats_all(rows: pl.DataFrame, metric: str, who: str, others: Iterable[str], at: Callable[[str], pl.Expr], where: str,
              *, name: str = "", claim: str = "", lowest: bool = False) -> CheckResult:
    """Does ``who`` have a larger (``lowest``: smaller) seed-mean ``metric`` than every one of ``others``, the rows of
    each selected by ``at(<who or other>)``? Not evaluated when any of them has no rows."""
    others = list(others)
    mine, n = seed_mean(rows, at(who), metric)
    theirs = {o: seed_mean(rows, at(o), metric)[0] for o in others}
    got = {o: v for o, v in theirs.items() if v is not None}
    observed = (f"{metric} at {where}: {who} " + ("no rows" if mine is None else f"{mine:.3f} (n={n})")
                + " vs " + ", ".join(f"{o} {v:.3f}" if v is not None else f"{o} no rows" for o, v in theirs.items()))
    if mine is None or len(got) < len(others):
        return CheckResult(name, claim, None, observed)
    return CheckResult(name, claim, all((mine < v) if lowest else (mine > v) for v in got.values()), observed)


def all_of(name: str, claim: str, parts: Iterable[CheckResult]) -> CheckResult:
    """One claim made of several comparisons: holds when all hold; not evaluated when any could not be."""
    parts = list(parts)
    observed = "; ".join(p.observed for p in parts)
    if any(p.holds is None for p in parts):
        return CheckResult(name, claim, None, observed)
    return CheckResult(name, claim, all(p.holds for p in parts), observed)
