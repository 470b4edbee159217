"""Dump the trial identity of every experiment file at every scale it offers, with and without ``--smoke``.

Why: the typed trial (config/trial.py) must give every existing experiment exactly the trial ids, config hashes and
wire dicts (the model cache keys are built from them) it had before. Run it with the old code and the new one and
diff the outputs::

    PYTHONPATH=/tmp/base python tests/config/dump_trial_ids.py /tmp/base/experiments > /tmp/old.json
    python tests/config/dump_trial_ids.py experiments > /tmp/new.json
    diff /tmp/old.json /tmp/new.json

``--pinned`` dumps only the ids of :data:`PINNED`, the form of the committed ``tests/config/trial_ids.json``.

Each trial is dumped as its wire dict (``json.dumps(cfg, sort_keys=True)``) plus its key order, recursively (the
order of the ``cfg.*`` columns of a row follows it), and each resolved spec as ``sweep.json`` stores it (a change
there would make an existing sweep's ``sweep.json`` be rewritten).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def key_order(obj: Any) -> Any:
    """The keys of every mapping, in order, nested the way the object is."""
    if isinstance(obj, dict):
        return [[k, key_order(v)] for k, v in obj.items()]
    if isinstance(obj, list):
        return [key_order(v) for v in obj]
    return None


def dump(path: Path) -> dict[str, Any]:
    """``{"<file> <scale>[ smoke]": [{"id", "hash", "cfg", "order"}, ...], "<…> spec": its sweep.json spec}`` for one
    experiment file."""
    from robustsweep.config.scales import available_scales
    from robustsweep.config.spec import load_spec

    out: dict[str, Any] = {}
    for scale in available_scales(yaml.safe_load(path.read_text())):
        for smoke in (False, True):
            spec = load_spec(path, scale=scale, smoke=smoke)
            trials = spec.expand()
            key = f"{path.name} {scale}{' smoke' if smoke else ''}"
            out[f"{key} spec"] = json.dumps(spec.model_dump(mode="json"), sort_keys=True)  # what sweep.json stores
            out[key] = [
                {"id": t["trial_id"], "hash": t["config_hash"], "cfg": json.dumps(t, sort_keys=True),
                 "order": key_order(t)} for t in trials]
    return out


#: the files whose ids tests/config/test_identity.py checks against trial_ids.json (made by the code before the typed
#: trial): each exercises one identity path -- a search over eval.counterfactual, eval.correct_for, a decision grid
#: with n_fit null, example images, train.adversarial searched over null and a mapping, a GMM-VAE, the quickstart
PINNED = ("p000_cifar10_speed.yaml", "p001_cifar_binary.yaml", "p001_fig2.yaml", "p002_student.yaml", "p003_gmmvae.yaml",
          "p004_fig4.yaml", "quickstart.yaml")


def pinned_ids(root: str | Path) -> dict[str, list[str]]:
    """``{"<file> <scale>[ smoke]": ["<trial_id> <config_hash>", ...]}`` of the :data:`PINNED` files."""
    out: dict[str, list[str]] = {}
    for name in PINNED:
        for key, trials in dump(Path(root) / name).items():
            if not key.endswith(" spec"):
                out[key] = [f"{t['id']} {t['hash']}" for t in trials]
    return out


def main(root: str, pinned: bool = False) -> None:
    if pinned:
        doc: dict[str, Any] = pinned_ids(root)
    else:
        doc = {}
        for p in sorted(Path(root).glob("*.yaml")):
            doc.update(dump(p))
    json.dump(doc, sys.stdout, indent=0 if not pinned else 1, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1], pinned="--pinned" in sys.argv[2:])
