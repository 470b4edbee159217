"""Experiment files: parse (safe YAML), validate (pydantic, the registries, config/domains.py), expand into trials.

Why we expand the search space ourselves instead of handing Ray Tune its ``grid_search``/``uniform`` objects: the
trials must be known *before* anything runs (``status`` counts pending trials, ``resume`` finds missing ones, SLURM
array mode maps one task per trial), each with a stable identity (a hash of its full config) that makes the Parquet
store exactly-once. Random dimensions are drawn from a generator seeded by ``sample_seed`` (reproducible).
"""
from __future__ import annotations

import copy
import functools
import itertools
import math
import textwrap
import typing
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model, model_serializer, model_validator

from robustsweep.config.domains import name_violation, search_violation, trial_violation
from robustsweep.config.eval_options import EvalOptions
from robustsweep.config.grid import ATTACK_META, annotation_is_list
from robustsweep.config.identity import config_hash
from robustsweep.config.needs import needs_problem
from robustsweep.config.pydantic_errors import format_validation_error
from robustsweep.config.reach import reach_problem
from robustsweep.config.train_options import AdversarialTrainSpec, TrainOptions
from robustsweep.config.trial import Trial
from robustsweep.errors import SpecError  # noqa: F401 -- callers import SpecError from this module
from robustsweep.registry import ATTACKS, DATASETS, DETECTORS, MODELS, Registry, backend_sections


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentSpec(BaseModel):
    """A registry entry by name plus its keyword parameters (checked against the entry's signature later)."""

    model_config = ConfigDict(extra="allow")
    name: str


TrainSpec = TrainOptions  # the experiment file's train section is the trial's (config/train_options.py)
__all__ = ["AdversarialTrainSpec", "TrainSpec", "config_hash"]  # re-exported: their old home


class EvalSpec(EvalOptions):
    """The experiment file's ``eval`` section: the trial's :class:`EvalOptions` plus run-time knobs that change no
    result and so are no part of a trial (the runner reads them from the spec)."""

    batch_size: int = 500  # attack batch size (memory knob, not a result-changing setting)
    device: str = "auto"  # auto = cuda when available

    @model_serializer(mode="wrap")
    def _identity_dump(self, handler: Any) -> Any:
        """Every key: this dump is the spec stored in ``sweep.json``, not a trial's identity (:meth:`options`)."""
        return handler(self)

    def options(self) -> EvalOptions:
        """The trial's part of this section (already validated)."""
        return EvalOptions.model_construct(**{k: getattr(self, k) for k in EvalOptions.model_fields})


class ResourcesSpec(_Strict):
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractional values pack several small trials onto one GPU
    # infrastructure failures (a node or actor lost, a worker killed) are retried this many times on any live node;
    # an exception raised by the trial's own code is never retried (runners/tune.py)
    max_retries: int = Field(2, ge=0, le=100)


class SearchDim(_Strict):
    """One axis of the search space: exactly one of the fields is set."""

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SearchDim:
        set_ = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError(f"give exactly one of grid, choice, uniform, loguniform, randint (got {set_ or 'none'})")
        kind = set_[0]
        if kind in ("grid", "choice") and not getattr(self, kind):
            raise ValueError(f"{kind} is empty: list at least one value")
        if kind == "loguniform" and min(self.loguniform) <= 0:
            raise ValueError("loguniform bounds must be > 0")
        if kind in ("uniform", "loguniform", "randint"):
            lo, hi = getattr(self, kind)
            if not lo < hi:
                raise ValueError(f"{kind} needs lower < upper, got [{lo}, {hi}]")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)


# ---------------------------------------------------------------------------------------------------- backend sections
# Each registered backend with an ``options_key`` has its own section of the file (``slurm:``, after ``resources``),
# found through the registry (config/ sits below the runners; a new backend needs no edit here). Kept as given, a
# mapping; spec_from_dict checks it with the backend's options_model(); its make() reads Spec.backend_options.
_SECTION, _SECTIONS_AFTER = TypeAdapter(dict[str, Any]), "resources"


@functools.cache
def _input_model(keys: tuple[str, ...]) -> type[BaseModel]:
    """The file's schema as a user reads it, :class:`Spec`'s keys and the sections ``keys``: errors are reported
    against it (a section named like any other key, in the same order; an unknown key lists the sections)."""
    fields: dict[str, Any] = {}
    for name, info in Spec.model_fields.items():
        fields[name] = (info.annotation, info)
        if name == _SECTIONS_AFTER:
            fields.update({k: (dict[str, Any], {}) for k in keys})
    return create_model("Spec", __base__=_Strict, __module__=__name__, **fields)


def spec_schema() -> type[BaseModel]:
    """:func:`_input_model` for the backends registered now (their keys are none of Spec's: test_backend_plugin)."""
    return _input_model(tuple(backend_sections()))


class Spec(_Strict):
    name: str
    paper: str | None = None  # which seed paper / table / figure this reproduces
    description: str | None = None
    dataset: ComponentSpec
    model: ComponentSpec
    train: TrainSpec = TrainSpec()
    eval: EvalSpec = EvalSpec()
    attacks: list[ComponentSpec] = []
    detectors: list[ComponentSpec] = []
    seed: int = 0
    search: dict[str, SearchDim] = {}
    num_samples: int = 1  # draws of the random dimensions (multiplies the grid)
    sample_seed: int = 0
    resources: ResourcesSpec = ResourcesSpec()
    _backend_options: dict[str, dict[str, Any]] = {}  # then the backends' non-empty sections (see above)
    scale: Literal["ci", "mini", "paper"] | None = None  # set by the loader (config/scales.py): the size this spec is at
    smoke: bool = False  # set by the loader: shrunk by --smoke
    has_scales: bool = False  # set by the loader: the file offers both sizes (the sweep name says which)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Spec:
        """Validate; where that fails, raise the errors of :func:`spec_schema` (as a user reads the file)."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError:
            spec_schema().model_validate(obj, **kwargs)  # raises the same problems, each where the user wrote it
            raise

    @model_validator(mode="wrap")
    @classmethod
    def _backend_sections(cls, data: Any, handler: Any) -> Spec:
        """Take the registered backends' sections out of the mapping (kept aside, as given); the rest is the spec."""
        if not isinstance(data, dict) or not (keys := backend_sections()).keys() & data.keys():
            return handler(data)
        spec = handler({k: v for k, v in data.items() if k not in keys})
        spec._backend_options = {k: v for k in keys if k in data and (v := _SECTION.validate_python(data[k]))}  # {}: none
        return spec

    @model_serializer(mode="wrap")
    def _dump_sections(self, handler: Any, info: Any) -> Any:
        """Each registered backend's section after ``resources``, ``{}`` where none was given (``sweep.json``'s ``slurm``)."""
        items = list(handler(self).items())
        at = next((i + 1 for i, (k, _) in enumerate(items) if k == _SECTIONS_AFTER), len(items))
        sections = [(k, _SECTION.dump_python(self._backend_options.get(k, {}), mode=info.mode)) for k in backend_sections()
                    if k not in (info.exclude or ()) and (not info.include or k in info.include)]
        return dict(items[:at] + sections + items[at:])

    def backend_options(self, key: str) -> dict[str, Any]:
        """The experiment file's section ``key`` of a backend (``slurm``), as given; ``{}`` where it has none."""
        return dict(self._backend_options.get(key, {}))

    @property
    def sweep_name(self) -> str:
        """Default sweep folder: ``<name>-<scale>[-smoke]`` for two-size files, else ``name`` (config/scales.py)."""
        from robustsweep.config.scales import sweep_name

        return sweep_name(self.name, self.scale, self.smoke, self.has_scales)

    def base_config(self) -> dict[str, Any]:
        """The per-trial config before search values are applied (what a trial is a pure function of); the typed
        sections dump by the identity rule (config/identity.py)."""
        return {
            "dataset": self.dataset.model_dump(),
            "model": self.model.model_dump(),
            "train": self.train.model_dump(),
            "eval": self.eval.options().model_dump(),
            "attacks": [a.model_dump() for a in self.attacks],
            "detectors": [d.model_dump() for d in self.detectors],
            "seed": self.seed,
        }

    def expand(self) -> list[dict[str, Any]]:
        """All concrete trial configs, each with ``trial_id`` (hash of the config) and ``config_hash`` (same,
        seed excluded: the key that groups a config's seeds for mean/std). Validated against the registries."""
        return expand(self)


# ---------------------------------------------------------------------------------------------------- expansion
def _set_path(cfg: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.0.c`` in nested dicts/lists; numeric segments index lists (``attacks.0.eps``)."""
    parts = path.split(".")
    node: Any = cfg
    for i, p in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise SpecError(f"search.{path}: {'.'.join(parts[:i + 1])} has no item {p}")
            node = node[int(p)]
        else:
            if p not in node:
                raise SpecError(f"search.{path}: no key {p!r} at {'.'.join(parts[:i]) or 'top level'}; "
                                f"allowed: {', '.join(sorted(node))}")
            node = node[p]
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise SpecError(f"search.{path}: list has no item {last}")
        node[int(last)] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[last] = copy.deepcopy(value)
    else:
        raise SpecError(f"search.{path}: {'.'.join(parts[:-1])} is a value, not a section")


def _sample(dim: SearchDim, rng: np.random.Generator) -> Any:
    k = dim.kind
    if k == "choice":
        return copy.deepcopy(dim.choice[int(rng.integers(len(dim.choice)))])
    if k == "uniform":
        return float(rng.uniform(*dim.uniform))
    if k == "loguniform":
        lo, hi = dim.loguniform
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    lo, hi = dim.randint
    return int(rng.integers(lo, hi))


def expand(spec: Spec) -> list[dict[str, Any]]:
    if (msg := search_violation(spec.base_config(), spec.search)) is not None:  # every value a draw could take
        raise SpecError(msg)
    grid_keys = [k for k, d in spec.search.items() if d.kind == "grid"]
    rand_keys = [k for k, d in spec.search.items() if d.kind != "grid"]
    rng = np.random.default_rng(spec.sample_seed)
    trials: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(spec.num_samples):
        draws = {k: _sample(spec.search[k], rng) for k in rand_keys}
        for combo in itertools.product(*(spec.search[k].grid for k in grid_keys)):
            cfg = spec.base_config()
            # whole-section values first (``model: {grid: [{...}, {...}]}``), then finer keys on top of them
            for key, value in sorted([*zip(grid_keys, combo), *draws.items()], key=lambda kv: kv[0].count(".")):
                _set_path(cfg, key, value)
            cfg = validate_trial(cfg).wire  # the Trial's own copy, with its ids (config/identity.py)
            if cfg["trial_id"] not in seen:  # identical points (e.g. a grid repeated) run once
                seen.add(cfg["trial_id"])
                trials.append(cfg)
    return trials


# ---------------------------------------------------------------------------------------------------- registry checks
def _check_component(where: str, comp: Any, reg: Registry, grid_ok: bool = False,
                     reserved: tuple[str, ...] = ()) -> None:
    if not isinstance(comp, dict) or "name" not in comp:
        raise SpecError(f"{where}: expected a mapping with a 'name' key (one of: {', '.join(reg.names())})")
    name = comp["name"]
    if name not in reg:
        raise SpecError(f"{where}.name: unknown {reg.kind} {name!r}; allowed: {', '.join(reg.names())}")
    params = reg.settable_params(name)
    try:
        hints = typing.get_type_hints(reg.get(name).fn)
    except Exception:  # unresolvable annotation: skip type checks, keep key checks
        hints = {}
    lists = []
    for key, value in comp.items():
        if key == "name" or key in reserved:
            continue
        if key not in params:
            raise SpecError(f"{where}.{key}: not a parameter of {reg.kind} {name!r}; "
                            f"allowed: {', '.join(sorted(params)) or '(none)'}")
        values = [value]
        if grid_ok and isinstance(value, list) and not annotation_is_list(hints.get(key)):
            if not value:
                raise SpecError(f"{where}.{key}: empty grid; list at least one value")
            lists.append(key)
            values = value
        if key in hints:
            ta = TypeAdapter(hints[key])
            for v in values:
                try:
                    ta.validate_python(v, strict=False)
                except ValidationError as e:
                    msg = e.errors()[0]["msg"]
                    raise SpecError(f"{where}.{key}: {msg} (got {v!r}; expected {_type_name(hints[key])})") from None
    if len(lists) > 1:
        raise SpecError(f"{where}: only one parameter may be a list (the attack's grid), got {', '.join(lists)}; "
                        f"use one attack entry per grid")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def validate_trial(cfg: dict[str, Any]) -> Trial:
    """Check every value of one concrete trial against its domain (config/domains.py), every component against its
    registry (names, parameter keys and types), that the model provides what every attack and detector needs
    (config/needs.py), that every iterative attack can reach its ε (config/reach.py); return it typed."""
    if (msg := trial_violation(cfg)) is not None:
        raise SpecError(msg)
    _check_component("dataset", cfg["dataset"], DATASETS)
    _check_component("model", cfg["model"], MODELS)
    for name in (cfg.get("eval") or {}).get("correct_for") or []:  # each compared model takes the trial's options
        _check_component("eval.correct_for", {**cfg["model"], "name": name}, MODELS)
    for i, a in enumerate(cfg["attacks"]):
        # `label` names the attack's rows (column `attack`) when one attack is listed twice (e.g. PGD and MIM transfer)
        # `n_eval` attacks only the first n of the trial's attacked points (config/grid.py ATTACK_META)
        _check_component(f"attacks.{i}", a, ATTACKS, grid_ok=True, reserved=ATTACK_META)
        if isinstance(a, dict) and isinstance(a.get("n_eval"), list):
            raise SpecError(f"attacks.{i}.n_eval: one number (the attacked points of this attack), not a grid; "
                            f"got {a['n_eval']!r}")
        if (msg := reach_problem(f"attacks.{i}", a)) is not None:
            raise SpecError(msg)
    for i, d in enumerate(cfg["detectors"]):
        # `label` names the detector's result columns (det.<label>.*) when one detector is used twice
        _check_component(f"detectors.{i}", d, DETECTORS, reserved=("label",))
    if (msg := needs_problem(cfg)) is not None:
        raise SpecError(msg)
    return Trial.from_dict(cfg)


# ---------------------------------------------------------------------------------------------------- loading
def parse_override(text: str) -> tuple[str, Any]:
    """``--set train.epochs=2`` -> ("train.epochs", 2); the value is parsed as YAML (safe)."""
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.epochs=2")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, scale: str | None = None,
              smoke: bool = False, prefer: str | None = None) -> Spec:
    """Read and validate an experiment file at ``scale`` (config/scales.py; None = the file's default), shrunk by
    ``smoke``, with ``--set`` overrides applied last; raise SpecError (nothing run) on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"cannot read experiment file {path}: {e.strerror}") from None
    try:
        doc = yaml.safe_load(text)  # safe loader: a spec can never construct objects or run code
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"{path}: expected a mapping at top level (name, dataset, model, attacks, …)")
    from robustsweep.config.scales import resolve_scale, set_path

    has_scales = bool(doc.get("scales"))
    doc = resolve_scale(doc, scale, smoke=smoke, prefer=prefer, source=str(path))
    doc["has_scales"] = has_scales
    for o in overrides:
        k, v = parse_override(o)
        try:
            set_path(doc, k, v)
        except (IndexError, ValueError, TypeError, AttributeError):
            raise SpecError(f"--set {o}: no such place in the experiment file") from None
    return spec_from_dict(doc, source=str(path))


def spec_from_dict(doc: dict[str, Any], source: str = "<spec>") -> Spec:
    try:
        spec = Spec.model_validate(doc)
    except ValidationError as e:
        msg = textwrap.indent(format_validation_error(e, root=spec_schema()), "  ")
        raise SpecError(f"{source}: invalid experiment file\n{msg}") from None
    if (msg := name_violation("name", spec.name)) is not None:
        raise SpecError(f"{source}: invalid experiment file\n  {msg}")
    try:
        for key, entry in backend_sections().items():  # each backend's section by its own model (``slurm.mem: ...``)
            if (section := spec.backend_options(key)) and (model := entry.fn().options_model()) is not None:
                try:
                    model.model_validate(section)
                except ValidationError as e:
                    raise SpecError(format_validation_error(e, prefix=key, root=model)) from None
        trials = spec.expand()
    except SpecError as e:
        raise SpecError(f"{source}: invalid experiment file\n" + textwrap.indent(str(e), "  ")) from None
    if not trials:
        raise SpecError(f"{source}: the search space is empty (no trials)")
    return spec


