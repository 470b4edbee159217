"""The benchmark suite at its tiny size, so it never rots: the JSON report holds every figure, and every ratio is
finite and positive. Never asserts a timing (benchmarks are not tests)."""
from __future__ import annotations

import json
import math

import pytest

from bench.__main__ import main, ratios

ATTACK_FIGURES = {f"attacks.{m}.{a}" for m in ("cnn", "gfz") for a in ("fgsm", "pgd2", "mim2", "cw2")}
STORE_FIGURES = {"store.write", "store.results_peak_ratio"} | {
    f"store.{kind}.{q}" for kind, qs in (("legacy_ratio", ("status", "results")),
                                         ("compact_ratio", ("status", "results", "query")),
                                         ("cache_ratio", ("status", "results", "query"))) for q in qs}


def test_bench_tiny_has_every_figure_with_finite_positive_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--size", "tiny", "--sweep-backend", "inline", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    r = ratios(report)
    assert ATTACK_FIGURES | STORE_FIGURES | {"sweep"} <= set(r), sorted(r)
    assert all(math.isfinite(v) and v > 0 for v in r.values()), r
    for fig in ATTACK_FIGURES:  # both sides measured on the same inputs
        node = report["attacks"][fig.split(".", 1)[1]]
        assert node["robustsweep_img_s"] > 0 and node["torchattacks_img_s"] > 0
    st = report["store"]
    for k in ("status", "results", "query"):  # every store figure before and after compaction, as commands too
        assert st["before_s"][k] > 0 and st["after_s"][k] > 0 and st["cli_before_s"][k] > 0 and st["cli_after_s"][k] > 0
    assert st["compact_parts"] == 1 and st["results_peak_mb"] > 0
    assert st["cache_cold_s"] > 0 and st["cli_cold_s"]["results"] > 0 and st["uncached_s"]["query"] > 0
    assert report["sweep"]["trials"] == 2 and 0 < report["sweep"]["useful_fraction_serial"] <= 1.0 + 1e-9
    table = capsys.readouterr().out
    assert "attacks.gfz.pgd2" in table and "before compact" in table


def test_sweep_bench_specs_validate_and_the_breakdown_adds_up():
    """The sweeps the overhead figure can run are valid specs of the sizes the README quotes, and the idle
    slot-seconds split into start-up + between trials + tail exactly (no Ray, no trial run)."""
    from bench.bench_sweep import SPECS, breakdown, load_bench_spec

    assert {n: len(load_bench_spec(n).expand()) for n in SPECS} == {"quickstart": 6, "deep_bayes_digits": 14}
    # 2 slots, run from 0 to 10 s: slot A runs 1-4 and 4.5-9, slot B 2-8
    trials = [(1.0, 4.0, 3.0), (4.5, 9.0, 4.5), (2.0, 8.0, 6.0)]
    b = breakdown(trials, 0.0, 10.0, 2, ray_init_s=0.5)
    assert b["idle_slot_s"] == 20 - 13.5 and b["startup_slot_s"] == 3.0 and b["tail_slot_s"] == 3.0
    assert b["between_slot_s"] == pytest.approx(0.5) and b["first_trial_start_s"] == 1.0


def test_gpu_packing_bench_runs_on_a_logical_gpu(tmp_path, capsys):
    """The fractional-GPU figure through the real runner on a logical GPU (Ray resources only, CPU compute): both
    runs finish every trial, one at a time and two packed at once, and the figure is a finite ratio."""
    out = tmp_path / "gpu.json"
    assert main(["--only", "gpu", "--size", "tiny", "--device", "cpu", "--gpu-packs", "2", "--out", str(out)]) == 0
    g = json.loads(out.read_text())["gpu"]
    assert g["logical_gpu"] is True and set(g) >= {"pack1", "pack2"}
    assert [g[p]["gpus_per_trial"] for p in ("pack1", "pack2")] == [1.0, 0.5]
    assert all(g[p]["ok"] == g[p]["trials"] == 2 for p in ("pack1", "pack2"))
    assert math.isfinite(ratios({"gpu": g})["gpu.pack2"])
    assert "2 at once (gpus_per_trial 0.50): 2/2 trials" in capsys.readouterr().out


def test_bench_refuses_bad_gpu_packs(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "gpu", "--gpu-packs", "two"])
    assert "--gpu-packs" in capsys.readouterr().err
