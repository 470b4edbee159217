"""One tiny registry shared by datasets, models, attacks and detectors.

Why: an experiment file names every component as a string (``model: {name: gfz}``), the spec validator
needs the list of allowed names for its error messages, and ``robustsweep list`` prints them with one line
of help each. Modelled on timm's ``register_model``: a decorator on a plain function.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Entry:
    name: str
    fn: Callable[..., Any]
    help: str

    def params(self) -> dict[str, inspect.Parameter]:
        """Keyword parameters an experiment file may set for this entry (``**kwargs`` excluded)."""
        sig = inspect.signature(self.fn)
        skip = {inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL}
        return {k: p for k, p in sig.parameters.items() if p.kind not in skip}


class Registry:
    """Name -> factory function. ``kind`` is only used in error messages."""

    def __init__(self, kind: str, hidden_params: tuple[str, ...] = ()):
        self.kind = kind
        # arguments the runner passes itself (e.g. input_shape, num_classes); not settable from a spec
        self.hidden_params = hidden_params
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, help: str | None = None) -> Callable:
        def deco(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            doc = help or (inspect.getdoc(fn) or "").split("\n")[0]
            self._entries[name] = Entry(name, fn, doc)
            return fn

        return deco

    def get(self, name: str) -> Entry:
        _load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self._entries))}"
            ) from None

    def settable_params(self, name: str) -> dict[str, inspect.Parameter]:
        return {k: p for k, p in self.get(name).params().items() if k not in self.hidden_params}

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        _load_builtins()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: str) -> bool:
        _load_builtins()
        return name in self._entries


DATASETS = Registry("dataset", hidden_params=("root", "seed"))
MODELS = Registry("model", hidden_params=("input_shape", "num_classes"))
ATTACKS = Registry("attack", hidden_params=("model", "x", "y"))
DETECTORS = Registry("detector", hidden_params=())

REGISTRIES = {"datasets": DATASETS, "models": MODELS, "attacks": ATTACKS, "detectors": DETECTORS}

_loaded = False


def _load_builtins() -> None:
    """Import the packages whose modules register themselves (lazily, so importing the registry is cheap)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for pkg in ("robustsweep.data", "robustsweep.models", "robustsweep.attacks", "robustsweep.detect"):
        importlib.import_module(pkg)
