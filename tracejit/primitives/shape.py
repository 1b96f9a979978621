"""Shape primitives: they move or select elements, never compute with them."""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, ShapeError
from ..ir.dims import product
from ..ir.types import DTYPES, INTS, TensorType
from . import ad_util as ad
from . import batch_util as bu


def _t(x, shape, dtype=None):
    return TensorType(shape, dtype or x.dtype, x.weak)


# broadcast_in_dim: operand dim i becomes output dim broadcast_dimensions[i];
# operand dims must equal the output's or be 1.
def _broadcast_rule(x, *, shape, broadcast_dimensions):
    dims = broadcast_dimensions
    if any(n < 0 for n in shape) or len(dims) != x.ndim or \
            any(d < 0 or d >= len(shape) for d in dims) or list(dims) != sorted(set(dims)):
        raise ShapeError(f"broadcast_in_dim: cannot map {x} into shape {tuple(shape)} "
                         f"with broadcast_dimensions={tuple(dims)}")
    for i, d in enumerate(dims):
        if x.shape[i] not in (1, shape[d]):
            raise ShapeError(f"broadcast_in_dim: operand {x} dim {i} ({x.shape[i]}) "
                             f"does not broadcast to {shape[d]} in {tuple(shape)}")
    return _t(x, shape)


def _broadcast_impl(x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return [np.broadcast_to(x.reshape(expanded), shape).copy()]


broadcast_in_dim = Primitive("broadcast_in_dim", "shape", _broadcast_rule, _broadcast_impl,
                             index_op=True)


def _reshape_rule(x, *, new_shape):
    if any(n < 0 for n in new_shape) or product(new_shape) != x.size:
        raise ShapeError(f"reshape: cannot reshape {x} to {tuple(new_shape)} "
                         f"({x.size} elements vs {product(new_shape)})")
    return _t(x, new_shape)


reshape = Primitive("reshape", "shape", _reshape_rule,
                    lambda x, *, new_shape: [np.reshape(x, new_shape).copy()],
                    index_op=True)


def _transpose_rule(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ShapeError(f"transpose: {tuple(permutation)} is not a permutation of the axes of {x}")
    return _t(x, tuple(x.shape[p] for p in permutation))


transpose = Primitive("transpose", "shape", _transpose_rule,
                      lambda x, *, permutation: [np.transpose(x, permutation).copy()],
                      index_op=True)


def _slice_rule(x, *, start, limit, strides):
    if not (len(start) == len(limit) == len(strides) == x.ndim):
        raise ShapeError(f"slice: start/limit/strides must have {x.ndim} entries for {x}")
    shape = []
    for d, (s, l, st) in enumerate(zip(start, limit, strides)):
        if not (0 <= s <= l <= x.shape[d]) or st < 1:
            raise ShapeError(f"slice: bad bounds [{s}:{l}:{st}] for dim {d} of {x}")
        shape.append(l - s if st == 1 else max(0, -(-(l - s) // st)))
    return _t(x, shape)


slice = Primitive("slice", "shape", _slice_rule, lambda x, *, start, limit, strides: [
    x[tuple(np.s_[s:l:st] for s, l, st in zip(start, limit, strides))].copy()],
    index_op=True)


# pad: config is ((low, high, interior), ...) per dim; low/high may be
# negative (cropping), interior inserts that many values between elements.
def _pad_rule(x, value, *, config):
    if value.shape != () or value.dtype != x.dtype:
        raise ShapeError(f"pad: padding value must be a scalar {x.dtype}, got {value}")
    if len(config) != x.ndim:
        raise ShapeError(f"pad: config has {len(config)} entries for {x}")
    shape = []
    for n, (lo, hi, it) in zip(x.shape, config):
        size = lo + hi + n + (max(n - 1, 0) * it if it else 0)
        if it < 0 or size < 0:
            raise ShapeError(f"pad: config {config} gives a negative size for {x}")
        shape.append(size)
    return _t(x, shape)


def pad_impl(x, value, *, config):
    dilated_shape = [n + max(n - 1, 0) * it for n, (_, _, it) in zip(x.shape, config)]
    out = np.full(dilated_shape, value, dtype=x.dtype)
    out[tuple(np.s_[::it + 1] for _, _, it in config)] = x
    widths = [(max(lo, 0), max(hi, 0)) for lo, hi, _ in config]
    out = np.pad(out, widths, constant_values=value)
    crop = tuple(np.s_[max(-lo, 0):out.shape[d] - max(-hi, 0)] for d, (lo, hi, _) in enumerate(config))
    return [out[crop].copy()]


pad = Primitive("pad", "shape", _pad_rule, pad_impl, index_op=True)


def _concatenate_rule(*xs, axis):
    x0 = xs[0]
    if not 0 <= axis < x0.ndim:
        raise ShapeError(f"concatenate: axis {axis} out of range for {x0}")
    for x in xs[1:]:
        if x.dtype != x0.dtype or x.ndim != x0.ndim or any(
                a != b for d, (a, b) in enumerate(zip(x.shape, x0.shape)) if d != axis):
            raise ShapeError("concatenate: operands do not fit along axis "
                             f"{axis}: " + ", ".join(str(x) for x in xs))
    shape = list(x0.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return TensorType(shape, x0.dtype, all(x.weak for x in xs))


concatenate = Primitive("concatenate", "shape", _concatenate_rule,
                        lambda *xs, axis: [np.concatenate(xs, axis=axis)],
                        index_op=True)


def _iota_rule(*, shape, dimension, dtype):
    if not 0 <= dimension < len(shape) or any(n < 0 for n in shape):
        raise ShapeError(f"iota: dimension {dimension} out of range for shape {tuple(shape)}")
    if dtype not in DTYPES or dtype == "bool":
        raise DTypeError(f"iota: dtype must be numeric, got {dtype}")
    return TensorType(shape, dtype)


def _iota_impl(*, shape, dimension, dtype):
    r = np.arange(shape[dimension], dtype=dtype)
    expanded = [1] * len(shape)
    expanded[dimension] = shape[dimension]
    return [np.broadcast_to(r.reshape(expanded), shape).copy()]


iota = Primitive("iota", "shape", _iota_rule, _iota_impl, differentiable=False,
                 index_op=True)

def _rev_rule(x, *, dimensions):
    if len(set(dimensions)) != len(dimensions) or any(not 0 <= d < x.ndim for d in dimensions):
        raise ShapeError(f"rev: dimensions {tuple(dimensions)} out of range or repeated for {x}")
    return _t(x, x.shape)


rev = Primitive("rev", "shape", _rev_rule,
                lambda x, *, dimensions: [np.flip(x, dimensions).copy()],
                index_op=True)


# gather: take along one axis, indices of any shape; out-of-range indices
# are clamped (negative ones are counted from the end first, as in NumPy).
def _gather_rule(x, idx, *, axis):
    if idx.dtype not in INTS:
        raise DTypeError(f"gather: indices must be integers, got {idx}")
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"gather: axis {axis} out of range for {x}")
    return _t(x, x.shape[:axis] + idx.shape + x.shape[axis + 1:])


def _norm_idx(idx, n):
    idx = np.where(idx < 0, idx + n, idx)
    return np.clip(idx, 0, max(n - 1, 0)).astype(np.int64)


def _gather_impl(x, idx, *, axis):
    if x.shape[axis] == 0:
        return [np.zeros(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)]
    return [np.take(x, _norm_idx(idx, x.shape[axis]), axis=axis)]


gather = Primitive("gather", "shape", _gather_rule, _gather_impl, index_op=True)


# scatter_add: x with updates added at indices along axis (repeated indices
# accumulate); the transpose of gather.
def _scatter_rule(x, idx, upd, *, axis):
    want = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    if upd.shape != want or upd.dtype != x.dtype:
        raise ShapeError(f"scatter_add: updates {upd} do not match {x} indexed by {idx} "
                         f"along axis {axis} (want {TensorType(want, x.dtype)})")
    return _t(x, x.shape)


def _scatter_impl(x, idx, upd, *, axis):
    out = x.copy()
    if x.shape[axis] == 0:
        return [out]
    idx = _norm_idx(idx, x.shape[axis])
    moved = np.moveaxis(out, axis, 0)
    upd = np.moveaxis(upd.reshape(x.shape[:axis] + (idx.size,) + x.shape[axis + 1:]), axis, 0)
    np.add.at(moved, idx.reshape(-1), upd)
    return [out]


scatter_add = Primitive("scatter_add", "shape", _scatter_rule, _scatter_impl)


# --- differentiation rules ----------------------------------------------------
# Shape primitives are linear, so every JVP is the primitive applied to the
# tangents, and every VJP is the transposed data movement.


def _broadcast_vjp(cts, primals, outs, *, shape, broadcast_dimensions):
    x_shape = ad.shape(primals[0])
    dims = broadcast_dimensions
    summed = [d for d in range(len(shape)) if d not in dims]
    summed += [d for i, d in enumerate(dims) if x_shape[i] == 1 and shape[d] != 1]
    ct = cts[0]
    if summed:
        ct = ad.p("reduce_sum", ct, axes=tuple(sorted(summed)))
    if ad.shape(ct) != x_shape:
        ct = reshape(ct, new_shape=x_shape)
    return [ct]


def _slice_vjp(cts, primals, outs, *, start, limit, strides):
    x = primals[0]
    config = []
    for n, s, st, m in zip(ad.shape(x), start, strides, ad.shape(outs[0])):
        gaps = max(m - 1, 0) * (st - 1) if st != 1 else 0
        config.append((s, n - s - m - gaps, st - 1))
    return [pad(cts[0], np.zeros((), ad.aval(x).dtype), config=tuple(config))]


def _pad_vjp(cts, primals, outs, *, config):
    x, value = primals
    ct = cts[0]
    # undo cropping (negative low/high) with zeros, then pick the operand's
    # positions: every (interior + 1)-th element from max(low, 0)
    uncrop = tuple((max(-lo, 0), max(-hi, 0), 0) for lo, hi, _ in config)
    zero = ad.zeros_like(value)
    if any(a or b for a, b, _ in uncrop):
        ct = pad(ct, zero, config=uncrop)
    starts = tuple(max(lo, 0) for lo, _, _ in config)
    limits = tuple(s + (n - 1) * (it + 1) + 1 if n else s
                   for s, n, (_, _, it) in zip(starts, ad.shape(x), config))
    ct_x = slice(ct, start=starts, limit=limits, strides=tuple(it + 1 for _, _, it in config))
    axes = tuple(range(len(config)))
    return [ct_x, lambda: ad.p("sub", ad.p("reduce_sum", cts[0], axes=axes),
                               ad.p("reduce_sum", ct_x, axes=axes))]


def _concatenate_vjp(cts, primals, outs, *, axis):
    ct = cts[0]
    pieces, offset = [], 0
    full = ad.shape(cts[0])
    for x in primals:
        n = ad.shape(x)[axis]
        start = tuple(offset if d == axis else 0 for d in range(len(full)))
        limit = tuple(offset + n if d == axis else full[d] for d in range(len(full)))
        pieces.append(slice(ct, start=start, limit=limit, strides=(1,) * len(full)))
        offset += n
    return pieces


broadcast_in_dim.def_vjp(_broadcast_vjp)
reshape.def_vjp(lambda cts, primals, outs, *, new_shape: [
    reshape(cts[0], new_shape=ad.shape(primals[0]))])
transpose.def_vjp(lambda cts, primals, outs, *, permutation: [
    transpose(cts[0], permutation=tuple(int(i) for i in np.argsort(permutation)))])
slice.def_vjp(_slice_vjp)
pad.def_vjp(_pad_vjp)
concatenate.def_vjp(_concatenate_vjp)
rev.def_vjp(lambda cts, primals, outs, *, dimensions: [rev(cts[0], dimensions=dimensions)])
gather.def_vjp(lambda cts, primals, outs, *, axis: [
    scatter_add(ad.zeros_like(primals[0]), primals[1], cts[0], axis=axis), None])
scatter_add.def_vjp(lambda cts, primals, outs, *, axis: [
    cts[0], None, lambda: gather(cts[0], primals[1], axis=axis)])
for _p in (broadcast_in_dim, reshape, transpose, slice, pad, concatenate, rev, gather,
           scatter_add):
    _p.def_jvp(ad.linear_jvp(_p.name))


# --- batching rules (vmap) ------------------------------------------------------
# The batch is the leading dim of every batched value, so most rules shift
# their dimension attributes by one. gather and scatter_add with batched
# indices fold the batch into the indexed axis: row b of the batch is
# addressed as b * n + i in an operand reshaped to (batch * n, ...).


def _broadcast_batch(vals, batched, *, shape, broadcast_dimensions):
    b = ad.shape(vals[0])[0]
    return [broadcast_in_dim(vals[0], shape=(b,) + tuple(shape),
                             broadcast_dimensions=(0,) + bu.shift(broadcast_dimensions))], [True]


def _reshape_batch(vals, batched, *, new_shape):
    b = ad.shape(vals[0])[0]
    return [reshape(vals[0], new_shape=(b,) + tuple(new_shape))], [True]


def _transpose_batch(vals, batched, *, permutation):
    return [transpose(vals[0], permutation=(0,) + bu.shift(permutation))], [True]


def _slice_batch(vals, batched, *, start, limit, strides):
    b = ad.shape(vals[0])[0]
    return [slice(vals[0], start=(0,) + tuple(start), limit=(b,) + tuple(limit),
                  strides=(1,) + tuple(strides))], [True]


def _pad_batch(vals, batched, *, config):
    x, value = vals
    b = bu.axis_size(vals, batched)
    x = x if batched[0] else bu.bcast(x, b)
    config = ((0, 0, 0),) + tuple(config)
    if not batched[1]:
        return [pad(x, value, config=config)], [True]
    # one padding value per example: pad with zeros, then select by a mask
    # of the operand's positions
    zero = np.zeros((), ad.aval(x).dtype)
    out = pad(x, zero, config=config)
    inside = ad.p("ne", pad(ad.full_like(x, 1), zero, config=config), ad.zeros_like(out))
    fill = broadcast_in_dim(value, shape=ad.shape(out), broadcast_dimensions=(0,))
    return [ad.p("select", inside, out, fill)], [True]


def _concatenate_batch(vals, batched, *, axis):
    return [concatenate(*bu.materialize(vals, batched), axis=axis + 1)], [True]


def _rev_batch(vals, batched, *, dimensions):
    return [rev(vals[0], dimensions=bu.shift(dimensions))], [True]


def _flat_indices(idx, n):
    """Batched indices ``idx`` (b, ...) into a batched axis of size ``n``,
    normalized as gather does (negative from the end, then clamped) and
    offset to address the flattened (b * n) axis."""
    t = ad.aval(idx)
    idx = ad.p("select", ad.p("lt", idx, ad.full_like(idx, 0)),
               ad.p("add", idx, ad.full_like(idx, n)), idx) if t.dtype != "uint32" else idx
    idx = ad.p("min", ad.p("max", idx, ad.full_like(idx, 0)), ad.full_like(idx, max(n - 1, 0)))
    row = iota(shape=t.shape, dimension=0, dtype=t.dtype)
    return ad.p("add", idx, ad.p("mul", row, ad.full_like(idx, n)))


def _fold(x, axis):
    """Batched ``x`` (b, ..., n at axis+1, ...) -> (b * n, rest...)."""
    xs = ad.shape(x)
    moved = bu.moveaxis(x, axis + 1, 1)
    rest = xs[1:axis + 1] + xs[axis + 2:]
    return reshape(moved, new_shape=(xs[0] * xs[axis + 1],) + rest)


def _gather_batch(vals, batched, *, axis):
    x, idx = vals
    if not batched[1]:
        return [gather(x, idx, axis=axis + 1)], [True]
    if not batched[0]:
        out = gather(x, idx, axis=axis)   # x[:axis] + (b, *idx) + x[axis+1:]
        return [bu.moveaxis(out, axis, 0)], [True]
    n, k = ad.shape(x)[axis + 1], ad.aval(idx).ndim - 1
    out = gather(_fold(x, axis), _flat_indices(idx, n), axis=0)   # (b, *idx, *pre, *post)
    # move the operand's leading dims (pre) back in front of the index dims
    pre = axis
    perm = (0,) + tuple(range(1 + k, 1 + k + pre)) + tuple(range(1, 1 + k)) + \
        tuple(range(1 + k + pre, ad.aval(out).ndim))
    return [transpose(out, permutation=perm)], [True]


def _scatter_batch(vals, batched, *, axis):
    x, idx, upd = vals
    b = bu.axis_size(vals, batched)
    x = x if batched[0] else bu.bcast(x, b)
    upd = upd if batched[2] else bu.bcast(upd, b)
    if not batched[1]:
        return [scatter_add(x, idx, upd, axis=axis + 1)], [True]
    xs = ad.shape(x)
    n, k = xs[axis + 1], ad.aval(idx).ndim - 1
    # updates (b, *pre, *idx, *post) -> (b, *idx, *pre, *post), as gather's result
    perm = (0,) + tuple(range(1 + axis, 1 + axis + k)) + tuple(range(1, 1 + axis)) + \
        tuple(range(1 + axis + k, ad.aval(upd).ndim))
    folded = scatter_add(_fold(x, axis), _flat_indices(idx, n),
                         transpose(upd, permutation=perm), axis=0)
    out = reshape(folded, new_shape=(b, n) + xs[1:axis + 1] + xs[axis + 2:])
    return [bu.moveaxis(out, 1, axis + 1)], [True]


broadcast_in_dim.def_batch(_broadcast_batch)
reshape.def_batch(_reshape_batch)
transpose.def_batch(_transpose_batch)
slice.def_batch(_slice_batch)
pad.def_batch(_pad_batch)
concatenate.def_batch(_concatenate_batch)
rev.def_batch(_rev_batch)
gather.def_batch(_gather_batch)
scatter_add.def_batch(_scatter_batch)


# dimension_size: the element count of ``x`` over ``axes`` as a scalar of
# ``dtype``, read at run time; how a mean divides by a symbolic batch size
# (tracejit/ir/dims.py). A compiled plan sees it as a constant: the sizes are
# bound before a plan is built (tracejit/transforms/specialize.py).
def _dimension_size_rule(x, *, axes, dtype):
    if any(not 0 <= a < x.ndim for a in axes):
        raise ShapeError(f"dimension_size: axes {tuple(axes)} out of range for {x}")
    if dtype not in DTYPES or dtype == "bool":
        raise DTypeError(f"dimension_size: dtype must be numeric, got {dtype}")
    return TensorType((), dtype)


def _dimension_size_impl(x, *, axes, dtype):
    return [np.asarray(int(np.prod([x.shape[a] for a in axes], dtype=np.int64)), dtype)]


dimension_size = Primitive("dimension_size", "other", _dimension_size_rule,
                           _dimension_size_impl, differentiable=False)


def _dimension_size_batch(vals, batched, *, axes, dtype):
    axes = bu.shift(axes) if batched[0] else axes
    return [dimension_size(vals[0], axes=axes, dtype=dtype)], [False]


dimension_size.def_batch(_dimension_size_batch)
