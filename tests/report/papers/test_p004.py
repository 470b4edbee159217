"""Paper 004 report builder: hand-built rows -> known cells and claim verdicts (no training, well under a second)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from robustsweep.report.papers import PaperContext, load_papers
from robustsweep.report.papers.p004 import CIFAR, IMAGENETTE


def _row(model: str, seed: int, attack: str, param: str | None, value: float | None, **m: float) -> dict:
    base = {"status": "ok", "seed": seed, "attack": attack, "param": param, "value": value, "cfg.model.name": model,
            "adv_accuracy": 0.0, "success_rate": 1.0, "det.energy.tpr": 0.9, "det.energy.fpr": 0.02,
            "det.energy.auc": 0.95, "det.energy-gmean.tpr": 0.95, "det.energy-gmean.fpr": 0.03,
            "det.energy-auto.tpr": 0.9, "det.energy-auto.fpr": 0.02,
            "det.energy.roc_fpr": [0.0, 0.02, 1.0], "det.energy.roc_tpr": [0.0, 0.9, 1.0],
            # binned scores (-E for direction low): clean in the low-score bin, adversarials in the high one
            "det.energy.hist_edges": [-3.0, -2.0, -1.0], "det.energy.hist_clean": [4.0, 1.0],
            "det.energy.hist_adv": [0.0, 5.0], "det.energy.hist_overlap": 0.2}
    return base | m


def _rows(ci: bool) -> dict[str, pl.DataFrame]:
    """Two models x two seeds; PGD (8) DR 0.9 / 0.8 by seed, PGD (16) 1.0; HE-PGD DR falls with lambda."""
    models = ["cnn", "mlp"] if ci else ["resnet10", "vgg16"]
    e8, e16 = (0.2, 0.4) if ci else (8 / 255, 16 / 255)
    cif, img = [], []
    for model in models:
        for seed in (0, 1):
            dr8 = 0.9 if seed == 0 else 0.8
            for rows in (cif, img):
                rows += [_row(model, seed, "pgd", "eps", e8, **{"det.energy.tpr": dr8}),
                         _row(model, seed, "pgd", "eps", e16, **{"det.energy.tpr": 1.0, "det.energy.auc": 0.99})]
            cif.append(_row(model, seed, "apgd", None, None, **{"det.energy.tpr": 0.7}))
            for lam, dr, auc in ((0.0, 0.9, 0.95), (0.6, 0.5, 0.8), (1.2, 0.2, 0.55), (2.4, 0.05, 0.3)):
                cif.append(_row(model, seed, "he-pgd", "lam", lam, **{"det.energy.tpr": dr, "det.energy.auc": auc}))
            for steps, auc in ((5, 0.7), (10, 0.8), (20, 0.9), (40, 0.95)):
                cif.append(_row(model, seed, "pgd", "steps", float(steps), **{"det.energy.auc": auc}))
                cif.append(_row(model, seed, "he-pgd", "steps", float(steps), **{"det.energy.auc": 0.5}))
    return {CIFAR: pl.DataFrame(cif), IMAGENETTE: pl.DataFrame(img)}


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip matplotlib (about 1 s per build); test_figures_are_drawn keeps one real drawing."""
    import robustsweep.report.papers.p004 as p004

    monkeypatch.setattr(p004, "roc_curves", lambda curves, path, **kw: path)
    monkeypatch.setattr(p004, "line_with_band", lambda df, x, y, group, path, **kw: path)
    import robustsweep.report.papers.p004_hist as p004_hist

    monkeypatch.setattr(p004_hist, "binned_histograms", lambda panels, path, **kw: path)


def _build(tmp_path: Path, experiments: dict[str, pl.DataFrame], scale: str = "paper"):
    sections = load_papers()["004"].build(PaperContext(experiments, tmp_path, scale))
    tables = {t.id: t for s in sections for t in s.tables}
    checks = {c.name: c for s in sections for c in s.checks}
    return tables, checks


def _cell(table, row: str, col: str) -> float:
    rec = table.numeric.filter((pl.col("row") == row) & (pl.col("column") == col))
    assert rec.height == 1, (row, col)
    return rec["mean"][0]


@pytest.mark.parametrize("ci", [False, True])
def test_cells_and_labels_are_the_same_at_both_scales(tmp_path: Path, ci: bool, no_figures: None) -> None:
    tables, _ = _build(tmp_path, _rows(ci), "ci" if ci else "paper")
    t1 = tables["table1"]
    assert not t1.missing
    row8 = "CIFAR-10 / digits · Energy (Youden) · PGD (8)"
    assert _cell(t1, row8, "DR · ResNet10 / cnn") == pytest.approx(0.85)  # mean of seeds 0.9 and 0.8
    assert _cell(t1, "imagenette / mnist5k · Energy (Youden) · PGD (16)", "DR · VGG16 / mlp") == pytest.approx(1.0)
    assert _cell(t1, "CIFAR-10 / digits · Energy (G-mean) · APGD (8)", "FPR · VGG16 / mlp") == pytest.approx(0.03)
    lam = tables["he-pgd-lambda"]
    assert lam.rows == ["0 (PGD)", "0.6", "1.2 (paper)", "2.4"]
    assert _cell(lam, "1.2 (paper)", "DR Youden · ResNet10 / cnn") == pytest.approx(0.2)
    steps = tables["fig-energy-steps"]
    assert steps.rows == ["5", "10", "20", "40"]
    assert _cell(steps, "40", "PGD AUC · VGG16 / mlp") == pytest.approx(0.95)
    hist = tables["energy-hist"]
    assert hist.rows == ["PGD, 40 steps (Fig. 2(a))", "HE-PGD λ=0 (Fig. 3(a))", "HE-PGD λ=0.6 (Fig. 3(a))",
                         "HE-PGD λ=1.2 (Fig. 3(a))", "HE-PGD λ=2.4 (Fig. 3(a))"]
    assert _cell(hist, "HE-PGD λ=1.2 (Fig. 3(a))", "overlap · VGG16 / mlp") == pytest.approx(0.2)
    assert _cell(hist, "HE-PGD λ=1.2 (Fig. 3(a))", "AUC · VGG16 / mlp") == pytest.approx(0.55)
    # the cross tables: test_p004_cross.py; Fig. 4 (its own experiment): test_fig4_cells_and_claims below
    assert all(not t.missing for tid, t in tables.items() if not tid.startswith("cross") and tid != "fig4")


def _fig4_row(seed: int, robust: bool, adv_acc: float, grad_scale: float) -> dict:
    """A p004_fig4 row: 2 kept 1x3x3 images; the map is image * grad_scale + fixed noise, so a larger scale aligns
    it more with the image (|r| rises with the scale)."""
    import numpy as np

    x = np.array([[0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    noise = np.array([[0.3, -0.2, 0.5, -0.4, 0.1, 0.2, -0.5, 0.4, -0.1]] * 2)
    g = x * grad_scale + noise
    return {"status": "ok", "seed": seed, "attack": "pgd", "clean_accuracy": 0.9, "adv_accuracy": adv_acc,
            "cfg.train.adversarial.eps": 0.2 if robust else None, "ex.shape": [2.0, 1.0, 3.0, 3.0],
            "ex.clean": x.flatten().tolist(), "ex.grad_clean": g.flatten().tolist()}


def test_fig4_cells_and_claims(tmp_path: Path) -> None:
    from robustsweep.report.papers.p004_fig4 import EXPERIMENT, alignment

    rows = pl.DataFrame([_fig4_row(0, False, 0.05, 0.1), _fig4_row(0, True, 0.6, 2.0)])
    tables, checks = _build(tmp_path, {EXPERIMENT: rows}, "ci")
    t = tables["fig4"]
    assert not t.missing and t.rows == ["regular training", "PGD-AT (robust)"]
    assert _cell(t, "PGD-AT (robust)", "PGD accuracy") == pytest.approx(0.6)
    r = rows.row(1, named=True)
    import numpy as np

    want = alignment(np.array(r["ex.clean"]).reshape(2, 1, 3, 3), np.array(r["ex.grad_clean"]).reshape(2, 1, 3, 3))
    assert _cell(t, "PGD-AT (robust)", "gradient-image alignment") == pytest.approx(want)
    assert checks["pgd-at-is-robust"].holds and checks["robust-gradients-aligned"].holds
    assert (tmp_path / "figures" / "fig4_gradients.png").is_file()
    swapped = pl.DataFrame([_fig4_row(0, False, 0.05, 2.0), _fig4_row(0, True, 0.6, 0.1)])
    _, checks = _build(tmp_path, {EXPERIMENT: swapped}, "ci")
    assert checks["robust-gradients-aligned"].holds is False  # the verdict follows the maps, not the labels


def test_claims_follow_the_rows(tmp_path: Path, no_figures: None) -> None:
    _, checks = _build(tmp_path, _rows(ci=False))
    m = "[ResNet10 / cnn]"
    assert checks[f"pgd-lower-energy CIFAR-10 {m}"].holds is True
    assert checks[f"pgd-lower-energy imagenette {m}"].holds is True
    assert checks[f"energy-detects-pgd CIFAR-10 {m}"].holds is True
    assert checks[f"apgd-detected {m}"].holds is True
    assert checks[f"stronger-easier {m}"].holds is True
    assert checks[f"energy-falls-with-steps {m}"].holds is True
    assert checks[f"he-pgd-steps-invariant {m}"].holds is True
    assert checks[f"he-pgd-lambda-lowers-dr {m}"].holds is True
    assert checks[f"he-pgd-evades {m}"].holds is True  # AUC 0.55 at lambda 1.2
    assert "0.900→0.500→0.200→0.050" in checks[f"he-pgd-lambda-lowers-dr {m}"].observed


def test_flat_detection_rate_is_not_a_drop(tmp_path: Path, no_figures: None) -> None:
    """A DR stuck at 0 (the detector rejects nothing) must not count as 'larger lambda lowers the DR'."""
    rows = _rows(ci=True)
    rows[CIFAR] = rows[CIFAR].with_columns(pl.lit(0.0).alias("det.energy.tpr"), pl.lit(0.0).alias("det.energy-gmean.tpr"))
    _, checks = _build(tmp_path, rows, "ci")
    assert checks["he-pgd-lambda-lowers-dr [ResNet10 / cnn]"].holds is False
    assert checks["energy-detects-pgd CIFAR-10 [ResNet10 / cnn]"].holds is False


def test_detection_needs_a_low_false_positive_rate(tmp_path: Path, no_figures: None) -> None:
    """A threshold that flags everything (DR 1, FPR 0.98: seen at ci scale) does not 'detect' anything."""
    rows = _rows(ci=True)
    rows[CIFAR] = rows[CIFAR].with_columns(*(pl.lit(v).alias(f"det.{d}.{k}") for d in ("energy", "energy-gmean")
                                             for k, v in (("tpr", 1.0), ("fpr", 0.98))))
    _, checks = _build(tmp_path, rows, "ci")
    assert checks["apgd-detected [VGG16 / mlp]"].holds is False
    assert "FPR 0.980" in checks["apgd-detected [VGG16 / mlp]"].observed


def test_table1_detection_claims_read_the_g_mean_threshold(tmp_path: Path, no_figures: None) -> None:
    """Table 1's numbers come from the G-mean threshold (§5.1), so its claims read the energy-gmean detector, not the
    Youden one; a sweep without it falls back to Youden and says so."""
    rows = _rows(ci=True)
    good, bad = (("tpr", 0.9), ("fpr", 0.02)), (("tpr", 0.1), ("fpr", 0.5))
    rows[CIFAR] = rows[CIFAR].with_columns(*(pl.lit(v).alias(f"det.energy-gmean.{k}") for k, v in good),
                                           *(pl.lit(v).alias(f"det.energy.{k}") for k, v in bad))
    _, checks = _build(tmp_path, rows, "ci")
    c = checks["energy-detects-pgd CIFAR-10 [ResNet10 / cnn]"]
    assert c.holds is True and "G-mean threshold: DR 0.900, FPR 0.020" in c.observed
    rows[CIFAR] = rows[CIFAR].drop([c for c in rows[CIFAR].columns if c.startswith("det.energy-gmean.")])
    _, checks = _build(tmp_path, rows, "ci")
    c = checks["energy-detects-pgd CIFAR-10 [ResNet10 / cnn]"]
    assert c.holds is False and "Youden threshold: DR 0.100" in c.observed


def test_empty_experiments_render_dashes_and_unevaluated_claims(tmp_path: Path) -> None:
    tables, checks = _build(tmp_path, {})
    assert set(tables) == {"table1", "energy-auc", "fig-energy-steps", "he-pgd-lambda", "energy-hist", "cross-auc",
                           "cross-success", "cross-tau", "fig4"}
    assert len(tables["table1"].rows) == 10 and len(tables["table1"].missing) == 40
    assert checks and all(c.holds is None for c in checks.values())


def test_figures_are_drawn(tmp_path: Path) -> None:
    sections = load_papers()["004"].build(PaperContext(_rows(ci=True), tmp_path, "ci"))
    names = {Path(f[0]).name for s in sections for f in s.figures}
    assert names == {"roc_resnet10.png", "roc_vgg16.png", "energy_steps.png", "accuracy_steps.png",
                     "he_pgd_lambda.png", "energy_hist_resnet10.png", "energy_hist_vgg16.png",
                     "fig4_gradients.png"}  # without Fig. 4 rows: its "no examples stored" placeholder
    assert all((tmp_path / "figures" / n).stat().st_size > 0 for n in names)


def test_table1_detection_rate_counts_all_adversarial_images(tmp_path: Path, no_figures: None) -> None:
    """The public code counts TP over every adversarial test image (successful or not): with det.<d>.reject_adv in
    the rows, Table 1's DR and its claims read it instead of the successful adversarials' tpr."""
    rows = _rows(ci=True)
    rows[CIFAR] = rows[CIFAR].with_columns(pl.lit(0.9).alias("det.energy-gmean.reject_adv"),
                                           pl.lit(0.1).alias("det.energy-gmean.tpr"),
                                           pl.lit(0.02).alias("det.energy-gmean.fpr"))
    tables, checks = _build(tmp_path, rows, "ci")
    c = checks["energy-detects-pgd CIFAR-10 [ResNet10 / cnn]"]
    assert c.holds is True and "DR 0.900" in c.observed
    t1 = tables["table1"]
    dr = t1.numeric.filter(pl.col("row").str.contains("CIFAR-10") & pl.col("row").str.contains("G-mean")
                           & (pl.col("column").str.starts_with("DR")))["mean"].drop_nulls().to_list()
    assert dr and all(v == pytest.approx(0.9) for v in dr)
