"""Experiment files at two sizes (config/scales.py): overlays, --smoke, sweep names, and every shipped file."""
from __future__ import annotations

import pytest
import yaml

from robustsweep.config.scales import ScaleError, resolve_scale, smoke_overlay
from robustsweep.config.spec import SpecError, load_spec
from tests.conftest import REPO

DOC = {
    "name": "e", "dataset": {"name": "mnist"}, "model": {"name": "gfz", "dim_z": 64, "hidden": 500},
    "train": {"epochs": 100, "batch_size": 50},
    "attacks": [{"name": "fgsm", "eps": [0.1, 0.2]}, {"name": "pgd", "eps": [0.1, 0.3], "steps": 40, "step_size": 0.01}],
    "search": {"seed": {"grid": [0, 1, 2]}},
    "scales": {"ci": {"dataset": {"name": "digits"}, "model": {"dim_z": 16}, "attacks.1.steps": 10,
                      "attacks.1.step_size": 0.04}},
}


def test_overlay_merges_mappings_sets_dotted_keys_and_records_the_scale():
    ci = resolve_scale(DOC, "ci")
    assert ci["dataset"] == {"name": "digits"}
    assert ci["model"] == {"name": "gfz", "dim_z": 16, "hidden": 500}  # merged key by key
    assert ci["attacks"][1] == {"name": "pgd", "eps": [0.1, 0.3], "steps": 10, "step_size": 0.04}
    assert ci["attacks"][0] == DOC["attacks"][0] and "scales" not in ci and ci["scale"] == "ci"
    paper = resolve_scale(DOC, None)  # the top of the file is its default (paper) size
    assert paper["dataset"] == {"name": "mnist"} and paper["scale"] == "paper" and not paper["smoke"]
    assert DOC["attacks"][1]["steps"] == 40  # the document itself is untouched
    assert resolve_scale(DOC, None, prefer="ci")["scale"] == "ci"


def test_unknown_or_absent_scales_are_refused_with_what_exists():
    with pytest.raises(ScaleError, match="unknown scale"):
        resolve_scale(DOC, "huge")
    with pytest.raises(ScaleError, match="scales.tiny: unknown scale"):
        resolve_scale({**DOC, "scales": {"tiny": {}}})
    one = {k: v for k, v in DOC.items() if k != "scales"}
    with pytest.raises(ScaleError, match="offers paper"):
        resolve_scale(one, "ci")
    with pytest.raises(ScaleError, match="no such place"):
        resolve_scale({**DOC, "scales": {"ci": {"attacks.7.steps": 1}}}, "ci")


def test_smoke_keeps_the_travel_of_iterative_attacks_and_shrinks_the_rest():
    o = smoke_overlay(resolve_scale(DOC, "paper"))
    assert o["train.epochs"] == 1 and o["eval.n_eval"] == 24 and o["search.seed.grid"] == [0]
    assert o["attacks.1.steps"] == 3 and o["attacks.1.step_size"] == pytest.approx(40 * 0.01 / 3)
    assert not any(k.startswith("attacks.0") for k in o)  # FGSM has no steps
    # signature defaults count too: the energy detector's fitting PGD (10 x 1/255 by default) keeps its travel
    o = smoke_overlay({**resolve_scale(DOC, "paper"), "detectors": [{"name": "energy"}, {"name": "logit"}]})
    assert o["detectors.0.fit_steps"] == 3 and o["detectors.0.fit_step_size"] == pytest.approx(10 / 255 / 3)
    assert not any(k.startswith("detectors.1") for k in o)


def test_smoke_cuts_the_queries_per_step_of_every_score_attack_its_entry_names():
    """Registry-driven: every attack whose entry declares ``queries=`` gets that knob cut (file value or signature
    default), and no other attack gains a key it does not have."""
    from robustsweep.registry import ATTACKS

    score = [n for n in ATTACKS.names() if ATTACKS.get(n).meta.get("queries")]
    assert {"zoo", "spsa"} <= set(score)
    doc = {**resolve_scale(DOC, "paper"), "attacks": [{"name": n} for n in score] + [{"name": "zoo", "coords": 4}]}
    o = smoke_overlay(doc)
    for i, n in enumerate(score):
        knob = ATTACKS.get(n).meta["queries"]
        assert ATTACKS.get(n).defaults()[knob] > 8 and o[f"attacks.{i}.{knob}"] == 8
    assert f"attacks.{len(score)}.coords" not in o  # already at most 8: untouched


def test_load_spec_names_the_sweep_by_scale_and_validates_after_the_overlay(tmp_path):
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(DOC))
    assert load_spec(f, scale="ci").sweep_name == "e-ci"
    assert load_spec(f, scale="ci", smoke=True).sweep_name == "e-ci-smoke"
    assert load_spec(f).sweep_name == "e-paper"
    bad = {**DOC, "scales": {"ci": {"attacks.1.step_size": 0.001}}}  # 40 x 0.001 cannot reach 0.3
    f.write_text(yaml.safe_dump(bad))
    load_spec(f)  # the paper size is fine
    with pytest.raises(SpecError, match="cannot reach"):
        load_spec(f, scale="ci")


EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_file_loads_at_each_of_its_scales_with_the_same_grid_shape(path):
    doc = yaml.safe_load(path.read_text())
    assert doc.get("paper"), f"{path.name}: say which paper / table / figure it reproduces (paper: ...)"
    if not doc.get("scales"):  # one-size files: the quickstart demo and single-purpose ablations
        load_spec(path)
        return
    ci, paper = load_spec(path, scale="ci"), load_spec(path, scale="paper")
    # the two sizes must differ somewhere (a forgotten overlay); usually data or model, for synthetic data (paper 001
    # Fig. 2's two rings, the paper's own set-up already runs in seconds) possibly only an evaluation setting
    assert ci.dataset.name != paper.dataset.name or ci.model != paper.model or ci.base_config() != paper.base_config(), \
        "the two sizes should differ"

    def shape(spec):  # what must match: attacks (names, labels, grid sizes) and the searched axes
        return ([(a.name, getattr(a, "label", None), sorted((k, len(v)) for k, v in a.model_dump().items()
                                                            if isinstance(v, list))) for a in spec.attacks],
                [d.name for d in spec.detectors], sorted(k for k in spec.search if k != "seed"))
    assert shape(ci) == shape(paper), f"{path.name}: the ci size must have the paper size's grid shape"
    load_spec(path, scale="ci", smoke=True).expand()
    if "mini" in (doc.get("scales") or {}):
        _check_mini(path, load_spec(path, scale="mini"), paper)


def _check_mini(path, mini, paper) -> None:
    """The mini contract (issue 20): the paper's architecture, likelihood, latent size, K, training settings, attack
    settings and detectors exactly; only the data (mnist5k), the epochs, the attacked points / detector fit size,
    the seeds and the resources may differ."""
    assert mini.dataset.name == "mnist5k", f"{path.name}: mini runs on mnist5k"
    assert mini.model == paper.model, f"{path.name}: mini must keep the paper's model settings"
    def settings(spec):  # an attack's own n_eval (its attacked points) may shrink; nothing else of it may change
        return [{k: v for k, v in a.model_dump().items() if k != "n_eval"} for a in spec.attacks]

    assert settings(mini) == settings(paper), f"{path.name}: mini must keep the paper's attack settings"
    assert mini.detectors == paper.detectors, f"{path.name}: mini must keep the paper's detectors"
    assert mini.train.model_dump(exclude={"epochs"}) == paper.train.model_dump(exclude={"epochs"}), \
        f"{path.name}: mini may change only the number of epochs of the training settings"
    assert mini.train.epochs <= paper.train.epochs
    assert {k: v for k, v in mini.search.items() if k != "seed"} == {k: v for k, v in paper.search.items()
                                                                     if k != "seed"}
    load_spec(path, scale="mini", smoke=True).expand()


def test_mini_keeps_the_paper_settings_and_a_changed_model_is_caught(tmp_path):
    """The check above would catch a mini overlay that changes the architecture (a test that can fail)."""
    doc = {**DOC, "scales": {**DOC["scales"], "mini": {"dataset": {"name": "mnist5k"}, "train": {"epochs": 1}}}}
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(doc))
    _check_mini(f, load_spec(f, scale="mini"), load_spec(f, scale="paper"))
    doc["scales"]["mini"]["model"] = {"dim_z": 8}
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(AssertionError, match="model settings"):
        _check_mini(f, load_spec(f, scale="mini"), load_spec(f, scale="paper"))
    # fewer attacked points for one attack are allowed; a changed attack setting is not
    doc["scales"]["mini"].pop("model")
    doc["scales"]["mini"]["attacks.0.n_eval"] = 2
    f.write_text(yaml.safe_dump(doc))
    _check_mini(f, load_spec(f, scale="mini"), load_spec(f, scale="paper"))
    doc["scales"]["mini"]["attacks.0.eps"] = 0.01
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(AssertionError, match="attack settings"):
        _check_mini(f, load_spec(f, scale="mini"), load_spec(f, scale="paper"))


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_file_accepts_the_scale_it_is_written_at(path):
    """``--scale`` naming a file's own size is the same as no ``--scale`` (issue 36: ``run quickstart.yaml --scale
    ci`` was refused because the laptop-first quickstart did not say it is written at ci)."""
    doc = yaml.safe_load(path.read_text())
    own = str(doc.get("scale") or "paper")
    assert resolve_scale(doc, own) == resolve_scale(doc, None)


def test_the_quickstart_is_a_ci_file():
    doc = yaml.safe_load((REPO / "experiments" / "quickstart.yaml").read_text())
    assert resolve_scale(doc, "ci")["dataset"] == {"name": "digits"}
