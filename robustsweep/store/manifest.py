"""``<sweep>/compacted.json``, the commit point of ``robustsweep compact`` (:mod:`robustsweep.store.compact`): which
compacted parts make up the sweep and, per trial they hold, the inode of the trial file it was merged from and its
row count. Readers (:func:`robustsweep.store.parquet.snapshot`) read it before and after listing the folder."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

MANIFEST = "compacted.json"


@dataclass
class Manifest:
    """``compacted.json``: the compacted parts and, per trial they hold, [inode of its merged file, rows]."""
    generation: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)  # {"name", "rows"}
    schema_b64: str | None = None  # the parts' unified Arrow schema (IPC, base64), decoded only when scanning
    trials: dict[str, list[int]] = field(default_factory=dict)

    @property
    def schema(self) -> pa.Schema | None:
        import base64

        import pyarrow as pa

        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self.schema_b64))) if self.schema_b64 else None

    @staticmethod
    def encode_schema(schema: pa.Schema) -> str:
        import base64

        return base64.b64encode(schema.serialize().to_pybytes()).decode()

    def to_bytes(self) -> bytes:
        return json.dumps({"format": 1, "generation": self.generation, "parts": self.parts,
                           "schema": self.schema_b64, "trials": self.trials}).encode()


def read_manifest(sdir: Path) -> tuple[Manifest, tuple[int, int] | None]:
    """The manifest and the identity (inode, mtime) of the file it was read from (None: no manifest)."""
    try:
        with open(sdir / MANIFEST, "rb") as f:
            st = os.fstat(f.fileno())
            doc = json.loads(f.read())
    except FileNotFoundError:
        return Manifest(), None
    return Manifest(doc["generation"], doc["parts"], doc.get("schema"), doc["trials"]), (st.st_ino, st.st_mtime_ns)


def _manifest_key(sdir: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(sdir / MANIFEST)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns
