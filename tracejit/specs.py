"""``ShapeDtypeStruct``: an array's shape and dtype without its data, and
the matching of ``jit(..., input_specs=...)`` to a call's arguments.

A spec's dimension may be ``None`` or a name: a symbolic dimension
(tracejit/ir/dims.py). Every ``None`` is the same dimension, ``b`` (the
batch size), so ``x: (None, 784)`` and ``y: (None,)`` must agree on it;
``("n", "m")`` names two independent ones.
"""
from __future__ import annotations

import numpy as np

from .errors import SymbolicDimensionError, TreeStructureError
from .ir.dims import Dim, product, spec_dim
from .ir.types import SHORT, TensorType, canonical_dtype
from .tree import tree_flatten


class ShapeDtypeStruct:
    """An array's shape and dtype, standing for the array in ``eval_shape``
    (and returned by it) and in ``jit``'s ``input_specs`` (where a ``None``
    dimension is symbolic)."""
    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(spec_dim(d) for d in shape)
        self.dtype = np.dtype(canonical_dtype(dtype))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return product(self.shape)

    @property
    def type(self) -> TensorType:
        return TensorType(self.shape, self.dtype.name)

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        shape = "(" + ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "") + ")"
        return f"ShapeDtypeStruct(shape={shape}, dtype={self.dtype.name})"


def _is_spec_leaf(x):
    return x is None or isinstance(x, ShapeDtypeStruct)


def leaf_specs(args, specs) -> list:
    """One entry per leaf of the positional ``args``: its ShapeDtypeStruct
    from ``specs`` (one entry per argument: a ShapeDtypeStruct, a pytree of
    them like the argument, or None for "the shapes of the call"), or None."""
    if len(specs) > len(args):
        raise TreeStructureError(f"input_specs has {len(specs)} entries but the function was "
                                 f"called with {len(args)} positional arguments")
    out = []
    for i, arg in enumerate(args):
        leaves, tree = tree_flatten(arg)
        spec = specs[i] if i < len(specs) else None
        if spec is None:
            out.extend([None] * len(leaves))
            continue
        spec_leaves, spec_tree = tree_flatten(spec, is_leaf=_is_spec_leaf)
        if spec_tree != tree:
            raise TreeStructureError(f"input_specs[{i}] has the structure {spec_tree} but "
                                     f"argument {i} is {tree}")
        out.extend(spec_leaves)
    return out


def check_leaf(x_type: TensorType, spec: ShapeDtypeStruct, where: str) -> TensorType:
    """The traced type of an argument of concrete type ``x_type`` given its
    spec; raises SymbolicDimensionError where the argument contradicts it."""
    t = spec.type
    if x_type.ndim != t.ndim:
        raise SymbolicDimensionError(f"{where} has shape {x_type.shape} (rank {x_type.ndim}) but "
                                     f"its input spec is {t} (rank {t.ndim})")
    for axis, (n, d) in enumerate(zip(x_type.shape, t.shape)):
        if not isinstance(d, Dim) and n != d:
            raise SymbolicDimensionError(f"{where} has shape {x_type.shape} but its input spec is "
                                         f"{t}: axis {axis} must be {d}")
    if x_type.dtype != t.dtype:
        raise SymbolicDimensionError(f"{where} has dtype {x_type.dtype} but its input spec is {t} "
                                     f"(dtype {SHORT[t.dtype]}); convert it, e.g. "
                                     f"x.astype(np.{t.dtype})")
    return t
