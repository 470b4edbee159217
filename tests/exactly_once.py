"""The exactly-once check shared by the kill tests (a SIGKILLed driver in
``tests/runners/test_resume_after_kills.py``, a SIGKILLed warm actor in ``tests/runners/test_tune_reuse.py``): after
the final resume every trial has one ``ok`` file of its own rows, no (trial, attack, value) row appears twice
anywhere, and no trial is still marked running."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def assert_exactly_once(sweep_dir: Path, trial_ids: list[str] | int, rows: int) -> None:
    """``trial_ids``: the expected ids, or just their number when the ids are not known to the caller."""
    files = sorted((sweep_dir / "trials").glob("[!.]*.parquet"))
    if isinstance(trial_ids, int):
        assert len(files) == trial_ids, [f.name for f in files]
    else:
        assert sorted(f.stem for f in files) == sorted(trial_ids)
    seen = set()
    for f in files:
        t = pq.read_table(f).to_pylist()
        assert len(t) == rows and {r["status"] for r in t} == {"ok"} and {r["trial_id"] for r in t} == {f.stem}
        for r in t:
            key = (r["trial_id"], r["attack"], r["value"])
            assert key not in seen, key
            seen.add(key)
    assert not list((sweep_dir / "running").glob("*.json"))
