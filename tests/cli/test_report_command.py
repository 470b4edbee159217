"""``robustsweep results`` views and ``robustsweep report`` end to end on a hand-built sweep folder (no training)."""
from __future__ import annotations

import json

import polars as pl
import pytest

from robustsweep import cli
from tests.conftest import cli_in_fresh_python
from tests.report.test_pivot import stored_sweep  # noqa: F401 - the fixture

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _args(sw, *argv: str) -> list[str]:
    return [*argv, "--results", str(sw.results)]


def test_results_default_view_is_the_pivot(stored_sweep, capsys):  # noqa: F811
    assert cli.main(_args(stored_sweep, "results", "piv")) == 0
    default = capsys.readouterr().out
    assert cli.main(_args(stored_sweep, "results", "piv", "--pivot")) == 0
    out = capsys.readouterr().out
    assert out == default
    assert "pgd: adv_accuracy" in out and "| gfz dim_z=8 " in out and "0.550 ± 0.071 (n=2)" in out
    assert "(1 failed trial(s) excluded" in out


def test_results_pivot_metrics_and_files(stored_sweep, tmp_path, capsys):  # noqa: F811
    md, csv = tmp_path / "t.md", tmp_path / "t.csv"
    argv = _args(stored_sweep, "results", "piv", "--metrics", "adv_accuracy,success_rate", "--md", str(md),
                 "--csv", str(csv))
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "pgd: adv_accuracy" in out and "pgd: success_rate" in out
    assert "0.800 ± 0.100" in out  # the pivot is the view shown
    assert "adv_accuracy_mean" in md.read_text()  # --md, like --csv, writes the long table (unchanged behaviour)
    long = pl.read_csv(csv)  # the CSV stays the machine-readable long table
    assert {"adv_accuracy_mean", "adv_accuracy_std", "success_rate_mean", "n_seeds"} <= set(long.columns)
    assert long.height == 4  # 2 configs × 2 eps


def test_results_long_and_raw_keep_the_old_tables(stored_sweep, tmp_path, capsys):  # noqa: F811
    csv = tmp_path / "long.csv"
    assert cli.main(_args(stored_sweep, "results", "piv", "--long", "--csv", str(csv))) == 0
    assert "shape: (4, " in capsys.readouterr().out  # one row per config × eps (polars' frame printout)
    assert set(pl.read_csv(csv).columns) >= {"cfg.model.dim_z", "attack", "value", "clean_accuracy_mean", "rho_mean"}
    assert cli.main(_args(stored_sweep, "results", "piv", "--raw")) == 0
    assert "shape: (10, " in capsys.readouterr().out  # every stored row, the failed one included
    with pytest.raises(SystemExit):
        cli.main(_args(stored_sweep, "results", "piv", "--long", "--raw"))
    capsys.readouterr()
    assert cli.main(_args(stored_sweep, "results", "piv", "--metrics", "nope")) == 2
    assert "no column nope" in capsys.readouterr().err


def test_report_end_to_end(stored_sweep, tmp_path, capsys):  # noqa: F811
    out_dir = tmp_path / "reports"
    assert cli.main(_args(stored_sweep, "report", "piv", "--out", str(out_dir))) == 0
    log = capsys.readouterr().out
    d = out_dir / "piv"
    assert f"wrote {d / 'report.html'}" in log and "1 failed trial(s) listed" in log
    for name in ("report.md", "report.html", "configs.json", "failed.csv"):
        assert (d / name).is_file(), name
    for t in ("pgd-adv_accuracy", "pgd-success_rate", "pgd-det-logit-tpr"):
        for ext in ("md", "csv", "tex"):
            assert (d / "tables" / f"{t}.{ext}").is_file(), f"{t}.{ext}"
    pngs = [d / "figures" / "accuracy_pgd.png", d / "figures" / "roc_logit.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)

    page = (d / "report.html").read_text()
    assert "0.800 ± 0.100" in page and "0.550 ± 0.071 (n=2)" in page  # the pivot cells
    assert page.count('src="data:image/png;base64,') == 2  # figures embedded, not linked
    assert "TrainingDiverged: loss is nan at epoch 3" in page  # the failed trial and its error
    assert "abc1234" in page and "dim_z: 8" in page  # provenance: git revision and the configs
    md = (d / "report.md").read_text()
    assert "| gfz dim_z=32 | 0.960 ± 0.010 | 0.800 ± 0.100 | 0.650 ± 0.071 (n=2) |" in md
    assert "![" in md and "figures/accuracy_pgd.png" in md
    numeric = pl.read_csv(d / "tables" / "pgd-adv_accuracy.csv")
    cell = numeric.filter((pl.col("row") == "gfz dim_z=32") & (pl.col("column") == "eps=0.1"))
    assert cell["mean"].item() == pytest.approx(0.8) and cell["n"].item() == 3
    assert "\\toprule" in (d / "tables" / "pgd-adv_accuracy.tex").read_text()
    configs = json.loads((d / "configs.json").read_text())
    assert len(configs) == 6 and {c["model"]["dim_z"] for c in configs} == {8, 32}


def test_report_formats_subset(stored_sweep, tmp_path):  # noqa: F811
    out_dir = tmp_path / "r"
    argv = _args(stored_sweep, "report", "piv", "--out", str(out_dir), "--format", "html")
    assert cli.main(argv) == 0
    d = out_dir / "piv"
    assert (d / "report.html").is_file() and not (d / "report.md").exists() and not (d / "tables").exists()


def test_report_unknown_sweep_or_folder_or_format_is_exit_2(stored_sweep, tmp_path, capsys):  # noqa: F811
    out_dir = tmp_path / "never"
    assert cli.main(_args(stored_sweep, "report", "piv", "nope", "--out", str(out_dir))) == 2
    err = capsys.readouterr().err
    assert "no sweep 'nope'" in err and "sweeps there: piv" in err
    assert not out_dir.exists()  # nothing written when any sweep is unknown
    assert cli.main(["report", "piv", "--results", str(tmp_path / "missing"), "--out", str(out_dir)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(_args(stored_sweep, "report", "piv", "--format", "md,pdf", "--out", str(out_dir))) == 2
    assert "pdf" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["report", "piv", "--out"], ["results", "piv", "--pivot"]])
def test_report_and_results_never_import_torch_or_ray(stored_sweep, tmp_path, argv):  # noqa: F811
    argv = [*argv, str(tmp_path / "out")] if argv[-1] == "--out" else argv
    _, verdict = cli_in_fresh_python([*argv, "--results", str(stored_sweep.results)])
    assert verdict == {"rc": 0, "heavy": []}
