"""One way to turn a pydantic ValidationError into lines a user can act on: ``key.path: what is wrong``.

Used for the experiment file and its ``slurm:`` section alike; an unknown key lists the keys allowed there.
"""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def format_validation_error(e: ValidationError, prefix: str = "", root: type[BaseModel] | None = None,
                            strip_value_error: bool = False) -> str:
    """``strip_value_error``: drop pydantic's "Value error, " prefix of messages raised by our own validators."""
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_at(root, err["loc"][:-1]) if root else None
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{loc}: unknown key{hint}")
        elif err["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ") if strip_value_error else err["msg"]
            lines.append(f"{loc}: {msg} (got {err.get('input')!r})")
    return "\n".join(lines)


def _allowed_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names valid at a location of the spec, for 'unknown key' messages."""
    cur: Any = model
    for part in loc:
        if isinstance(part, int) or cur is None:
            continue
        field = cur.model_fields.get(part) if isinstance(cur, type) and issubclass(cur, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        cur = next((a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                   None)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return sorted(cur.model_fields)
    return None
