"""Which parameter of an attack entry is its grid -- decided here once, for validation and evaluation alike.

An attack entry in an experiment file may give one parameter as a list (``eps: [0.1, 0.2, 0.3]``, ``c: [...]``,
``lam: [...]``): the trial then evaluates every value on one trained model. A parameter whose declared type is
itself a list (or contains one, such as ``list[float] | None``) takes a list as its *value* and is never a grid.
"""
from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any


def annotation_is_list(hint: Any) -> bool:
    """Whether a parameter annotation accepts a list/tuple value (``list[float]``, ``tuple | None``…)."""
    if hint is None:
        return False
    origins = {typing.get_origin(a) for a in (typing.get_args(hint) or ())} | {typing.get_origin(hint)}
    return bool(origins & {list, tuple}) or hint in (list, tuple)


#: keys of an attack entry that are not parameters of the attack function: ``name``; ``label`` (the rows' attack
#: name, when one attack is listed twice); ``n_eval`` (attack only the first n of the trial's attacked points: a
#: query attack too slow for all of them keeps its settings and shrinks its sample, paper 002 at mini scale)
ATTACK_META = ("name", "label", "n_eval")


def grid_keys(fn: Callable[..., Any], entry: dict[str, Any]) -> list[str]:
    """Keys of ``entry`` given as a list where ``fn``'s annotation does not take a list: the grid candidates."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotation: every list is a grid candidate
        hints = {}
    return [k for k, v in entry.items()
            if k not in ATTACK_META and isinstance(v, list) and not annotation_is_list(hints.get(k))]


def split_grid(fn: Callable[..., Any], entry: dict[str, Any]) -> tuple[str | None, list[Any], dict[str, Any]]:
    """(grid key, grid values, fixed params) of a validated attack entry; an entry without a grid is one point."""
    # label: the rows' name; n_eval: how many of the trial's attacked points this attack takes -- not parameters
    fixed = {k: v for k, v in entry.items() if k not in ATTACK_META}
    keys = grid_keys(fn, entry)
    if not keys:
        return None, [None], fixed
    key = keys[0]
    return key, list(fixed.pop(key)), fixed
