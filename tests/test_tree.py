"""Pytrees: flatten/unflatten round trips of drawn nested structures,
tree_map, and leaf paths."""
import dataclasses
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracejit.tree import (register_dataclass, register_pytree_node, tree_flatten,
                           tree_flatten_with_path, tree_leaves, tree_map, tree_structure,
                           tree_unflatten)

Pair = namedtuple("Pair", ["first", "second"])


@register_dataclass
@dataclasses.dataclass
class Dense:
    kernel: object
    bias: object


class Box:
    """A class registered by hand, with auxiliary data."""

    def __init__(self, label, items):
        self.label, self.items = label, items

    def __eq__(self, other):
        return type(other) is Box and (self.label, self.items) == (other.label, other.items)


register_pytree_node(Box, lambda b: (list(b.items), b.label),
                     lambda label, items: Box(label, tuple(items)))

leaves = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3))
trees = st.recursive(
    leaves | st.none(),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.lists(kids, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), kids, max_size=3),
        st.builds(Pair, kids, kids),
        st.builds(Dense, kids, kids),
        st.builds(Box, st.text(max_size=2), st.lists(kids, max_size=2).map(tuple))),
    max_leaves=12)


@settings(max_examples=100, deadline=None)
@given(tree=trees)
def test_flatten_unflatten_round_trip(tree):
    flat, treedef = tree_flatten(tree)
    assert tree_unflatten(treedef, flat) == tree
    assert treedef.num_leaves == len(flat)
    assert all(x is not None for x in flat)   # None is a node without leaves
    assert tree_structure(tree) == treedef and hash(treedef) == hash(tree_structure(tree))
    assert tree_leaves(tree) == flat


@settings(max_examples=50, deadline=None)
@given(tree=trees)
def test_tree_map(tree):
    doubled = tree_map(lambda x: x * 2, tree)
    assert tree_structure(doubled) == tree_structure(tree)
    assert tree_leaves(doubled) == [x * 2 for x in tree_leaves(tree)]
    pairs = tree_map(lambda a, b: Opaque((a, b)), tree, doubled)
    assert [p.value for p in tree_leaves(pairs)] == [(x, x * 2) for x in tree_leaves(tree)]


class Opaque:
    """Not a registered node, so a leaf."""

    def __init__(self, value):
        self.value = value


def test_dict_keys_are_sorted_and_structure_is_hashable():
    a, b = {"b": 1, "a": 2}, {"a": 2, "b": 1}
    assert tree_leaves(a) == [2, 1]
    assert tree_structure(a) == tree_structure(b)
    assert tree_structure({"a": 1}) != tree_structure({"c": 1})
    assert tree_structure([1, 2]) != tree_structure((1, 2))
    assert tree_structure(Pair(1, 2)) != tree_structure((1, 2))
    od = tree_unflatten(tree_structure(OrderedDict(x=1)), [5])
    assert isinstance(od, OrderedDict) and od == {"x": 5}


def test_arrays_are_leaves_and_is_leaf():
    tree = {"w": np.ones((2, 2)), "b": [np.zeros(2), (np.ones(1),)]}
    flat, td = tree_flatten(tree)
    assert [x.shape for x in flat] == [(2,), (1,), (2, 2)]
    out = tree_unflatten(td, flat)
    assert out["w"] is tree["w"]
    assert tree_leaves(tree, is_leaf=lambda x: isinstance(x, list)) == [tree["b"], tree["w"]]


def test_mismatches_raise():
    with pytest.raises(ValueError):
        tree_map(lambda a, b: a + b, [1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        tree_unflatten(tree_structure([1, 2]), [1])
    with pytest.raises(ValueError):
        tree_unflatten(tree_structure([1, 2]), [1, 2, 3])


def test_flatten_with_path():
    params = {"conv1": {"kernel": 1, "bias": 2},
              "dense": Dense(kernel=3, bias=4),
              "blocks": [Pair(5, None), (6,)],
              "box": Box("b", (7,))}
    named = tree_flatten_with_path(params)
    assert named == [("blocks/0/first", 5), ("blocks/1/0", 6), ("box/0", 7),
                     ("conv1/bias", 2), ("conv1/kernel", 1),
                     ("dense/kernel", 3), ("dense/bias", 4)]
    assert [v for _, v in named] == tree_leaves(params)
    assert tree_flatten_with_path({"a": {"b": 1}}, sep=".") == [("a.b", 1)]
    assert tree_flatten_with_path(1) == [("", 1)]


@settings(max_examples=50, deadline=None)
@given(tree=trees)
def test_paths_follow_leaf_order(tree):
    named = tree_flatten_with_path(tree)
    assert [v for _, v in named] == tree_leaves(tree)
