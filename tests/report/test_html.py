"""Figures and the report writers, including a real headless-Chromium render of report.html."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from robustsweep.report import figures
from robustsweep.report.checks import CheckResult
from robustsweep.report.html import Section, write_report
from robustsweep.report.reference import Reference
from robustsweep.report.tables import compare
from tests.browser import render
from tests.report.test_tables import build, make_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


def test_every_figure_kind(tmp_path):
    rows = make_rows().filter(pl.col("attack") == "pgd")
    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.linspace(-2, 2, 40), np.linspace(-2, 2, 40))
    made = [
        figures.line_with_band(rows, "eps", "adv_accuracy", "cfg.model.name", tmp_path / "line.png",
                               title="acc vs eps"),
        figures.roc_curves([("energy", [0, 0.2, 1], [0, 0.8, 1], 0.81), ("none", [0, 1], [0, 1], None)],
                           tmp_path / "roc.png", title="ROC"),
        figures.histograms({"clean": rng.normal(0, 1, 200), "adv": rng.normal(2, 1, 200)}, tmp_path / "h.png"),
        figures.bars(rows, "cfg.model.name", "adv_accuracy", "eps", tmp_path / "bars.png", title="ablation"),
        figures.heatmap(pl.DataFrame({"a": [0.1, 0.9], "b": [0.5, float("nan")]}), ["r1", "r2"], ["a", "b"],
                        tmp_path / "heat.png"),
        figures.image_grid(rng.random((5, 1, 8, 8)), tmp_path / "grid.png", titles=list("abcde"), ncols=3),
        figures.image_grid(rng.random((4, 3, 8, 8)), tmp_path / "rgb.png", title="rgb"),
        figures.decision_regions(gx, gy, (gx**2 + gy**2 < 1).astype(float), rng.normal(0, 1, (50, 2)),
                                 rng.integers(0, 2, 50), tmp_path / "regions.png", title="two rings"),
    ]
    assert all(_png(p) for p in made), [p for p in made if not _png(p)]


def _report(tmp_path: Path) -> Path:
    t = build(caption="Adversarial accuracy <under> PGD & friends")
    t.comparison = compare(t, [Reference(table="fig3", row="GBZ", column="PGD eps=0.1", value=0.62)])
    fig = figures.line_with_band(make_rows().filter(pl.col("attack") == "pgd"), "eps", "adv_accuracy",
                                 "cfg.model.name", tmp_path / "figs" / "fig3.png", title="Fig. 3")
    checks = [CheckResult("gbz>dfx", "GBZ beats DFX", True, "GBZ 0.600 vs DFX 0.300"),
              CheckResult("gfz-trend", "GFZ decreases", None, "GFZ: 1 point(s), need 2")]
    section = Section("Paper 001 <script>alert(1)</script>", text="Para **one** with `code`.\n\n- a\n- b",
                      tables=[t], figures=[(fig, "Fig. 3 reproduced")], checks=checks)
    md, page = write_report(tmp_path / "out", "Report & co", [section],
                            provenance={"git_rev": "abc123", "versions": {"polars": pl.__version__}})
    assert md == tmp_path / "out" / "report.md"
    return page


def test_write_report_html_and_markdown(tmp_path):
    page = _report(tmp_path)
    text = page.read_text()
    assert "0.600 ± 0.100" in text and "PGD eps=0.1" in text and "<table>" in text
    assert 'src="data:image/png;base64,' in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Adversarial accuracy &lt;under&gt; PGD &amp; friends" in text
    assert "1/1 cells within tolerance" in text and "git_rev: abc123" in text
    assert "<strong>one</strong>" in text and "<code>code</code>" in text and "<li>a</li>" in text
    assert "not evaluated" in text and "GFZ: 1 point(s), need 2" in text
    md = (page.parent / "report.md").read_text()
    assert "| GBZ | 0.600 ± 0.100 | 0.400 ± 0.100 |" in md
    assert "![Fig. 3 reproduced](../figs/fig3.png)" in md and "base64" not in md
    assert "1/1 cells within tolerance" in md and "git_rev: abc123" in md


def test_report_renders_in_headless_chromium(tmp_path):
    page = _report(tmp_path)
    dom, shot = render(page, tmp_path)
    assert "0.600 ± 0.100" in dom and "PGD eps=0.1" in dom
    assert 'data-img-count="1"' in dom  # the page's onload script ran
    assert 'data-imgs-ok="true"' in dom  # …and every <img> decoded (complete and naturalWidth > 0)
    assert _png(shot) and shot.stat().st_size > 20_000
