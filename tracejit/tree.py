"""Pytrees: nested containers of arrays, flattened to a list of leaves and a
structure that rebuilds them. Containers are dict (keys sorted), list,
tuple, namedtuple, None (no leaves) and registered classes (dataclasses
via :func:`register_dataclass`, others via :func:`register_pytree_node`)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

from .errors import TreeStructureError

_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


class TreeDef(NamedTuple):
    kind: Any          # type of the node, or None for a leaf
    aux: Any           # keys, field names, ... (hashable)
    children: tuple    # child TreeDefs

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind is None else sum(c.num_leaves for c in self.children)

    def __repr__(self):
        if self.kind is None:
            return "*"
        name = getattr(self.kind, "__name__", str(self.kind))
        return f"{name}({', '.join(map(repr, self.children))})"


LEAF = TreeDef(None, None, ())


def register_pytree_node(cls, flatten: Callable, unflatten: Callable):
    """``flatten(x) -> (children, aux)``, ``unflatten(aux, children) -> x``."""
    _REGISTRY[cls] = (flatten, unflatten)
    return cls


def register_dataclass(cls):
    """Register a dataclass: its fields are children. Usable as a decorator."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    register_pytree_node(cls, lambda x: ([getattr(x, n) for n in names], names),
                         lambda aux, ch: cls(**dict(zip(aux, ch))))
    return cls


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(x):
    t = type(x)
    if x is None:
        return [], None
    if t is dict or isinstance(x, dict):
        keys = tuple(sorted(x, key=_sort_key))
        return [x[k] for k in keys], keys
    if t in _REGISTRY:   # a registration wins over the built-in handling (namedtuples)
        return _REGISTRY[t][0](x)
    if _is_namedtuple(x):
        return list(x), None
    if t is tuple or t is list:
        return list(x), None
    return None


def _sort_key(k):
    return (type(k).__name__, k) if not isinstance(k, str) else ("str", k)


def tree_flatten(tree, is_leaf: Callable | None = None):
    leaves = []

    def go(x):
        if is_leaf is not None and is_leaf(x):
            leaves.append(x)
            return LEAF
        ch = _children(x)
        if ch is None:
            leaves.append(x)
            return LEAF
        children, aux = ch
        kind = type(x) if x is not None else type(None)
        return TreeDef(kind, aux, tuple(go(c) for c in children))
    treedef = go(tree)
    del go   # it refers to itself: a cycle that would keep the leaves alive until gc
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves):
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: {treedef} takes {treedef.num_leaves} leaves, "
                         f"got {len(leaves)}")
    it = iter(leaves)

    def go(td):
        if td.kind is None:
            return next(it)
        children = [go(c) for c in td.children]
        k = td.kind
        if k is type(None):
            return None
        if k in _REGISTRY:
            return _REGISTRY[k][1](td.aux, children)
        if issubclass(k, dict):
            return k(zip(td.aux, children))
        if issubclass(k, tuple) and hasattr(k, "_fields"):
            return k(*children)
        if k is tuple or k is list:
            return k(children)
        return _REGISTRY[k][1](td.aux, children)
    tree = go(treedef)
    del go   # it refers to itself: a cycle that would keep the leaves alive until gc
    return tree


def tree_leaves(tree, is_leaf: Callable | None = None):
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree):
    return tree_flatten(tree)[1]


def _shape_of(td: TreeDef):
    """``td`` with list, tuple and namedtuple alike (tree_map pairs their
    children by position, so they may stand for each other)."""
    if td.kind is None:
        return None
    kind = "sequence" if td.kind in (list, tuple) or hasattr(td.kind, "_fields") else td.kind
    aux = None if kind == "sequence" else td.aux
    return kind, aux, tuple(_shape_of(c) for c in td.children)


def _describe(td: TreeDef) -> str:
    """Like ``repr(td)``, with dict keys and field names shown."""
    if td.kind is None:
        return "*"
    name = getattr(td.kind, "__name__", str(td.kind))
    if isinstance(td.aux, tuple) and len(td.aux) == len(td.children):
        inner = ", ".join(f"{k!r}: {_describe(c)}" for k, c in zip(td.aux, td.children))
    else:
        inner = ", ".join(_describe(c) for c in td.children)
    return f"{name}({inner})"


def tree_map(fn, tree, *rest, is_leaf=None):
    """``fn`` applied to the leaves of ``tree`` and the corresponding leaves of
    each tree in ``rest``, which must have the same structure (lists, tuples
    and namedtuples of one length count as alike)."""
    leaves, td = tree_flatten(tree, is_leaf)
    others = []
    for k, r in enumerate(rest, 1):
        other, other_td = tree_flatten(r, is_leaf)
        if len(other) != len(leaves) or _shape_of(other_td) != _shape_of(td):
            raise TreeStructureError(
                f"tree_map: tree {k} does not have the structure of the first tree: "
                f"the first is {_describe(td)} ({len(leaves)} leaves), tree {k} is "
                f"{_describe(other_td)} ({len(other)} leaves)")
        others.append(other)
    return tree_unflatten(td, [fn(*xs) for xs in zip(leaves, *others)])


def tree_flatten_with_path(tree, sep="/"):
    """Leaves with hierarchical names: ``{"conv1": {"kernel": w}}`` gives
    ``[("conv1/kernel", w)]``; list and tuple elements are named by index."""
    out = []

    def go(x, path):
        ch = _children(x)
        if ch is None:
            out.append((sep.join(path), x))
            return
        children, aux = ch
        if isinstance(x, dict):
            names = [str(k) for k in aux]
        elif _is_namedtuple(x) and type(x) not in _REGISTRY:
            names = list(type(x)._fields)
        elif isinstance(aux, tuple) and len(aux) == len(children) and all(isinstance(a, str) for a in aux):
            names = list(aux)
        else:
            names = [str(i) for i in range(len(children))]
        for n, c in zip(names, children):
            go(c, path + [n])
    go(tree, [])
    return out
