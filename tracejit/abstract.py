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
from .specs import ShapeDtypeStruct
from .tree import tree_flatten, tree_unflatten


def _type(x) -> TensorType:
    if isinstance(x, ShapeDtypeStruct):
        return x.type
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
