"""The generic report of any sweep, from its Parquet rows only: pivot tables, figures, failures and provenance.

``robustsweep report SWEEP`` writes, under ``<out>/<sweep>/``:

- per attack, one pivot table per metric (``adv_accuracy`` with a ``clean`` column, ``success_rate``, and each
  detector's ``tpr`` when the sweep has detectors): config rows × grid-value columns, mean ± std over seeds
  (:func:`robustsweep.report.tables.pivot_table`), as ``tables/<attack>-<metric>.md|csv|tex``;
- ``figures/accuracy_<attack>.png`` (accuracy vs grid value with a ±std band per config) and, when the rows carry
  ROC points, ``figures/roc_<detector>.png`` (each attack at its largest grid value, seeds averaged);
- ``report.md`` and a self-contained ``report.html`` (:mod:`robustsweep.report.html`) with the failed trials and
  their errors, and provenance: package versions, git revision(s) and the exact trial configs (also
  ``configs.json``, every distinct ``config_json`` verbatim).

The paper's own layout (its tables and figures, paper vs ours) is a separate report over all of a paper's
experiments: :mod:`robustsweep.report.paper`, registered per paper in :mod:`robustsweep.report.papers`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from robustsweep.report.aggregate import CLEAN, CONFIG, config_label, label_columns
from robustsweep.report.figures import line_with_band, roc_curves
from robustsweep.report.html import Section, write_pages
from robustsweep.report.robustness import evaluation_sections
from robustsweep.report.select import OK, ok_rows
from robustsweep.report.tables import Table, join_columns, pivot_table, write_table_files
from robustsweep.store import columns

FORMATS = ("md", "csv", "tex", "html")
Log = Callable[[str], None]

def paper_id(paper: str | None) -> str | None:
    """The id at the front of a spec's ``paper:`` field: ``"001_c207…txt (Fig. 3/4)"`` -> ``"001"``."""
    m = re.match(r"\s*([A-Za-z0-9]+)", paper or "")
    return m.group(1) if m else None


# ---------------------------------------------------------------------------------------------------- tables
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _has(df: pl.DataFrame, col: str) -> bool:
    return col in df.columns and df[col].null_count() < df.height


def config_order(rows: pl.DataFrame) -> list[str]:
    """The configs' labels in sweep order (sorted by the label columns' values, nulls last)."""
    keys = label_columns(rows)
    if not keys:
        return list(dict.fromkeys(rows[CONFIG].to_list()))
    return list(dict.fromkeys(rows.select([*keys, CONFIG]).unique().sort(keys, nulls_last=True)[CONFIG].to_list()))


def attack_metrics(ok: pl.DataFrame) -> list[str]:
    """What an attack's tables show: adversarial accuracy, success rate, each detector's TPR (when measured)."""
    dets = sorted(c for c in ok.columns if (columns.split_det(c) or ("", ""))[1] == "tpr")
    return [m for m in ("adv_accuracy", "success_rate", *dets) if _has(ok, m)]


def metric_title(metric: str, attack: str) -> str:
    """``accuracy under pgd`` / ``pgd success rate`` / ``logit detector: TPR on successful pgd adversarials``."""
    if metric == "adv_accuracy":
        return f"accuracy under {attack}"
    if metric == "success_rate":
        return f"{attack} success rate"
    if (parts := columns.split_det(metric)) and parts[1] == "tpr":
        return f"{parts[0]} detector: TPR on successful {attack} adversarials"
    return f"{metric} under {attack}"


def _pivot(rows: pl.DataFrame, attack: str, metric: str, labels: list[str], digits: int) -> Table:
    ok = rows.filter(OK & (pl.col("attack") == attack))
    params = ok.select("param", "value").drop_nulls("value").unique().sort("value").rows()
    one_param = len({p for p, _ in params}) <= 1
    col_key: str | pl.Expr = "value" if one_param else pl.format("{}={}", "param", "value")
    order = [v for _, v in params] if one_param else None
    col_labels = {v: f"{p or 'value'}={v:g}" for p, v in params} if one_param else None
    title = f"{metric_title(metric, attack)} (mean ± std over seeds)"
    kw: dict[str, Any] = dict(row_key=CONFIG, col_key=col_key, metric=metric, row_order=labels, col_order=order,
                              col_labels=col_labels, filter=pl.col("attack") == attack, digits=digits,
                              id=_slug(f"{attack}-{metric}"), title=title, row_header=CONFIG)
    try:
        t = pivot_table(rows, **kw)
    except ValueError as e:  # two rows of one seed in a cell (e.g. an attack listed twice): average, and say so
        t = pivot_table(rows, **kw, duplicates="mean", caption=f"Cells average several rows per seed: {e}")
    if metric != "adv_accuracy":
        return t
    clean = pivot_table(rows, row_key=CONFIG, col_key=pl.lit(CLEAN), metric="clean_accuracy", row_order=labels,
                        filter=pl.col("attack") == attack, digits=digits, duplicates="mean", row_header=CONFIG)
    return join_columns(clean, t) if clean.rows == t.rows else t


def attack_tables(rows: pl.DataFrame, attack: str, *, digits: int = 3) -> list[Table]:
    """One pivot :class:`Table` per metric of :func:`attack_metrics` for ``attack`` (rows need a ``config``)."""
    ok = rows.filter(OK & (pl.col("attack") == attack))
    labels = [c for c in config_order(rows) if c in set(ok[CONFIG].to_list())]
    return [_pivot(rows, attack, m, labels, digits) for m in attack_metrics(ok)]


def attacks(rows: pl.DataFrame) -> list[str]:
    names = sorted({a for a in ok_rows(rows)["attack"].to_list() if a is not None})
    return [a for a in names if a != "none"] or names


# --------------------------------------------------------------------------------------------------- figures
def accuracy_figure(rows: pl.DataFrame, attack: str, path: Path) -> Path | None:
    """Accuracy under ``attack`` vs its grid value, one line (±std band over seeds) per config."""
    sub = rows.filter(OK & (pl.col("attack") == attack) & pl.col("value").is_not_null())
    if sub.is_empty() or not _has(sub, "adv_accuracy"):
        return None
    param = sub["param"].drop_nulls().first() or "value"
    sub = sub.with_columns(pl.col(CONFIG).cast(pl.Enum(config_order(rows))))  # legend in config order, not A-Z
    return line_with_band(sub, "value", "adv_accuracy", CONFIG, path, title=f"{attack}: accuracy under attack",
                          xlabel=str(param), ylabel="accuracy under attack")


def roc_figures(rows: pl.DataFrame, out: Path) -> list[tuple[Path, str]]:
    """Per detector with stored ROC points: each config × attack at the attack's largest grid value."""
    ok = ok_rows(rows)
    grid = np.linspace(0.0, 1.0, 101)
    made = []
    for det in sorted(p[0] for c in ok.columns if (p := columns.split_det(c)) and p[1] == "roc_fpr"):
        fpr, tpr, auc = columns.det(det, "roc_fpr"), columns.det(det, "roc_tpr"), columns.det(det, "auc")
        if tpr not in ok.columns:
            continue
        d = ok.filter(pl.col(fpr).is_not_null() & pl.col(tpr).is_not_null() & pl.col("value").is_not_null())
        curves = []
        for attack in attacks(d) if not d.is_empty() else []:
            a = d.filter(pl.col("attack") == attack)
            top = a["value"].max()
            a = a.filter(pl.col("value") == top)
            param = a["param"].drop_nulls().first() or "value"
            for label in config_order(a):
                c = a.filter(pl.col(CONFIG) == label)
                ys = [np.interp(grid, np.asarray(f, float), np.asarray(t, float))
                      for f, t in c.select(fpr, tpr).iter_rows() if len(f) and len(f) == len(t)]
                if not ys:
                    continue
                aucs = c[auc].drop_nulls() if auc in c.columns else pl.Series([])
                curves.append((f"{label} · {attack} {param}={top:g}", grid, np.mean(ys, axis=0),
                               float(aucs.mean()) if aucs.len() else None))
        if curves:
            path = roc_curves(curves, out / f"roc_{_slug(det)}.png", title=f"{det} detector")
            made.append((path, f"ROC of the {det} detector (seeds averaged), each attack at its largest grid value"))
    return made


# ------------------------------------------------------------------------------------------------ provenance
def _distinct(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v is not None))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # not ours to judge: show it as stored
        return text


def configs(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """Every distinct trial config (``config_json``) verbatim, in trial order."""
    col = rows["config_json"] if "config_json" in rows.columns else pl.Series([], dtype=pl.String)
    return [_json(s) for s in _distinct(col.to_list())]


def provenance(rows: pl.DataFrame, sweep: str) -> dict[str, Any]:
    """Versions, git revision(s) and the configs behind the numbers (one entry per config, its seeds listed)."""
    versions = [_json(v) for v in _distinct(rows["versions"].to_list())] if "versions" in rows.columns else []
    grouped: dict[str, dict[str, Any]] = {}
    for cfg in configs(rows):
        if not isinstance(cfg, dict):  # an unparsable config_json: listed verbatim
            grouped.setdefault(str(cfg), {"config": cfg, "seeds": [], "trial_ids": []})
            continue
        key = cfg.get("config_hash") or json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "trial_id")},
                                                   sort_keys=True)
        entry = grouped.setdefault(key, {"config_hash": cfg.get("config_hash"), "seeds": [], "trial_ids": [],
                                         "config": {k: v for k, v in cfg.items()
                                                    if k not in ("seed", "trial_id", "config_hash")}})
        entry["seeds"].append(cfg.get("seed"))
        entry["trial_ids"].append(cfg.get("trial_id"))
    return {
        "sweep": sweep,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_rev": _distinct(rows["git_rev"].to_list()) if "git_rev" in rows.columns else [],
        "versions": versions[0] if len(versions) == 1 else versions,
        "configs": list(grouped.values()),
    }


def _failed(rows: pl.DataFrame) -> pl.DataFrame:
    keep = [c for c in ("trial_id", "seed", CONFIG, "error") if c in rows.columns]
    return rows.filter(pl.col("status") != "ok").select(keep).unique("trial_id", keep="first", maintain_order=True)


def _overview(rows: pl.DataFrame, sweep: str, paper: str | None) -> Section:
    n = rows["trial_id"].n_unique()
    failed = _failed(rows).height
    seeds = sorted(_distinct(rows["seed"].to_list())) if "seed" in rows.columns else []
    axes = [k.removeprefix("cfg.") for k in label_columns(rows)]
    grids = [f"{a} ({', '.join(_distinct(rows.filter(pl.col('attack') == a)['param'].to_list())) or 'no grid'})"
             for a in attacks(rows)]
    text = (f"Sweep **{sweep}**: {n - failed}/{n} trials ok, {failed} failed; seeds {', '.join(map(str, seeds))}; "
            f"{len(config_order(rows))} config(s), labelled by {', '.join(axes) or 'nothing (one config)'}; "
            f"attacks: {', '.join(grids) or 'none'}." + (f" Reproduces: {paper}." if paper else "") +
            "\n\nCells are mean ± std over seeds; (n=k) marks a cell fewer seeds produced, — one that none did. "
            "Failed trials are excluded from the numbers and listed at the end.")
    return Section("Overview", text=text)


def _failed_section(rows: pl.DataFrame) -> Section | None:
    f = _failed(rows)
    if f.is_empty():
        return None
    lines = []
    for r in f.iter_rows(named=True):
        err = (r.get("error") or "(no error recorded)").strip().splitlines()[0][:400]
        lines.append(f"- `{r['trial_id']}` {r.get(CONFIG, '')} seed {r.get('seed')}: {err}")
    return Section(f"Failed trials ({f.height})", text="Full errors and tracebacks: `logs/<trial_id>.log` in the "
                                                        "sweep folder.\n\n" + "\n".join(lines))


# ------------------------------------------------------------------------------------------------------ build
def build_report(rows: pl.DataFrame, out_dir: str | Path, *, sweep: str, formats: Sequence[str] = FORMATS,
                 paper: str | None = None, digits: int = 3, log: Log | None = None) -> list[Path]:
    """Write the generic report of one sweep's rows into ``out_dir``; returns every file written (see module doc)."""
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise ValueError(f"unknown report format(s) {bad}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def wrote(p: Path) -> Path:
        written.append(p)
        if log:
            log(f"  wrote {p}")
        return p

    rows = rows.with_columns(config_label(label_columns(rows)))
    sections = [_overview(rows, sweep, paper)]
    for attack in attacks(rows):
        tables = attack_tables(rows, attack, digits=digits)
        for t in tables:
            for p in write_table_files(t, out / "tables", formats):
                wrote(p)
        fig = accuracy_figure(rows, attack, out / "figures" / f"accuracy_{_slug(attack)}.png")
        figs = [(wrote(fig), f"{attack}: accuracy vs grid value, mean ± std over seeds per config")] if fig else []
        sections.append(Section(f"Attack: {attack}", tables=tables, figures=figs))
    evaluation, files, _ = evaluation_sections(rows, out / "tables", formats)
    sections += evaluation
    for p in files:
        wrote(p)
    rocs = roc_figures(rows, out / "figures")
    for p, _ in rocs:
        wrote(p)
    if rocs:
        sections.append(Section("Detection: ROC curves", figures=rocs))
    if (fs := _failed_section(rows)) is not None:
        sections.append(fs)
        if "csv" in formats:
            _failed(rows).write_csv(out / "failed.csv")
            wrote(out / "failed.csv")
    (out / "configs.json").write_text(json.dumps(configs(rows), indent=1, sort_keys=True), encoding="utf-8")
    wrote(out / "configs.json")
    prov = provenance(rows, sweep)
    title = f"Sweep {sweep}" + (f" ({paper})" if paper else "")
    for p in write_pages(out, title, sections, provenance=prov, formats=formats):
        wrote(p)
    return written
