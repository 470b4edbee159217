"""Reference numbers from the papers, one YAML file per paper: ``experiments/reference/<paper>.yaml``.

Why a file and not constants in code: the numbers are *read off the paper* (often off a plot), so each one needs
its provenance and an honest tolerance next to it, and a reviewer should be able to check them without reading
Python. Format::

    paper: "001"                           # paper id, quoted so YAML keeps the zeros
    source: 001_c207276a6492ab58.txt       # the paper text the numbers come from (optional)
    defaults: {scale: paper, tolerance: 0.05}   # optional, applied to entries that omit the key
    values:
      - {table: fig3, row: GBZ, column: "PGD eps=0.1", value: 0.95, scale: paper, tolerance: 0.05,
         note: "read off Fig. 3"}

Per entry: ``table`` is the id of a report :class:`~robustsweep.report.tables.Table` (or of a figure whose
numbers we tabulate), ``row``/``column`` are the labels *as the report prints them* (YAML numbers are turned
into strings: ``column: 0.1`` means ``"0.1"``), ``value`` is in *our* units (fractions, not percent: write
0.95 for "95 %"), ``tolerance`` is the absolute |ours − paper| accepted as a match (default 0.05), ``scale``
says which run the number applies to: ``paper`` (the full-size experiment), ``ci`` (the laptop/CI-size run,
whose numbers are expected to differ), ``mini`` or ``any``; ``note`` says where the number comes from. Unknown keys
are rejected so a typo ("tolerence") cannot silently fall back to the default.

``mini_tolerance`` (optional, also in ``defaults``): a ``paper`` entry with it is compared at ``mini`` scale too
(the paper's own MNIST architecture and settings on 5,000 real MNIST digits, ``config/scales.py``), with that wider
tolerance. Why a second tolerance on the same entry and not a copy of the number: the mini grid *is* the paper's
grid, so the number is the paper's; only how close 3,500 training images can come differs, and that allowance
must be written down before the run (issue 20), next to the number it loosens.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

REFERENCE_DIR = Path("experiments") / "reference"
DEFAULT_TOLERANCE = 0.05
SCALES = ("paper", "mini", "ci", "any")
_REQUIRED = ("table", "row", "column", "value")
_OPTIONAL = ("scale", "tolerance", "mini_tolerance", "note")


@dataclass(frozen=True)
class Reference:
    """One number from a paper, keyed by the report's (table, row, column) labels."""

    table: str
    row: str
    column: str
    value: float
    tolerance: float = DEFAULT_TOLERANCE
    scale: str = "paper"
    mini_tolerance: float | None = None  # also compared at mini scale, with this tolerance (module docstring)
    note: str = ""
    paper: str = ""
    source: str = ""
    where: str = field(default="", compare=False)  # "file.yaml values[3]", for error messages

    def describe(self) -> str:
        """How error messages name the entry: location plus its keys."""
        loc = f"{self.where}: " if self.where else ""
        return f"{loc}reference (table={self.table!r}, row={self.row!r}, column={self.column!r})"


def _entry(raw: Any, where: str, defaults: Mapping[str, Any], paper: str, source: str) -> Reference:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with keys {_REQUIRED}, got {raw!r}")
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {[*_REQUIRED, *_OPTIONAL]}")
    absent = [k for k in _REQUIRED if raw.get(k) is None]
    if absent:
        raise ValueError(f"{where}: missing required key(s) {absent}")
    merged = {**defaults, **raw}
    try:
        value = float(merged["value"])
        tol = float(merged.get("tolerance", DEFAULT_TOLERANCE))
        mini_tol = None if merged.get("mini_tolerance") is None else float(merged["mini_tolerance"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: value/tolerance must be numbers ({e})") from None
    if not math.isfinite(value) or not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"{where}: value must be finite and tolerance a finite number >= 0")
    if mini_tol is not None and not (mini_tol >= 0 and math.isfinite(mini_tol)):
        raise ValueError(f"{where}: mini_tolerance must be a finite number >= 0")
    scale = str(merged.get("scale", "paper"))
    if scale not in SCALES:
        raise ValueError(f"{where}: scale {scale!r} is not one of {SCALES}")
    return Reference(table=str(raw["table"]), row=str(raw["row"]), column=str(raw["column"]), value=value,
                     tolerance=tol, scale=scale, mini_tolerance=mini_tol, note=str(merged.get("note", "") or ""), paper=paper,
                     source=source, where=where)


def load_references(path: str | Path) -> list[Reference]:
    """Parse and type-check one reference file (format: module docstring); ``ValueError`` names the bad entry."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, Mapping) or "values" not in doc:
        raise ValueError(f"{path}: expected a mapping with 'paper' and a 'values' list")
    values = doc["values"] or []
    if not isinstance(values, list):
        raise ValueError(f"{path}: 'values' must be a list")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping) or set(defaults) - set(_OPTIONAL):
        raise ValueError(f"{path}: 'defaults' may only set {list(_OPTIONAL)}")
    paper, source = str(doc.get("paper", path.stem)), str(doc.get("source", "") or "")
    return [_entry(v, f"{path.name} values[{i}]", defaults, paper, source) for i, v in enumerate(values)]


def reference_path(paper: str, root: str | Path = ".") -> Path:
    """``<root>/experiments/reference/<paper>.yaml``."""
    return Path(root) / REFERENCE_DIR / f"{paper}.yaml"


def for_scale(refs: Iterable[Reference], scale: str) -> list[Reference]:
    """Entries that apply to a run at ``scale``; ``any`` entries apply to every scale, and at ``mini`` a ``paper``
    entry with a ``mini_tolerance`` applies with that tolerance (same number, the paper's grid)."""
    out = [r for r in refs if r.scale in (scale, "any")]
    if scale == "mini":
        out += [replace(r, scale="mini", tolerance=r.mini_tolerance) for r in refs
                if r.scale == "paper" and r.mini_tolerance is not None]
    return out


def _shape(t: Any) -> tuple[list[str], list[str]]:
    if hasattr(t, "rows") and hasattr(t, "columns") and not isinstance(t, tuple):
        return [str(r) for r in t.rows], [str(c) for c in t.columns]
    rows, cols = t
    return [str(r) for r in rows], [str(c) for c in cols]


def validate_references(
    refs: Iterable[Reference], tables: Mapping[str, Any | tuple[Sequence[str], Sequence[str]]]
) -> None:
    """Raise ``ValueError`` listing every reference whose table id, row or column does not exist.

    ``tables`` maps table id to a ``Table`` (anything with ``rows``/``columns`` label lists) or to a
    ``(rows, columns)`` pair, for figures whose numbers are compared without a printed table.
    """
    errors: list[str] = []
    shapes = {k: _shape(v) for k, v in tables.items()}
    for ref in refs:
        if ref.table not in shapes:
            errors.append(f"{ref.describe()}: table {ref.table!r} does not exist (known: {sorted(shapes)})")
            continue
        rows, cols = shapes[ref.table]
        if ref.row not in rows:
            errors.append(f"{ref.describe()}: row {ref.row!r} does not exist in table {ref.table!r} (rows: {rows})")
        if ref.column not in cols:
            errors.append(
                f"{ref.describe()}: column {ref.column!r} does not exist in table {ref.table!r} (columns: {cols})"
            )
    if errors:
        raise ValueError(f"{len(errors)} invalid reference(s):\n" + "\n".join(errors))
