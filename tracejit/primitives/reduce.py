"""Reductions over a set of axes (the axes are removed from the shape;
``keepdims`` is a reshape in tracejit.numpy)."""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, ShapeError
from ..ir.types import TensorType
from . import ad_util as ad
from . import batch_util as bu


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


reduce_sum = Primitive("reduce_sum", "reduce", _reduce_rule("reduce_sum"), _impl(np.sum),
                       reduction=True)
reduce_prod = Primitive("reduce_prod", "reduce", _reduce_rule("reduce_prod"), _impl(np.prod),
                        reduction=True)
reduce_max = Primitive("reduce_max", "reduce", _reduce_rule("reduce_max"), _impl(np.max),
                       reduction=True)
reduce_min = Primitive("reduce_min", "reduce", _reduce_rule("reduce_min"), _impl(np.min),
                       reduction=True)


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
                   differentiable=False, reduction=True)
argmin = Primitive("argmin", "reduce", _arg_rule("argmin"),
                   lambda x, *, axis, index_dtype: [np.argmin(x, axis=axis).astype(index_dtype)],
                   differentiable=False, reduction=True)

REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax", "argmin")


# --- differentiation rules ----------------------------------------------------


def _extremum_weights(x, out, axes):
    """The share of each element in a max/min: 1/k for each of the k
    elements equal to the extremum (ties share), 0 elsewhere."""
    mask = ad.p("convert", ad.p("eq", x, ad.bcast_back(out, ad.shape(x), axes)),
                dtype=ad.aval(x).dtype)
    count = reduce_sum(mask, axes=axes)
    count = ad.p("max", count, ad.full_like(count, 1))   # NaN extremum: no element matches
    return ad.p("div", mask, ad.bcast_back(count, ad.shape(x), axes))


def _extremum_vjp(cts, primals, outs, *, axes):
    x = primals[0]
    w = _extremum_weights(x, outs[0], axes)
    return [ad.p("mul", ad.bcast_back(cts[0], ad.shape(x), axes), w)]


def _extremum_jvp(primals, tangents, outs, *, axes):
    w = _extremum_weights(primals[0], outs[0], axes)
    return [reduce_sum(ad.p("mul", tangents[0], w), axes=axes)]


def _prod_partials(x, axes):
    """d prod / d x_i = product of the other elements, exact with zeros:
    with z zeros among the reduced elements it is prod/x_i (z = 0), the
    product of the non-zeros at the zero (z = 1), and 0 otherwise."""
    shape = ad.shape(x)
    zero, one = ad.zeros_like(x), ad.full_like(x, 1)
    is_zero = ad.p("eq", x, zero)
    nonzero = ad.p("select", is_zero, one, x)
    p_nz = ad.bcast_back(reduce_prod(nonzero, axes=axes), shape, axes)
    n_zero = ad.bcast_back(reduce_sum(ad.p("convert", is_zero, dtype=ad.aval(x).dtype),
                                      axes=axes), shape, axes)
    one_zero = ad.p("select", is_zero, p_nz, zero)
    return ad.p("select", ad.p("eq", n_zero, zero), ad.p("div", p_nz, nonzero),
                ad.p("select", ad.p("eq", n_zero, one), one_zero, zero))


def _prod_vjp(cts, primals, outs, *, axes):
    x = primals[0]
    ct = ad.bcast_back(cts[0], ad.shape(x), axes)
    return [ad.guard(ct, ad.p("mul", ct, _prod_partials(x, axes)))]


def _prod_jvp(primals, tangents, outs, *, axes):
    t = tangents[0]
    return [reduce_sum(ad.guard(t, ad.p("mul", t, _prod_partials(primals[0], axes))), axes=axes)]


reduce_sum.def_vjp(lambda cts, primals, outs, *, axes: [
    ad.bcast_back(cts[0], ad.shape(primals[0]), axes)])
reduce_sum.def_jvp(ad.linear_jvp("reduce_sum"))
reduce_prod.def_vjp(_prod_vjp)
reduce_prod.def_jvp(_prod_jvp)
for _p in (reduce_max, reduce_min):
    _p.def_vjp(_extremum_vjp)
    _p.def_jvp(_extremum_jvp)


# --- batching rules (vmap) ------------------------------------------------------

for _p in (reduce_sum, reduce_prod, reduce_max, reduce_min):
    _p.def_batch(bu.shifted_axes(_p.name, "axes"))
for _p in (argmax, argmin):
    _p.def_batch(bu.shifted_axes(_p.name, "axis"))
