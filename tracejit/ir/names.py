"""Scoped value names, as TensorFlow names graph nodes.

A value may carry a name such as ``"hidden1/linear"``: the components before
the last ``/`` are its scope (``tracejit.name_scope``), the last one its own
name (``name=`` of an op, else the primitive).  Names are made unique the
way TensorFlow does it: the second ``"relu"`` becomes ``"relu_1"``, then
``"relu_2"`` (:func:`unique_name`).

:func:`value_names` gives every value of a Function its display name: its
own name (made unique within the Function) or, for unnamed values, what
``unnamed`` says (``%N`` in the text form, the primitive in a graph).
"""
from __future__ import annotations

import re

#: One scope component or name: starts with a letter, ``_`` or ``.`` (never
#: a digit, so it cannot clash with the numbered values ``%0``, ``%1``...).
COMPONENT = r"[A-Za-z_.][A-Za-z0-9_.\-]*"
NAME_RE = re.compile(rf"{COMPONENT}(?:/{COMPONENT})*")

__all__ = ["NAME_RE", "check_name", "unique_name", "scope_of", "value_names"]


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a valid (scoped) name, else a ValueError saying why."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a valid name: use letters, digits, '_', '.' "
                         f"and '-' (not starting with a digit or '-'), with '/' between "
                         f"scopes")
    return name


def unique_name(name: str, used: set) -> str:
    """``name``, or ``name_1``, ``name_2``... the first not in ``used``
    (TensorFlow's rule); the result is added to ``used``."""
    candidate, k = name, 0
    while candidate in used:
        k += 1
        candidate = f"{name}_{k}"
    used.add(candidate)
    return candidate


def scope_of(name: str) -> str:
    """``"hidden1/relu"`` for ``"hidden1/relu/max"``; ``""`` at the top."""
    return name.rpartition("/")[0]


def value_names(fn, unnamed) -> dict:
    """``{Var: display name}`` for ``fn``'s parameters and instruction results
    (not its sub-Functions'): a value's own name, made unique, or
    ``unnamed(var, index, instr)`` (``instr`` None for parameters), which
    must return distinct names that are not valid scoped names (``%3``), or
    valid names that are then made unique too."""
    used: set = set()
    names: dict = {}
    index = 0

    def add(v, ins):
        nonlocal index
        if v in names:
            return
        own = getattr(v, "name", None)
        if own:
            names[v] = unique_name(own, used)
        else:
            label = unnamed(v, index, ins)
            names[v] = unique_name(label, used) if NAME_RE.fullmatch(label) else label
        index += 1

    for p in fn.params:
        add(p, None)
    for ins in fn.body:
        for r in ins.results:
            add(r, ins)
    return names
