"""A sweep on disk: ``<results>/<sweep>/sweep.json`` holds the validated spec and the full list of trials.

Written before anything runs, so ``status`` knows what is pending and ``resume`` knows what is missing, whichever
machine (laptop, login node, compute node) asks.

``<sweep>/trial_ids.json`` is a small sidecar for ``status``: every trial's id and label, in the sweep's order, plus
the SHA-1 of the ``sweep.json`` bytes it was made from (at 100,000 trials ``sweep.json`` is ~45 MB: parsing it was
2 s of the 6 s ``status`` took, hashing it takes 0.03 s). Written atomically next to ``sweep.json`` when the sweep
is created, and by the first ``status`` of a sweep that has none (older sweeps) or whose ``sweep.json`` changed
since. A sidecar whose digest is not that of the current ``sweep.json`` is never trusted: :func:`load_trial_list`
reads ``sweep.json`` instead. Only ``status`` reads it; ``resume`` and the runners always read ``sweep.json``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustsweep.config.domains import name_violation
from robustsweep.config.trial import trial_label
from robustsweep.errors import UsageError
from robustsweep.store.atomic import atomic_write_bytes
from robustsweep.store.parquet import sweep_dir, trial_log_path, trial_status
from robustsweep.store.paths import OutsideRoot, check_name, ensure_inside

if TYPE_CHECKING:  # imported where a spec is validated: `status` never needs pydantic (~0.35 s of imports)
    from robustsweep.config.spec import Spec

SWEEP_FILE = "sweep.json"
TRIAL_LIST_FILE = "trial_ids.json"
TRIAL_LIST_FORMAT = 1  # bump when the sidecar's content (e.g. what a label says) changes: old ones are then ignored


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
    from robustsweep.config.identity import ID_VERSION  # the rule the trial ids were made by (absent = 1)

    doc = {"name": name, "id_version": ID_VERSION, "spec": spec.model_dump(mode="json"), "trials": trials}
    if path.exists():
        old = _read_doc(path)
        if {t.get("trial_id") for t in old.get("trials", [])} != {t["trial_id"] for t in trials}:
            raise SweepExists(
                f"sweep {name!r} already exists in {sw.dir} with a different set of trials.\n"
                f"Pick a new name (--name), or `robustsweep resume {name}` to finish the existing one."
            )
        if old.get("spec") == doc["spec"]:
            return sw
        # Same trials, other settings that are not part of a trial's identity (resources, max_retries, slurm
        # options, the paper note): the latest command's spec is the sweep's from now on. A ray-mode job and a
        # later resume read sweep.json back, and kept the first spec's settings before (`--set
        # resources.max_retries=0` on an existing sweep was silently ignored there). Results are unaffected:
        # every trial, and so every result file, is the same.
        doc["created_at"] = old.get("created_at")
        doc["updated_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    else:
        doc["created_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    data = json.dumps(doc, indent=1, sort_keys=True, default=str).encode()
    atomic_write_bytes(path, data, inside=sw.results)
    write_trial_list(sw.dir, data, trials)
    return sw


def load_sweep(results: str | Path, name: str) -> Sweep:
    """The sweep ``name`` as written by :func:`prepare_sweep`. Its name, the name and trial ids stored in its
    ``sweep.json`` (which a user may have edited) are checked like the ones given on the command line, so a resume
    cannot be led to write outside ``results`` either."""
    return _load_sweep(results, name)[0]


def _load_sweep(results: str | Path, name: str) -> tuple[Sweep, bytes]:
    """:func:`load_sweep` and the exact ``sweep.json`` bytes it was parsed from."""
    from robustsweep.config.spec import Spec

    path = _sweep_file(results, name)
    data = path.read_bytes()
    doc = _parse_doc(path, data)
    check_name(doc.get("name", name), f"name in {path}")
    for t in doc["trials"]:
        check_name(t.get("trial_id") if isinstance(t, dict) else None, f"a trial_id in {path}")
    # the spec was validated against the registries when the sweep was prepared and its trials are stored
    # expanded, so reading it back only needs the schema check: status and resume stay free of torch
    from pydantic import ValidationError

    try:
        spec = Spec.model_validate(doc["spec"])
    except ValidationError as e:
        raise UsageError(f"{path}: its experiment spec no longer validates ({e.error_count()} error(s), first: "
                         f"{'; '.join(str(e).splitlines()[1:3])}); it was edited, or written by another robustsweep version: "
                         f"restore it, or run the experiment file again under a new --name") from None
    return Sweep(name, Path(results).expanduser().resolve(), spec, doc["trials"]), data


def _read_doc(path: Path) -> dict[str, Any]:
    return _parse_doc(path, path.read_bytes())


def _parse_doc(path: Path, data: bytes) -> dict[str, Any]:
    """``sweep.json``'s document, or a :class:`UsageError` saying what to do where it is damaged or edited (not
    JSON, not an object, no ``spec`` or ``trials``): a traceback helps no one on a login node."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise UsageError(f"{path} is not valid JSON ({e}); it was edited or damaged: restore it, or run the "
                         f"experiment file again under a new --name") from None
    missing = [k for k in ("spec", "trials") if not isinstance(doc, dict) or k not in doc]
    if missing or not isinstance(doc["trials"], list):
        raise UsageError(f"{path} lacks {', '.join(missing) or 'a list of trials'}; it was edited or damaged: "
                         f"restore it, or run the experiment file again under a new --name")
    return doc


def _sweep_file(results: str | Path, name: str) -> Path:
    """``<results>/<name>/sweep.json`` after checking the name; :class:`SweepNotFound` (listing the sweeps that are
    there) when it does not exist."""
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
    return path


# -------------------------------------------------------------------------------- trial list (status sidecar)
@dataclass
class TrialList:
    """What ``status`` needs of a sweep: its trials' ids and labels in the sweep's order (no configs, no spec)."""
    name: str
    results: Path
    trial_ids: list[str]
    labels: list[str]

    @property
    def dir(self) -> Path:
        return sweep_dir(self.results, self.name)


def write_trial_list(sdir: Path, sweep_json: bytes, trials: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Write ``trial_ids.json`` for the ``sweep.json`` whose bytes are ``sweep_json`` and whose trials are ``trials``
    (best effort, atomically: a reader without it, or with a stale one, reads ``sweep.json``); returns (ids, labels).
    """
    ids, labels = [t["trial_id"] for t in trials], [trial_label(t) for t in trials]
    doc = {"format": TRIAL_LIST_FORMAT, "sweep_json_sha1": hashlib.sha1(sweep_json).hexdigest(),
           "trial_ids": ids, "labels": labels}
    try:
        atomic_write_bytes(sdir / TRIAL_LIST_FILE, json.dumps(doc).encode(), inside=sdir)
    except (OSError, OutsideRoot):  # read-only results folder, full disk, odd symlink: status is only slower
        pass
    return ids, labels


def _read_trial_list(sdir: Path) -> tuple[list[str], list[str]] | None:
    """(ids, labels) from the sidecar if it was made from the current ``sweep.json`` and holds valid trial ids (the
    check :func:`load_sweep` makes); else None."""
    try:
        doc = json.loads((sdir / TRIAL_LIST_FILE).read_bytes())
        digest = hashlib.sha1((sdir / SWEEP_FILE).read_bytes()).hexdigest()
        ids, labels = doc["trial_ids"], doc["labels"]
        if (doc["format"] != TRIAL_LIST_FORMAT or doc["sweep_json_sha1"] != digest
                or not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels)
                or any(name_violation("trial_id", t) is not None for t in ids)
                or not all(isinstance(x, str) for x in labels)):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return ids, labels


def load_trial_list(results: str | Path, name: str) -> TrialList:
    """The ids and labels of the sweep's trials: from ``trial_ids.json`` when it matches ``sweep.json`` byte for
    byte (by digest), else from ``sweep.json`` through :func:`load_sweep` (same checks, same errors), writing the
    sidecar for the next call."""
    sdir = _sweep_file(results, name).parent
    found = _read_trial_list(sdir)
    if found is not None:
        return TrialList(name, Path(results).expanduser().resolve(), *found)
    sw, data = _load_sweep(results, name)
    return TrialList(name, sw.results, *write_trial_list(sw.dir, data, sw.trials))


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
