"""CLI behaviour that needs no Ray: listing, exit codes, a summary that cannot be built never hides the outcome."""
from __future__ import annotations

from robustsweep import cli
from robustsweep.runners.base import RunSummary


def test_list_shows_every_registry_with_help(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for section, entry in (("datasets:", "digits"), ("models:", "gfz"), ("attacks:", "pgd"), ("detectors:", "logit")):
        assert section in out and f"  {entry} " in out


def test_unknown_sweep_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["results", "nope", "--results", str(tmp_path)]) == 2
    assert "no results for sweep 'nope'" in capsys.readouterr().err


def test_finish_reports_failures_even_when_the_summary_table_breaks(tmp_path, monkeypatch, capsys):
    import robustsweep.report.aggregate as results

    def broken(*a, **k):
        raise ValueError("schema clash")

    monkeypatch.setattr(results, "sweep_table", broken)
    rc = cli.finish(tmp_path, "s", RunSummary(total=2, ok=1, failed=1, errors={"abc": "TrainingDiverged: nan"}))
    err = capsys.readouterr().err
    assert rc == 1
    assert "summary table unavailable: ValueError: schema clash" in err and "FAILED abc: TrainingDiverged" in err
