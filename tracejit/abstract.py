"""``eval_shape`` and ``ShapeDtypeStruct``: the shapes and dtypes of a
function's results, found by tracing it, without running or compiling it
(as ``jax.eval_shape``)::

    out = tracejit.eval_shape(model_step, params, tracejit.ShapeDtypeStruct((256, 784), "float32"))
    out.shape, out.dtype
"""
from __future__ import annotations

import numpy as np

from .core import Tracer, trace_pytree
from .errors import api_boundary
from .ir.types import TensorType, canonical_dtype
from .primitives.ad_util import aval
from .tree import tree_flatten, tree_unflatten


class ShapeDtypeStruct:
    """An array's shape and dtype, standing for the array in ``eval_shape``
    (and returned by it)."""
    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(canonical_dtype(dtype))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"


def _type(x) -> TensorType:
    if isinstance(x, ShapeDtypeStruct):
        return TensorType(x.shape, x.dtype.name)
    if isinstance(x, (Tracer, bool, int, float)):
        return aval(x)
    if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.ndarray):
        return TensorType(tuple(x.shape), canonical_dtype(x.dtype))   # device arrays, jax's
    return aval(np.asarray(x))


def eval_shape(fun, *args, **kwargs):
    """``fun(*args, **kwargs)``'s results as ShapeDtypeStructs (same pytree),
    by tracing ``fun``: nothing is computed or compiled. Arguments are
    arrays, Python scalars or ShapeDtypeStructs (anything with ``shape``
    and ``dtype``), in pytrees."""
    with api_boundary():
        leaves, tree = tree_flatten((args, kwargs))
        fn, _, out_tree = trace_pytree(lambda a, k: fun(*a, **k), [_type(x) for x in leaves],
                                       tree, getattr(fun, "__name__", "f"))
        return tree_unflatten(out_tree, [ShapeDtypeStruct(t.shape, t.dtype)
                                         for t in fn.out_types])
