"""Paper 000's report builder on hand-built rows: model labels, table cells, checks, and its reference file."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from robustsweep.report.papers import PaperContext, get_paper, p000
from robustsweep.report.papers import p000_curves as curves
from robustsweep.report.papers import p000_labels as labels
from robustsweep.report.reference import load_references, validate_references

# (cfg.model.name, head, feature_depth) -> the paper label it stands for, at paper and at ci scale
MODELS = [
    ("vgg16", None, None, "VGG16"), ("cnn", None, None, "VGG16"),
    ("fusion", "dbx", "conv13+fc1", "DBX-FC1"), ("fusion", "dbx", "conv2+fc1", "DBX-FC1"),
    ("fusion", "gbz", "conv9", "GBZ-CONV9"), ("fusion", "gby", "pool1", "GBY-CONV9"),
    ("causal", None, "conv9", "Ours (shallow)"), ("causal", None, "pool2", "Ours (shallow)"),
    ("causal", None, "conv13+fc1", "Ours (deep)"), ("causal", None, "conv16+fc2", "Ours (deep)"),
    ("deep-cama", None, None, "Deep CAMA"),
]


def _rows(model: tuple, seed: int, trial: str, attacks: list[tuple[str, float, float]], clean: float,
          extra: dict | None = None) -> list[dict]:
    name, head, depth, _ = model
    base = {"trial_id": trial, "seed": seed, "status": "ok", "cfg.model.name": name, "cfg.model.head": head,
            "cfg.model.feature_depth": depth, "clean_accuracy": clean, **(extra or {})}
    return [{**base, "attack": a, "eps": e, "value": e, "adv_accuracy": acc} for a, e, acc in attacks]


def test_labels_follow_the_papers_names_at_both_scales() -> None:
    df = pl.DataFrame([{"cfg.model.name": n, "cfg.model.head": h, "cfg.model.feature_depth": d} for n, h, d, _ in MODELS],
                      schema={"cfg.model.name": pl.String, "cfg.model.head": pl.String,
                              "cfg.model.feature_depth": pl.String})
    assert labels.label_models(df)["model"].to_list() == [m[3] for m in MODELS]
    # a shallow causal model with m fine-tuning is the extra row; a deep one stays "Ours (deep)" (not in the files)
    ft = pl.DataFrame({"cfg.model.name": ["causal", "causal"], "cfg.model.feature_depth": ["conv9", "conv9"],
                       "cfg.model.m_finetune.eps": [0.1, None]})
    assert labels.label_models(ft)["model"].to_list() == [labels.OURS_FT, labels.OURS]


def test_robustness_table_cells_and_checks() -> None:
    ours, gbz = MODELS[6], MODELS[4]
    rows = []
    for seed, (a, b) in enumerate([(0.6, 0.3), (0.8, 0.5)]):
        rows += _rows(ours, seed, f"o{seed}", [("pgd", 0.1, a), ("fgsm", 0.2, 0.85)], 0.9)
        rows += _rows(gbz, seed, f"g{seed}", [("pgd", 0.1, b)], 0.8)
    df = labels.label_models(pl.DataFrame(rows))
    t = curves.robustness_table(df)
    assert t.id == "fig-robustness" and t.rows == labels.MODELS
    cell = dict(zip(t.frame["Model"], t.frame["PGD ε=0.1"]))
    assert cell["Ours (shallow)"].startswith("0.700 ±") and cell["GBZ-CONV9"].startswith("0.400 ±")
    assert cell["VGG16"] == "—"
    checks = {c.name: c for c in curves.robustness_checks(df)}
    assert checks["causal-beats-gbz-pgd"].holds is True
    assert checks["causal-fgsm-drop-below-0.1"].holds is True  # 0.9 - 0.85 = 0.05
    assert checks["causal-pgd-0.1-at-0.5"].holds is True
    assert checks["causal-beats-all-baselines-pgd"].holds is None  # VGG16 etc. have no rows
    assert checks["vgg16-collapses"].holds is None


def test_table2_reads_three_experiments_and_one_row_per_trial() -> None:
    def exp(acc_shallow: float, acc_deep: float, shallow: str, deep: str) -> pl.DataFrame:
        r = _rows(("causal", None, shallow, ""), 0, f"s{shallow}", [("fgsm", 0.0, 0.1), ("pgd", 0.1, 0.0)],
                  acc_shallow)
        r += _rows(("causal", None, deep, ""), 0, f"d{deep}", [("none", 0.0, 0.0)], acc_deep)
        r += _rows(("cnn", None, None, ""), 0, "cnn", [("fgsm", 0.0, 0.0)], 0.99)  # not a causal row: ignored
        return pl.DataFrame(r)

    ctx = PaperContext({labels.C10: exp(0.90, 0.93, "conv9", "conv13+fc1"), labels.C100: exp(0.70, 0.71, "conv12",
                        "conv13+fc1"), labels.TINY: exp(0.5, 0.4, "conv14", "conv16+fc2")}, Path("."), "ci")
    t = p000.table2(ctx)
    assert dict(zip(t.frame["Dataset / Model"], t.frame["Acc"])) == dict(zip(labels.TABLE2.values(), [
        "0.900", "0.930", "0.700", "0.710", "0.500", "0.400"]))
    assert [c.holds for c in p000.table2_checks(ctx)] == [True, True, False]


def test_speed_table_and_checks() -> None:
    rows = []
    for m, speeds in ((MODELS[6], (10, 10)), (MODELS[0], (1, 2)), (MODELS[4], (3, 4))):
        for method, s in zip(("cf-ifgsm", "cf-pgd"), speeds):
            for e in labels.SPEED_EPS:
                rows += [{**r, "value": float(s), "m.cf_reached": float(s < 10)} for r in
                         _rows(m, 0, f"{m[3]}{e}", [(method, e, 0.3)], 0.9)]
    df = labels.label_models(pl.DataFrame(rows))
    t = curves.speed_table(df)
    cells = dict(zip(t.frame["Model"], t.frame["I-FGSM ε=0.1"]))
    assert cells["Ours (shallow)"] == "10.0" and cells["VGG16"] == "1.0"
    assert [c.holds for c in curves.speed_checks(df)] == [True, True, True, True]  # GBZ 3 iterations > VGG16 1


def test_empty_run_builds_every_declared_table_and_the_reference_file_matches(tmp_path: Path) -> None:
    paper = get_paper("000")
    sections = paper.build(PaperContext({}, tmp_path, "ci"))
    tables = {t.id: t for s in sections for t in s.tables}
    assert set(tables) == set(paper.tables)
    assert tables["table1"].rows == labels.TABLE1_MODELS and "Deep CAMA" in paper.notes  # its build is described
    assert len(tables["table1"].missing) == 2 * len(labels.TABLE1_MODELS)  # nothing ran: every cell "—" and missing
    refs = load_references(paper.reference_file)
    validate_references(refs, tables)  # every reference names a row and column the builder prints
    assert {r.table for r in refs} <= set(tables)


def test_table1_roar_cells_and_checks() -> None:
    """Table 1 shows m.roar_degradation of the roar-ig rows under "ROAR", the control beside it."""
    degr = {"VGG16": 0.2, "DBX-FC1": 0.25, "Deep CAMA": 0.1, "GBZ-CONV9": 0.3, "GBY-CONV9": 0.35, "Ours (deep)": 0.4}
    models = {m[3]: m for m in MODELS}
    rows = []
    for label, d in [*degr.items(), ("Ours (shallow)", 0.5)]:
        for seed, jitter in enumerate((-0.01, 0.01)):
            for attack, value in (("roar-ig", d + jitter), ("roar-random", 0.05)):
                rows += [{**r, "eps": None, "m.roar_degradation": value}
                         for r in _rows(models[label], seed, f"{label}{seed}", [(attack, 0.3, 0.9 - value)], 0.9)]
    df = labels.label_models(pl.DataFrame(rows))
    t = p000.table1(df)
    assert t.id == "table1" and t.rows == labels.TABLE1_MODELS
    cells = dict(zip(t.frame["Network"], t.frame["ROAR"]))
    assert cells["Ours (shallow)"].startswith("0.500 ±") and cells["VGG16"].startswith("0.200 ±")
    assert cells["Deep CAMA"].startswith("0.100 ±") and t.missing == []
    assert dict(zip(t.frame["Network"], t.frame["Random pixels (control)"]))["GBZ-CONV9"].startswith("0.050")
    checks = {c.name: c for c in p000.roar_checks(df)}
    assert [checks[k].holds for k in ("roar-causal-shallow-highest", "roar-shallow-above-deep", "roar-ig-above-random",
                                      "roar-deep-cama-lowest")] == [True, True, True, True]
    lower = df.with_columns(pl.when((pl.col("model") == "GBY-CONV9") & (pl.col("attack") == "roar-ig"))
                            .then(0.6).otherwise(pl.col("m.roar_degradation")).alias("m.roar_degradation"))
    assert {c.name: c.holds for c in p000.roar_checks(lower)}["roar-causal-shallow-highest"] is False
    cama_up = df.with_columns(pl.when((pl.col("model") == "Deep CAMA") & (pl.col("attack") == "roar-ig"))
                              .then(0.22).otherwise(pl.col("m.roar_degradation")).alias("m.roar_degradation"))
    assert {c.name: c.holds for c in p000.roar_checks(cama_up)}["roar-deep-cama-lowest"] is False  # above VGG16


def test_roar_file_trains_exactly_the_robustness_models_and_removes_30_percent() -> None:
    from robustsweep.config.spec import load_spec

    def trials(file: str, scale: str) -> list[dict]:
        return load_spec(Path(p000.__file__).parents[3] / "experiments" / file, scale=scale).expand()

    for scale in ("ci", "paper"):
        roar = trials("p000_cifar10_roar.yaml", scale)
        key = lambda t: repr((t["model"], t["dataset"], t["train"], t["seed"]))  # noqa: E731
        main = {key(t) for t in trials("p000_cifar10.yaml", scale)}
        # every Table 1 network of the robustness file (its extra fine-tuned-m row is not one), read from the cache
        extra = {key(t) for t in trials("p000_cifar10.yaml", scale)
                 if t["model"]["name"] == "causal" and "m_finetune" in t["model"]}
        assert {key(t) for t in roar} == main - extra and len(extra) == (3 if scale == "paper" else 2)
        assert all(t["attacks"] == [{"name": "roar", "method": ["ig", "random"], "fraction": 0.3, "baseline": "zero",
                                     "steps": 16 if scale == "ci" else 50}] for t in roar)


@pytest.mark.parametrize("speed_file, main_file", [("p000_cifar10_speed.yaml", "p000_cifar10.yaml"),
                                                  ("p000_cifar100_speed.yaml", "p000_cifar100.yaml")])
def test_speed_file_trains_exactly_the_robustness_models(speed_file: str, main_file: str) -> None:
    """The speed file reads its models from the cache: each of its (model, data, train, seed) must be a main-file trial."""
    from robustsweep.config.spec import load_spec

    def keys(file: str, scale: str) -> set[str]:
        return {repr((t["model"], t["dataset"], t["train"], t["seed"])) for t in
                load_spec(Path(p000.__file__).parents[3] / "experiments" / file, scale=scale).expand()}

    for scale in ("ci", "paper"):
        speed = keys(speed_file, scale)
        assert len(speed) == 3 * (3 if scale == "paper" else 2) and speed <= keys(main_file, scale)


def test_fig5_runs_fig4s_models_and_attacks_on_cifar100() -> None:
    """Fig. 5 is Fig. 4 on CIFAR-100: the same eight models (the shallow causal tap at conv12, Table 2), attacks and
    training, and its deep causal model is Table 2's CIFAR-100 deep row."""
    from robustsweep.config.spec import load_spec

    def trials(file: str, scale: str) -> list[dict]:
        return load_spec(Path(p000.__file__).parents[3] / "experiments" / file, scale=scale).expand()

    for scale in ("ci", "paper"):
        c10, c100 = trials("p000_cifar10.yaml", scale), trials("p000_cifar100.yaml", scale)
        names = lambda ts: sorted(labels.label_models(pl.DataFrame(  # noqa: E731
            [{"cfg.model.name": t["model"]["name"], "cfg.model.head": t["model"].get("head"),
              "cfg.model.feature_depth": t["model"].get("feature_depth"),
              "cfg.model.m_finetune.eps": (t["model"].get("m_finetune") or {}).get("eps")} for t in ts],
            schema_overrides={"cfg.model.head": pl.String, "cfg.model.feature_depth": pl.String,
                              "cfg.model.m_finetune.eps": pl.Float64}))["model"].to_list())
        assert names(c100) == names(c10) and set(names(c100)) == set(labels.MODELS)
        assert [t["attacks"] for t in c100] == [t["attacks"] for t in c10][: len(c100)]
        assert {t["dataset"]["name"] for t in c100} == {"cifar100" if scale == "paper" else "mnist5k"}
        if scale == "paper":
            assert {t["model"]["feature_depth"] for t in c100 if t["model"]["name"] == "causal"} == {
                "conv12", "conv13+fc1"}


def test_fig5_tables_checks_and_the_cross_dataset_check() -> None:
    ours, gbz, vgg = MODELS[6], MODELS[4], MODELS[0]
    rows, speed = [], []
    for seed in (0, 1):
        rows += _rows(ours, seed, f"o{seed}", [("pgd", 0.1, 0.3 + 0.1 * seed), ("fgsm", 0.2, 0.55)], 0.6)
        rows += _rows(gbz, seed, f"g{seed}", [("pgd", 0.1, 0.2)], 0.5)
        for m, s in ((ours, 10.0), (gbz, 1.0), (vgg, 1.0)):
            speed += [{**r, "value": s, "m.cf_reached": float(s < 10)}
                      for r in _rows(m, seed, f"{m[3]}{seed}", [("cf-ifgsm", 0.1, 0.3)], 0.6)]
    df, sp = labels.label_models(pl.DataFrame(rows)), labels.label_models(pl.DataFrame(speed))
    t = curves.robustness_table(df, curves.FIG5)
    assert t.id == "fig5-robustness" and "CIFAR-100" in t.title
    assert dict(zip(t.frame["Model"], t.frame["PGD ε=0.1"]))["Ours (shallow)"].startswith("0.350 ±")
    checks = {c.name: c.holds for c in curves.robustness_checks(df, curves.FIG5)}
    assert all(n.endswith("-cifar100") for n in checks)
    assert "causal-pgd-0.05-above-0.8-cifar100" not in checks  # a CIFAR-10 claim only (§4.2)
    assert checks["causal-beats-gbz-pgd-cifar100"] is True and checks["causal-fgsm-drop-below-0.1-cifar100"] is True
    sc = {c.name: c.holds for c in curves.speed_checks(sp, curves.FIG5)}
    assert sc["gbz-ifgsm-single-step-cifar100"] is True and sc["causal-ifgsm-speed-at-cap-cifar100"] is True
    assert "gbz-ifgsm-slower-than-vgg16" in {c.name for c in curves.speed_checks(sp)}  # Fig. 4's GBZ claim instead
    c10 = df.with_columns(pl.col("adv_accuracy") + 0.2)
    assert [c.holds for c in curves.cross_checks(c10, df)] == [True]
    assert [c.holds for c in curves.cross_checks(df, c10)] == [False]
