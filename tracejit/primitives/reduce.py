"""Reductions over a set of axes (the axes are removed from the shape;
``keepdims`` is a reshape in tracejit.numpy)."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.types import TensorType
from .core import Primitive


def _check_axes(name, x, axes):
    if len(set(axes)) != len(axes) or any(not 0 <= a < x.ndim for a in axes):
        raise ShapeError(f"{name}: axes {tuple(axes)} out of range or repeated for {x}")


def _reduce_rule(name):
    def rule(x, *, axes):
        _check_axes(name, x, axes)
        if name != "reduce_sum" and name != "reduce_prod" and x.size == 0 and \
                any(x.shape[a] == 0 for a in axes):
            raise ShapeError(f"{name}: zero-size reduction over axes {tuple(axes)} of {x} "
                             f"has no identity")
        return TensorType(tuple(n for d, n in enumerate(x.shape) if d not in axes),
                          x.dtype, x.weak)
    return rule


def _impl(fn):
    def run(x, *, axes):
        with np.errstate(all="ignore"):
            return [np.asarray(fn(x, axis=tuple(axes)), dtype=x.dtype)]
    return run


reduce_sum = Primitive("reduce_sum", "reduce", _reduce_rule("reduce_sum"), _impl(np.sum))
reduce_prod = Primitive("reduce_prod", "reduce", _reduce_rule("reduce_prod"), _impl(np.prod))
reduce_max = Primitive("reduce_max", "reduce", _reduce_rule("reduce_max"), _impl(np.max))
reduce_min = Primitive("reduce_min", "reduce", _reduce_rule("reduce_min"), _impl(np.min))


# argmax/argmin along one axis; NaN counts as the extreme (as in NumPy).
def _arg_rule(name):
    def rule(x, *, axis, index_dtype):
        _check_axes(name, x, (axis,))
        if x.shape[axis] == 0:
            raise ShapeError(f"{name}: empty axis {axis} of {x}")
        if index_dtype not in ("int32", "int64"):
            raise DTypeError(f"{name}: index_dtype must be int32 or int64")
        return TensorType(x.shape[:axis] + x.shape[axis + 1:], index_dtype)
    return rule


argmax = Primitive("argmax", "reduce", _arg_rule("argmax"),
                   lambda x, *, axis, index_dtype: [np.argmax(x, axis=axis).astype(index_dtype)],
                   differentiable=False)
argmin = Primitive("argmin", "reduce", _arg_rule("argmin"),
                   lambda x, *, axis, index_dtype: [np.argmin(x, axis=axis).astype(index_dtype)],
                   differentiable=False)

REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin")
