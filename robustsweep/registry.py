"""One tiny registry shared by datasets, models, attacks and detectors.

Why: an experiment file names every component as a string (``model: {name: gfz}``), the spec validator
needs the list of allowed names for its error messages, and ``robustsweep list`` prints them with one line
of help each. Modelled on timm's ``register_model``: a decorator on a plain function.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """A registered factory plus what the rest of the code may know about it without calling it.

    ``meta`` is declared at registration (``@ATTACKS.register("pgd", norm="linf", threat="white-box")``) and read by
    validation, the evaluator and the registry-wide contract tests instead of hand-kept lists. Keys in use:

    - attacks: ``norm`` ("linf" | "l2" | None: no ε-ball), ``budget`` (the parameter that is the ball's radius),
      ``threat`` ("white-box" | "score" | "transfer"), ``needs`` (a model capability, e.g. "gmmvae"),
      ``iterative`` (has ``steps`` and ``step_size`` that must be able to reach ``eps``), ``queries`` (a score-based
      attack's parameter giving its queries per step, cut by ``--smoke``), ``prepare`` (a function
      ``prepare(model, data, cfg, log)`` the trial calls once before attacking: e.g. the transfer attacks' training
      data);
    - models: ``kind`` ("generative" | "discriminative"), ``stochastic`` (fresh random draws per call),
      ``input`` ("any" | "image32": needs 32×32 colour images, e.g. VGG/ResNet), ``ci`` (keyword arguments of a
      small instance that trains on 8×8 digits: what the contract tests build), ``ci_epochs`` (its epochs there);
    - detectors: ``calibration`` ("train" | "validation": the split its threshold is fitted on),
      ``needs`` (a model capability);
    - backends: ``options_key`` (the backend's own section of the experiment file, e.g. ``slurm``, or None; the
      entry's factory is the backend class, whose ``options_model()`` that section is validated against).
    """

    name: str
    fn: Callable[..., Any]
    help: str
    meta: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, inspect.Parameter]:
        """Keyword parameters an experiment file may set for this entry (``**kwargs`` excluded)."""
        sig = inspect.signature(self.fn)
        skip = {inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL}
        return {k: p for k, p in sig.parameters.items() if p.kind not in skip}

    def defaults(self) -> dict[str, Any]:
        """The signature defaults of :meth:`params` (parameters without one are left out): what an experiment file
        gets for a key it does not set."""
        return {k: p.default for k, p in self.params().items() if p.default is not inspect.Parameter.empty}


class Registry:
    """Name -> factory function. ``kind`` is only used in error messages."""

    def __init__(self, kind: str, package: str, hidden_params: tuple[str, ...] = ()):
        self.kind = kind
        self.package = package  # imported on first lookup; its modules register themselves
        # arguments the runner passes itself (e.g. input_shape, num_classes); not settable from a spec
        self.hidden_params = hidden_params
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, name: str, help: str | None = None, **meta: Any) -> Callable:
        def deco(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            doc = help or (inspect.getdoc(fn) or "").split("\n")[0]
            self._entries[name] = Entry(name, fn, doc, dict(meta))
            return fn

        return deco

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a throw-away model clean up with this)."""
        self._load()
        self._entries.pop(name, None)

    def where(self, **meta: Any) -> list[Entry]:
        """Entries whose metadata has every given key = value (``ATTACKS.where(norm="linf")``)."""
        return [e for e in self.entries() if all(e.meta.get(k) == v for k, v in meta.items())]

    def get(self, name: str) -> Entry:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self._entries))}"
            ) from None

    def settable_params(self, name: str) -> dict[str, inspect.Parameter]:
        return {k: p for k, p in self.get(name).params().items() if k not in self.hidden_params}

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        self._load()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def _load(self) -> None:
        """Import the package whose modules register entries (lazily: importing the registry stays cheap, and a
        broken attack module cannot break data loading)."""
        if not self._loaded:
            importlib.import_module(self.package)
            self._loaded = True


def import_submodules(package: str, path: list[str], skip: tuple[str, ...] = ()) -> None:
    """Import every public module of a package (names not starting with ``_``), so that a new registry entry is one
    new file: the package's ``__init__`` calls this instead of listing its modules (which a second file edit would
    have to keep in step). Sorted for a deterministic registration order."""
    import pkgutil

    for m in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if not m.name.startswith("_") and m.name not in skip:
            importlib.import_module(f"{package}.{m.name}")


DATASETS = Registry("dataset", "robustsweep.data", hidden_params=("root", "seed"))
MODELS = Registry("model", "robustsweep.models", hidden_params=("input_shape", "num_classes"))
ATTACKS = Registry("attack", "robustsweep.attacks", hidden_params=("model", "x", "y"))
DETECTORS = Registry("detector", "robustsweep.detect")
# evaluation steps (core/steps/): not part of REGISTRIES -- an experiment file switches them on through its ``eval``
# options, never names them; ``order`` in their metadata is the order the evaluation loop calls them in
STEPS = Registry("evaluation step", "robustsweep.core.steps")
# backends (runners/backends/: one module each, heavy parts imported lazily): the CLI's --backend choices, what
# status / resume / the running markers ask of a scheduler, and the experiment file's backend sections (``slurm:``)
# -- read here so those layers (and config/) never import the runners
BACKENDS = Registry("backend", "robustsweep.runners.backends")


def backend_sections() -> dict[str, Entry]:
    """{section key: backend} for every registered backend with its own section of the experiment file (its
    ``options_key`` metadata, e.g. ``slurm``), in the backends' order: what config/spec.py accepts besides its keys."""
    return {e.meta["options_key"]: e for e in BACKENDS.entries() if e.meta.get("options_key")}


REGISTRIES = {"datasets": DATASETS, "models": MODELS, "attacks": ATTACKS, "detectors": DETECTORS}
