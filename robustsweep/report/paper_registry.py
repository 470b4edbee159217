"""The paper registry: what a paper is (:class:`Paper`), what its builder gets (:class:`PaperContext`), the
``@paper`` decorator and the lookups over the modules of ``report/papers/``.

Why a registry and not a list in the CLI: ``robustsweep reproduce --list``, the CI smoke test and the reference-file
validator all iterate over it, so a new paper is one new module ``report/papers/pNNN.py`` (discovered on import,
nothing else to edit), exactly like a new attack is one file under ``attacks/``. Kept out of the papers package so
that package holds papers only.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from robustsweep.errors import UsageError
from robustsweep.report.declare import TableSpec, titles

#: experiment files live in the repository's experiments/ folder (next to the package in a clone / editable install)
EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"


@dataclass
class PaperContext:
    """What a paper builder gets: each experiment's rows, where to save figures, and the scale that ran."""

    experiments: dict[str, pl.DataFrame]  # spec name -> rows (failed rows included, ``config`` label column added)
    out: Path  # the report folder; save figures under ``out / "figures"``
    scale: str  # "ci" | "paper"
    smoke: bool = False

    def rows(self, experiment: str) -> pl.DataFrame:
        """Rows of one experiment (by its spec ``name``); an empty frame with the store's columns when it has none,
        so the paper's layout still renders with "—" cells instead of failing."""
        df = self.experiments.get(experiment)
        if df is not None:
            return df
        from robustsweep.store.rows import empty_rows

        return empty_rows([], experiment).with_columns(pl.lit(None, pl.String).alias("config"))

    def figure(self, name: str) -> Path:
        """``out/figures/<name>`` with its folder created."""
        p = self.out / "figures" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


Builder = Callable[[PaperContext], list]  # -> list[robustsweep.report.html.Section]


@dataclass
class Paper:
    """One seed paper: its id (``001``), a short name, the experiment files and the tables/figures it produces."""

    id: str
    name: str
    title: str
    source: str
    experiments: list[str]
    tables: dict[str, str]  # table/figure id -> what the paper calls it ("Fig. 3: ...")
    build: Builder
    specs: dict[str, TableSpec] = field(default_factory=dict)  # the declared tables (report/declare.py), by id
    notes: str = ""
    figures: dict[str, str] = field(default_factory=dict)  # figure file stem -> caption (listed by --list)
    reference: Path | None = None  # default: experiments/reference/<id>.yaml

    def experiment_paths(self, root: Path | None = None) -> list[Path]:
        base = root or EXPERIMENTS_DIR
        return [base / f for f in self.experiments]

    @property
    def reference_file(self) -> Path:
        return self.reference or EXPERIMENTS_DIR / "reference" / f"{self.id}.yaml"


PAPERS: dict[str, Paper] = {}


def paper(id: str, *, name: str, title: str, source: str, experiments: list[str],  # noqa: A002
          tables: Mapping[str, str] | Sequence[TableSpec], notes: str = "",
          figures: dict[str, str] | None = None) -> Callable[[Builder], Builder]:
    """Decorator registering a paper builder (``report/papers/__init__.py`` shows one); ``tables`` are
    :class:`TableSpec` declarations (or, for a table no spec describes, id -> title)."""
    specs = {} if isinstance(tables, Mapping) else {t.id: t for t in tables}

    def register(fn: Builder) -> Builder:
        if id in PAPERS:
            raise ValueError(f"paper {id} registered twice")
        listed = dict(tables) if isinstance(tables, Mapping) else titles(list(tables))
        PAPERS[id] = Paper(id=id, name=name, title=title, source=source, experiments=list(experiments),
                           tables=listed, build=fn, notes=notes, figures=dict(figures or {}), specs=specs)
        return fn
    return register


_LOADED = False


def load_papers() -> dict[str, Paper]:
    """Import every ``pNNN`` module of ``report/papers/`` once (their ``@paper`` decorators fill :data:`PAPERS`)."""
    global _LOADED
    if not _LOADED:
        package = importlib.import_module("robustsweep.report.papers")
        for m in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if m.name.startswith("p") and m.name[1:].isdigit():
                importlib.import_module(f"{package.__name__}.{m.name}")
        _LOADED = True
    return PAPERS


def get_paper(key: str) -> Paper:
    """A paper by id (``001`` or ``1``) or short name (``deep-bayes``); the error lists what exists."""
    papers = load_papers()
    k = key.strip().lower()
    if k.isdigit():
        k = f"{int(k):03d}"
    for p in papers.values():
        if k in (p.id, p.name):
            return p
    known = ", ".join(f"{p.id} ({p.name})" for p in papers.values())
    raise UsageError(f"unknown paper {key!r}; known: {known} (see `robustsweep reproduce --list`)")
