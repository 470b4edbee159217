"""Reference YAML files: loading, type checks, validation against report tables, scale filtering."""
from __future__ import annotations

from pathlib import Path

import pytest

from robustsweep.report.reference import Reference, for_scale, load_references, validate_references
from tests.report.test_tables import build

YAML = """\
paper: "001"
source: 001_c207276a6492ab58.txt
defaults: {tolerance: 0.1}
values:
  - {table: fig3, row: GBZ, column: "PGD eps=0.1", value: 0.95, scale: paper, tolerance: 0.05, note: "read off Fig. 3"}
  - {table: fig3, row: DFX, column: "PGD eps=0.2", value: 0.2, scale: ci}
  - {table: fig5, row: 16, column: 0.1, value: 1, scale: any}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "001.yaml"
    p.write_text(text)
    return p


def test_load_types_defaults_and_scale(tmp_path):
    refs = load_references(_write(tmp_path, YAML))
    assert len(refs) == 3
    a, b, c = refs
    assert a == Reference(table="fig3", row="GBZ", column="PGD eps=0.1", value=0.95, tolerance=0.05,
                          scale="paper", note="read off Fig. 3", paper="001", source="001_c207276a6492ab58.txt")
    assert b.tolerance == 0.1  # from defaults
    assert (c.row, c.column, c.value) == ("16", "0.1", 1.0)  # YAML numbers become the printed labels
    assert a.where == "001.yaml values[0]"
    assert [r.table + r.row for r in for_scale(refs, "ci")] == ["fig3DFX", "fig516"]
    assert [r.row for r in for_scale(refs, "paper")] == ["GBZ", "16"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{table: fig3, row: GBZ, column: c, value: 0.9, tolerence: 0.1}", "unknown key(s) ['tolerence']"),
        ("{table: fig3, row: GBZ, value: 0.9}", "missing required key(s) ['column']"),
        ("{table: fig3, row: GBZ, column: c, value: high}", "value/tolerance must be numbers"),
        ("{table: fig3, row: GBZ, column: c, value: 0.9, scale: huge}", "scale 'huge'"),
        ("{table: fig3, row: GBZ, column: c, value: 0.9, tolerance: -1}", "tolerance a finite number >= 0"),
        ("{table: fig3, row: GBZ, column: c, value: 0.9, mini_tolerance: -0.1}", "mini_tolerance must be"),
    ],
)
def test_load_rejects_bad_entries(tmp_path, entry, message):
    path = _write(tmp_path, f'paper: "001"\nvalues:\n  - {{table: t, row: r, column: c, value: 1}}\n  - {entry}\n')
    with pytest.raises(ValueError) as e:
        load_references(path)
    assert "001.yaml values[1]" in str(e.value) and message in str(e.value)


def test_validate_accepts_existing_cells(tmp_path):
    refs = load_references(_write(tmp_path, YAML))
    validate_references(refs, {"fig3": build(), "fig5": (["16", "32"], ["0.1", "0.2"])})


def test_validate_rejects_nonexistent_table():
    ref = Reference(table="fig9", row="GBZ", column="PGD eps=0.1", value=0.5, where="001.yaml values[4]")
    with pytest.raises(ValueError) as e:
        validate_references([ref], {"fig3": build()})
    msg = str(e.value)
    assert "001.yaml values[4]" in msg and "table 'fig9' does not exist" in msg and "fig3" in msg


def test_validate_rejects_nonexistent_row():
    ref = Reference(table="fig3", row="GBX", column="PGD eps=0.1", value=0.5)
    with pytest.raises(ValueError) as e:
        validate_references([ref], {"fig3": build()})
    msg = str(e.value)
    assert "row 'GBX' does not exist in table 'fig3'" in msg and "GBZ" in msg and "(columns:" not in msg


def test_validate_rejects_nonexistent_column():
    ref = Reference(table="fig3", row="GBZ", column="PGD eps=0.3", value=0.5)
    with pytest.raises(ValueError) as e:
        validate_references([ref], {"fig3": (["GBZ"], ["PGD eps=0.1", "PGD eps=0.2"])})
    msg = str(e.value)
    assert "column 'PGD eps=0.3' does not exist in table 'fig3'" in msg and "row 'GBZ' does not" not in msg


def test_validate_lists_every_bad_entry():
    refs = [Reference(table="nope", row="a", column="b", value=1.0),
            Reference(table="fig3", row="GBZ", column="zzz", value=1.0)]
    with pytest.raises(ValueError, match="2 invalid reference"):
        validate_references(refs, {"fig3": build()})


def test_mini_scale_takes_paper_entries_with_a_mini_tolerance(tmp_path):
    """At mini scale (the paper's grid on mnist5k) a paper entry with mini_tolerance applies with that tolerance;
    one without it does not, nor does a ci entry; the paper scale keeps the tight tolerance."""
    text = YAML.replace('scale: paper, tolerance: 0.05,', 'scale: paper, tolerance: 0.05, mini_tolerance: 0.2,')
    text += '  - {table: fig3, row: GFZ, column: "PGD eps=0.1", value: 0.9, scale: paper}\n'
    refs = load_references(_write(tmp_path, text))
    mini = for_scale(refs, "mini")
    assert [(r.row, r.tolerance, r.scale) for r in mini] == [("16", 0.1, "any"), ("GBZ", 0.2, "mini")]
    assert [(r.row, r.tolerance) for r in for_scale(refs, "paper")] == [("GBZ", 0.05), ("16", 0.1), ("GFZ", 0.1)]
