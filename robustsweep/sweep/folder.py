"""A sweep on disk: ``<results>/<sweep>/sweep.json`` holds the validated spec and the full list of trials.

Written before anything runs, so ``status`` knows what is pending and ``resume`` knows what is missing, whichever
machine (laptop, login node, compute node) asks.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustsweep.config.spec import Spec
from robustsweep.errors import UsageError
from robustsweep.store.atomic import atomic_write_bytes
from robustsweep.store.parquet import sweep_dir, trial_log_path, trial_status
from robustsweep.store.paths import check_name, ensure_inside

SWEEP_FILE = "sweep.json"


class SweepNotFound(UsageError, FileNotFoundError):
    """No sweep of that name under the results folder; the message lists the sweeps that are there."""


class SweepExists(UsageError):
    """A different spec already owns this sweep name."""


@dataclass
class Sweep:
    name: str
    results: Path
    spec: Spec
    trials: list[dict[str, Any]]

    @property
    def dir(self) -> Path:
        return sweep_dir(self.results, self.name)

    def log_path(self, trial_id: str) -> Path:
        return trial_log_path(self.results, self.name, trial_id)

    def pending(self) -> list[dict[str, Any]]:
        """Trials without a successful result file: never ran, failed, or left a corrupt file."""
        done = {tid for tid, s in trial_status(self.results, self.name).items() if s["status"] == "ok"}
        return [t for t in self.trials if t["trial_id"] not in done]


def prepare_sweep(spec: Spec, results: str | Path, name: str | None = None) -> Sweep:
    """Create (or reopen, if the spec is identical) the sweep folder and its trial list.

    The name (``--name``, else the spec's) must be a plain folder name and the folder must resolve inside
    ``results``, checked before anything is created: ``name: ../../etc`` is refused, nothing written.
    """
    name = check_name(name, "--name") if name is not None else check_name(spec.sweep_name, "name")
    trials = spec.expand()
    sw = Sweep(name, Path(results).expanduser().resolve(), spec, trials)
    ensure_inside(sw.dir, sw.results, f"sweep folder of {name!r}")
    path = sw.dir / SWEEP_FILE
    doc = {"name": name, "spec": spec.model_dump(mode="json"), "trials": trials}
    if path.exists():
        old = json.loads(path.read_text())
        if {t["trial_id"] for t in old["trials"]} != {t["trial_id"] for t in trials}:
            raise SweepExists(
                f"sweep {name!r} already exists in {sw.dir} with a different set of trials.\n"
                f"Pick a new name (--name), or `robustsweep resume {name}` to finish the existing one."
            )
        return sw
    doc["created_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    atomic_write_bytes(path, json.dumps(doc, indent=1, sort_keys=True, default=str).encode(), inside=sw.results)
    return sw


def load_sweep(results: str | Path, name: str) -> Sweep:
    """The sweep ``name`` as written by :func:`prepare_sweep`. Its name, the name and trial ids stored in its
    ``sweep.json`` (which a user may have edited) are checked like the ones given on the command line, so a resume
    cannot be led to write outside ``results`` either."""
    check_name(name, "sweep name")
    ensure_inside(sweep_dir(results, name), results, f"sweep folder of {name!r}")
    path = sweep_dir(results, name) / SWEEP_FILE
    if not path.exists():
        root = Path(results).expanduser().resolve()
        known = sorted(p.parent.name for p in root.glob(f"*/{SWEEP_FILE}")) if root.is_dir() else []
        raise SweepNotFound(
            f"no sweep {name!r} under {root}" + (f"; sweeps there: {', '.join(known)}" if known else
                                                 "; pass --results DIR where the sweep was written")
        )
    try:
        doc = json.loads(path.read_text())
    except ValueError as e:
        raise UsageError(f"{path} is not valid JSON ({e}); it was edited or damaged: restore it, or run the "
                         f"experiment file again under a new --name") from None
    check_name(doc.get("name", name), f"name in {path}")
    for t in doc.get("trials", []):
        check_name(t.get("trial_id"), f"a trial_id in {path}")
    # the spec was validated against the registries when the sweep was prepared and its trials are stored
    # expanded, so reading it back only needs the schema check: status and resume stay free of torch
    spec = Spec.model_validate(doc["spec"])
    return Sweep(name, Path(results).expanduser().resolve(), spec, doc["trials"])


def list_sweeps(results: str | Path) -> list[str]:
    root = Path(results).expanduser().resolve()
    return sorted(p.parent.name for p in root.glob(f"*/{SWEEP_FILE}")) if root.is_dir() else []


def resolve_sweep_name(results: str | Path, name: str, scale: str | None) -> str:
    """``name`` when that sweep exists, else ``name-<scale>`` (the name ``run --scale`` gives) when that one does."""
    check_name(name, "sweep name")
    if scale is None or (sweep_dir(results, name) / SWEEP_FILE).exists():
        return name
    scaled = f"{name}-{scale}"
    return scaled if (sweep_dir(results, scaled) / SWEEP_FILE).exists() else name
