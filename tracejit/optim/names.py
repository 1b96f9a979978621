"""Selecting parameters by their hierarchical names (``"dense1/kernel"``, as
:func:`tracejit.tree.tree_flatten_with_path` spells them)."""
from __future__ import annotations

import re

from ..tree import tree_flatten_with_path

__all__ = ["matcher", "select"]


def matcher(pattern):
    """A predicate on names from ``pattern``: a regular expression searched
    anywhere in the name (``r"kernel$"``, ``r"^hidden[34]/|^outputs/"``), a
    list of them (any may match), a function ``name -> bool``, or None (all)."""
    if pattern is None:
        return lambda name: True
    if callable(pattern):
        return pattern
    if isinstance(pattern, str):
        regex = re.compile(pattern)
        return lambda name: regex.search(name) is not None
    regexes = [re.compile(p) for p in pattern]
    return lambda name: any(r.search(name) is not None for r in regexes)


def select(params, pattern=None) -> dict:
    """``{name: leaf}`` for the leaves of ``params`` whose names match ``pattern``."""
    match = matcher(pattern)
    return {name: leaf for name, leaf in tree_flatten_with_path(params) if match(name)}
