"""Write a report as ``report.md`` and a self-contained ``report.html`` from sections of tables/figures/checks.

Why both: the Markdown is diffable and renders on GitHub next to the PNGs (linked relatively), while the HTML
embeds every figure as a base64 ``data:`` URI so one file can be mailed or attached to a ticket and still show
everything. All text is HTML-escaped; the only markup in section text is a small Markdown subset (blank-line
paragraphs, ``- `` bullet lists, ``**bold**``, ```code```), applied after escaping so it cannot inject tags.
The page carries a tiny script that, once loaded, sets ``<body data-imgs-ok="true|false">`` from whether every
image decoded; headless-browser tests (and humans in devtools) use it to prove the embedded figures render.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from robustsweep.report.checks import CheckResult
from robustsweep.report.tables import Table, to_markdown

Figure = Path | str | tuple[Path | str, str]  # a PNG path, or (path, caption)
Provenance = Mapping[str, Any] | str | None

_MARK = {True: ("✔", "holds"), False: ("✘", "fails"), None: ("?", "na")}
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:center}
th{background:#f3f3f3}td:first-child{text-align:left}caption{caption-side:bottom;font-size:.9em;color:#555}
.holds{color:#176b1b}.fails{color:#a31515}.na{color:#8a6d00}.note{color:#8a6d00;font-size:.9em}
td.fails{background:#fde8e8}td.holds{background:#e8f6e8}figure{margin:1em 0}img{max-width:100%}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
"""
_ONLOAD = ("<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
           "document.body.dataset.imgsOk=String(i.every(function(m){return m.complete&&m.naturalWidth>0;}));"
           "document.body.dataset.imgCount=String(i.length);});</script>")


@dataclass
class Section:
    """One part of a report (usually one paper table or figure with its claims)."""

    heading: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    provenance: Provenance = None


def _figure(f: Figure) -> tuple[Path, str]:
    return (Path(f[0]), f[1]) if isinstance(f, tuple) else (Path(f), "")


def _inline(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def _paragraphs(text: str) -> str:
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        if all(ln.startswith("- ") for ln in lines):
            out.append("<ul>" + "".join(f"<li>{_inline(ln[2:])}</li>" for ln in lines) + "</ul>")
        else:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def frame_html(df: pl.DataFrame, *, caption: str = "", flag: str | None = None) -> str:
    """A polars frame as an escaped HTML table; ``flag`` names a boolean column whose cells get coloured."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = []
    for row in df.iter_rows(named=True):
        tds = []
        for c, v in row.items():
            cls = f' class="{_MARK[v][1]}"' if c == flag and v in _MARK else ""
            tds.append(f"<td{cls}>{html.escape(_cell(v))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _table_html(t: Table) -> str:
    parts = [f'<h3 id="{html.escape(t.id)}">{html.escape(t.id)}: {html.escape(t.title)}</h3>',
             frame_html(t.frame, caption=t.caption)]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in t.notes]
    if not t.failed.is_empty():
        parts.append("<details><summary>failed trials</summary>" + frame_html(t.failed) + "</details>")
    if t.comparison is not None:
        parts.append(f"<p><strong>Paper vs ours:</strong> {html.escape(t.comparison.verdict)}</p>")
        parts.append(frame_html(t.comparison.frame, flag="within_tolerance"))
    return "\n".join(parts)


def _checks_html(checks: Sequence[CheckResult]) -> str:
    items = []
    for c in checks:
        mark, cls = _MARK[c.holds]
        items.append(f'<li class="{cls}">{mark} <strong>{html.escape(c.name)}</strong> ({html.escape(c.status)}): '
                     f"{html.escape(c.claim)}<br><small>observed: {html.escape(c.observed)}</small></li>")
    return "<ul class=\"checks\">" + "".join(items) + "</ul>"


def _provenance_text(p: Provenance) -> str:
    if p is None:
        return ""
    if isinstance(p, str):
        return p
    return yaml.safe_dump(json.loads(json.dumps(p, default=str)), sort_keys=False, allow_unicode=True)


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption or path.name)}">'
            f"{cap}</figure>")


def render_html(title: str, sections: Sequence[Section], provenance: Provenance = None) -> str:
    """The self-contained HTML page (figures inlined as data URIs)."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        out.append(f"<section><h2>{html.escape(s.heading)}</h2>")
        out.append(_paragraphs(s.text))
        out += [_table_html(t) for t in s.tables]
        out += [_img(*_figure(f)) for f in s.figures]
        if s.checks:
            out += ["<h3>Qualitative claims</h3>", _checks_html(s.checks)]
        if s.provenance is not None:
            out.append(f"<details><summary>provenance</summary><pre>{html.escape(_provenance_text(s.provenance))}"
                       "</pre></details>")
        out.append("</section>")
    if provenance is not None:
        out.append(f"<h2>Provenance</h2><pre>{html.escape(_provenance_text(provenance))}</pre>")
    out += [_ONLOAD, "</body></html>"]
    return "\n".join(out) + "\n"


def _md_frame(df: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in r) + " |" for r in df.iter_rows()]
    return "\n".join(lines)


def render_markdown(title: str, sections: Sequence[Section], out_dir: Path, provenance: Provenance = None) -> str:
    """The Markdown twin: same content, figures linked relative to ``out_dir``."""
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.heading}", ""] + ([s.text.strip(), ""] if s.text.strip() else [])
        for t in s.tables:
            out += [f"### {t.id}: {t.title}", "", to_markdown(t)]
            if t.comparison is not None:
                out += [f"**Paper vs ours:** {t.comparison.verdict}", "", _md_frame(t.comparison.frame), ""]
        for f in s.figures:
            p, cap = _figure(f)
            out += [f"![{cap or p.name}]({Path(os.path.relpath(p.resolve(), out_dir.resolve())).as_posix()})", ""]
        if s.checks:
            out += ["### Qualitative claims", ""]
            out += [f"- {_MARK[c.holds][0]} **{c.name}** ({c.status}): {c.claim} — observed: {c.observed}"
                    for c in s.checks] + [""]
        if s.provenance is not None:
            out += ["<details><summary>provenance</summary>", "", "```", _provenance_text(s.provenance).rstrip(),
                    "```", "</details>", ""]
    if provenance is not None:
        out += ["## Provenance", "", "```yaml", _provenance_text(provenance).rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def write_pages(out_dir: str | Path, title: str, sections: Sequence[Section], *, provenance: Provenance = None,
                formats: Sequence[str] = ("md", "html")) -> list[Path]:
    """Write ``out_dir/report.md`` ("md" in ``formats``) and ``out_dir/report.html`` ("html"); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        (out / "report.md").write_text(render_markdown(title, sections, out, provenance), encoding="utf-8")
        written.append(out / "report.md")
    if "html" in formats:
        (out / "report.html").write_text(render_html(title, sections, provenance), encoding="utf-8")
        written.append(out / "report.html")
    return written


def write_report(
    out_dir: str | Path, title: str, sections: Sequence[Section], *, provenance: Provenance = None
) -> tuple[Path, Path]:
    """Write ``out_dir/report.md`` and ``out_dir/report.html``; returns both paths (md, html)."""
    md, page = write_pages(out_dir, title, sections, provenance=provenance)
    return md, page
