"""NumPy's names and semantics on traced arrays: ``import tracejit.numpy as tnp``.

Everything here decomposes into primitives. Promotion follows NumPy 2
(NEP 50: Python scalars are weak and do not widen arrays), broadcasting
follows NumPy and is made explicit with ``broadcast_in_dim``. Outside a
trace the same functions run eagerly on NumPy arrays.
"""
from __future__ import annotations

import builtins
import math


import numpy as np

from .errors import DTypeError, ShapeError
from .ir.types import FLOATS, TensorType, canonical_dtype, result_type
from .primitives import conv as _cv
from .primitives import elementwise as _ew
from .primitives import linalg as _la
from .primitives import reduce as _rd
from .primitives import shape as _sh
from .tracing import Tracer, current_trace

# dtype names, so ``tnp.float32`` works as in NumPy
float32, float64, int32, int64, uint32 = np.float32, np.float64, np.int32, np.int64, np.uint32
bool_ = np.bool_
pi, e, inf, nan, newaxis = np.pi, np.e, np.inf, np.nan, None
ndarray = (np.ndarray, Tracer)


# --- values, types and promotion -------------------------------------------
def _type(x) -> TensorType:
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, (list, tuple)):
        return TensorType.of(np.asarray(x))
    return TensorType.of(x)


def shape(x):
    return _type(x).shape


def ndim(x):
    return len(shape(x))


def size(x):
    return _type(x).size


def _is_scalar_literal(x):
    return isinstance(x, (bool, int, float)) and not isinstance(x, Tracer)


def asarray(x, dtype=None):
    """A value usable as an operand: tracers stay, everything else becomes a
    NumPy array (or a typed constant when tracing)."""
    if isinstance(x, Tracer):
        return x if dtype is None else astype(x, dtype)
    if isinstance(x, (list, tuple)):
        if builtins.any(isinstance(v, Tracer) for v in np.ravel(np.asarray(x, dtype=object))):
            return stack([asarray(v) for v in x])
    arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    if arr.dtype == np.float16 or arr.dtype.kind == "c":
        raise DTypeError(f"dtype {arr.dtype} is not supported by tracejit")
    if arr.dtype.kind == "f" and arr.dtype != np.float32 and arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    if arr.dtype.kind in "iu" and arr.dtype.name not in ("int32", "int64", "uint32"):
        arr = arr.astype(np.int64)
    return arr


array = asarray


def _lift(x, dtype: str):
    """``x`` as a value of ``dtype`` (Python scalars become typed constants)."""
    if _is_scalar_literal(x):
        with np.errstate(all="ignore"):
            return np.asarray(x, dtype=dtype)
    t = _type(x)
    if t.dtype == dtype and not t.weak:
        return x if isinstance(x, Tracer) else asarray(x)
    return _ew.convert(x if isinstance(x, Tracer) else asarray(x), dtype=dtype)


def astype(x, dtype):
    dtype = canonical_dtype(dtype)
    if _type(x).dtype == dtype:
        return x if isinstance(x, Tracer) else asarray(x)
    return _ew.convert(asarray(x), dtype=dtype)


def broadcast_shapes(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError("operands could not be broadcast together with shapes "
                         + " ".join(str(tuple(s)) for s in shapes)) from None


def broadcast_to(x, shape):
    shape = tuple(int(d) for d in shape)
    x = asarray(x)
    xs = _type(x).shape
    if xs == shape:
        return x
    if len(xs) > len(shape) or broadcast_shapes(xs, shape) != shape:
        raise ShapeError(f"cannot broadcast shape {xs} to {shape}")
    offset = len(shape) - len(xs)
    return _sh.broadcast_in_dim(x, shape=shape,
                                broadcast_dimensions=tuple(range(offset, len(shape))))


def _promote(*xs, float_only=False):
    """Common dtype (NumPy promotion) and common shape (broadcasting)."""
    types = [_type(x) for x in xs]
    dtype, weak = result_type(*types)
    if float_only and dtype not in FLOATS:
        dtype = "float64"
    out_shape = broadcast_shapes(*[t.shape for t in types])
    vals = []
    for x, t in zip(xs, types):
        if weak and isinstance(x, Tracer) and t.dtype == dtype:
            v = x
        elif weak and _is_scalar_literal(x):
            v = x   # all operands weak: keep Python scalars weak
        else:
            v = _lift(x, dtype)
        vals.append(broadcast_to(v, out_shape) if t.shape != out_shape else v)
    if weak and builtins.all(_is_scalar_literal(v) for v in vals):
        vals = [np.asarray(v, dtype=dtype) for v in vals]
    return vals


def _bin(prim, float_only=False):
    def fn(x, y):
        a, b = _promote(x, y, float_only=float_only)
        return prim(a, b)
    return fn


def _un(prim, float_only=False, int_ok=True):
    def fn(x):
        x = asarray(x) if not isinstance(x, Tracer) else x
        t = _type(x)
        if float_only and t.dtype not in FLOATS:
            x = _lift(x, "float64")
        elif not int_ok and t.dtype == "bool":
            raise DTypeError(f"{prim.name} does not take booleans")
        return prim(x)
    return fn


# --- elementwise ------------------------------------------------------------------
add = _bin(_ew.add)
subtract = _bin(_ew.sub)
multiply = _bin(_ew.mul)
true_divide = divide = _bin(_ew.div, float_only=True)
maximum = _bin(_ew.max)
minimum = _bin(_ew.min)
equal = _bin(_ew.eq)
not_equal = _bin(_ew.ne)
less = _bin(_ew.lt)
less_equal = _bin(_ew.le)
greater = _bin(_ew.gt)
greater_equal = _bin(_ew.ge)
bitwise_and = _bin(_ew.and_)
bitwise_or = _bin(_ew.or_)
bitwise_xor = _bin(_ew.xor)
remainder = mod = _bin(_ew.rem)


def floor_divide(x, y):
    a, b = _promote(x, y)
    if _type(a).dtype in FLOATS:
        return floor(_ew.div(a, b))
    return _ew.div(a, b)


def power(x, y):
    if _is_scalar_literal(y) and float(y) == 2.0 and not isinstance(y, bool):
        return multiply(x, x)
    a, b = _promote(x, y)
    return _ew.pow(a, b)


def logical_and(x, y):
    return bitwise_and(astype(x, "bool"), astype(y, "bool"))


def logical_or(x, y):
    return bitwise_or(astype(x, "bool"), astype(y, "bool"))


def logical_xor(x, y):
    return bitwise_xor(astype(x, "bool"), astype(y, "bool"))


def logical_not(x):
    return _ew.not_(astype(x, "bool"))


def invert(x):
    return _ew.not_(asarray(x))


negative = _un(_ew.neg, int_ok=False)
exp = _un(_ew.exp, float_only=True)
log = _un(_ew.log, float_only=True)
log1p = _un(_ew.log1p, float_only=True)
expm1 = _un(_ew.expm1, float_only=True)
tanh = _un(_ew.tanh, float_only=True)
sqrt = _un(_ew.sqrt, float_only=True)
sin = _un(_ew.sin, float_only=True)
cos = _un(_ew.cos, float_only=True)
floor = _un(_ew.floor, float_only=True)
ceil = _un(_ew.ceil, float_only=True)
isfinite = _un(_ew.is_finite, float_only=True)
abs = absolute = _un(_ew.abs)
sign = _un(_ew.sign)


def round(x, decimals=0):
    if decimals:
        scale = 10.0 ** decimals
        return _un(_ew.round, float_only=True)(multiply(x, scale)) / scale
    return _un(_ew.round, float_only=True)(x)


around = round


def square(x):
    return multiply(x, x)


def reciprocal(x):
    return true_divide(1.0, x)


def log2(x):
    return log(x) / math.log(2.0)


def log10(x):
    return log(x) / math.log(10.0)


def isnan(x):
    x = asarray(x)
    if _type(x).dtype not in FLOATS:
        return zeros_like(x, dtype="bool")
    return not_equal(x, x)


def isinf(x):
    x = asarray(x)
    if _type(x).dtype not in FLOATS:
        return zeros_like(x, dtype="bool")
    return logical_and(logical_not(isfinite(x)), equal(x, x))


def where(condition, x=None, y=None):
    if x is None or y is None:
        raise ShapeError("tnp.where(condition) (returning indices) has a data-dependent "
                         "shape and cannot be traced; pass x and y")
    cond = astype(condition, "bool")
    a, b = _promote(x, y)
    shape_ = broadcast_shapes(_type(cond).shape, _type(a).shape)
    return _ew.select(broadcast_to(cond, shape_), broadcast_to(a, shape_), broadcast_to(b, shape_))


def clip(x, a_min=None, a_max=None):
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


def logaddexp(x, y):
    m = maximum(x, y)
    safe = where(isfinite(m), m, 0.0)
    return add(log(add(exp(subtract(x, safe)), exp(subtract(y, safe)))), safe)


# --- reductions ----------------------------------------------------------------------
def _axes(x, axis):
    nd = ndim(x)
    if axis is None:
        return tuple(range(nd))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -nd <= a < nd:
            raise ShapeError(f"axis {a} is out of bounds for an array of shape {shape(x)}")
        out.append(a % nd)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis}")
    return tuple(sorted(out))


def _keep(x, result, axes, keepdims):
    if not keepdims:
        return result
    new_shape = tuple(1 if d in axes else n for d, n in enumerate(shape(x)))
    return reshape(result, new_shape)


def _reduction(prim, promote_small_ints=False):
    def fn(x, axis=None, dtype=None, keepdims=False):
        x = asarray(x)
        if dtype is not None:
            x = astype(x, dtype)
        elif _type(x).dtype == "bool" or (promote_small_ints and _type(x).dtype == "int32"):
            x = astype(x, "int64")
        axes = _axes(x, axis)
        return _keep(x, prim(x, axes=axes), axes, keepdims)
    return fn


sum = _reduction(_rd.reduce_sum, promote_small_ints=True)
prod = _reduction(_rd.reduce_prod, promote_small_ints=True)


def max(x, axis=None, keepdims=False):
    x = asarray(x)
    axes = _axes(x, axis)
    return _keep(x, _rd.reduce_max(x, axes=axes), axes, keepdims)


def min(x, axis=None, keepdims=False):
    x = asarray(x)
    axes = _axes(x, axis)
    return _keep(x, _rd.reduce_min(x, axes=axes), axes, keepdims)


amax, amin = max, min


def any(x, axis=None, keepdims=False):
    return max(astype(x, "bool"), axis, keepdims)


def all(x, axis=None, keepdims=False):
    return min(astype(x, "bool"), axis, keepdims)


def _count(x, axes):
    return builtins.max(1, int(np.prod([shape(x)[a] for a in axes], dtype=np.int64))) \
        if builtins.all(shape(x)[a] for a in axes) else 0


def mean(x, axis=None, dtype=None, keepdims=False):
    x = asarray(x)
    if dtype is None and _type(x).dtype not in FLOATS:
        dtype = "float64"
    s = sum(x, axis, dtype=dtype, keepdims=keepdims)
    n = _count(x, _axes(x, axis))
    return true_divide(s, float(n) if n else np.nan)


def var(x, axis=None, dtype=None, ddof=0, keepdims=False):
    x = asarray(x)
    if dtype is None and _type(x).dtype not in FLOATS:
        dtype = "float64"
    if dtype is not None:
        x = astype(x, dtype)
    m = mean(x, axis, keepdims=True)
    d = subtract(x, m)
    n = _count(x, _axes(x, axis)) - ddof
    return true_divide(sum(multiply(d, d), axis, keepdims=keepdims), float(n) if n > 0 else np.nan)


def std(x, axis=None, dtype=None, ddof=0, keepdims=False):
    return sqrt(var(x, axis, dtype, ddof, keepdims))


def _arg(prim, x, axis, keepdims):
    x = asarray(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = _axes(x, axis)[0]
    r = prim(x, axis=ax, index_dtype="int64")
    return _keep(x, r, (ax,), keepdims)


def argmax(x, axis=None, keepdims=False):
    return _arg(_rd.argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _arg(_rd.argmin, x, axis, keepdims)


def cumsum(x, axis=None, dtype=None):
    x = asarray(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = _axes(x, axis)[0]
    if dtype is not None:
        x = astype(x, dtype)
    elif _type(x).dtype in ("bool", "int32"):
        x = astype(x, "int64")
    n = shape(x)[ax]
    nd = ndim(x)
    win = tuple(n if d == ax else 1 for d in range(nd))
    pad_ = tuple((n - 1, 0) if d == ax else (0, 0) for d in range(nd))
    return _cv.reduce_window(x, computation="sum", window_dimensions=win,
                             window_strides=(1,) * nd, padding=pad_)


# --- shapes ---------------------------------------------------------------------------
def reshape(x, newshape, *more):
    if more:
        newshape = (newshape,) + more
    if isinstance(newshape, int):
        newshape = (newshape,)
    x = asarray(x)
    t = _type(x)
    newshape = [int(d) for d in newshape]
    if newshape.count(-1) > 1:
        raise ShapeError(f"can only specify one unknown dimension in {tuple(newshape)}")
    if -1 in newshape:
        known = int(np.prod([d for d in newshape if d != -1], dtype=np.int64))
        if known == 0 or t.size % known:
            raise ShapeError(f"cannot reshape array of shape {t.shape} into shape {tuple(newshape)}")
        newshape[newshape.index(-1)] = t.size // known
    newshape = tuple(newshape)
    if newshape == t.shape:
        return x
    return _sh.reshape(x, new_shape=newshape)


def ravel(x):
    return reshape(x, (-1,))


flatten = ravel


def transpose(x, axes=None, *more):
    x = asarray(x)
    nd = ndim(x)
    if more:
        axes = (axes,) + more
    perm = tuple(range(nd))[::-1] if axes is None else tuple(a % nd if nd else a for a in axes)
    if perm == tuple(range(nd)):
        return x
    return _sh.transpose(x, permutation=perm)


def swapaxes(x, axis1, axis2):
    nd = ndim(x)
    perm = list(range(nd))
    a, b = axis1 % nd, axis2 % nd
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def moveaxis(x, source, destination):
    nd = ndim(x)
    src = [s % nd for s in ((source,) if isinstance(source, int) else source)]
    dst = [d % nd for d in ((destination,) if isinstance(destination, int) else destination)]
    order = [a for a in range(nd) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def expand_dims(x, axis):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_nd = ndim(x) + len(axes)
    axes = sorted(a % out_nd for a in axes)
    it = iter(shape(x))
    return reshape(x, tuple(1 if d in axes else next(it) for d in range(out_nd)))


def squeeze(x, axis=None):
    s = shape(x)
    if axis is None:
        axes = [d for d, n in enumerate(s) if n == 1]
    else:
        axes = list(_axes(x, axis))
        for a in axes:
            if s[a] != 1:
                raise ShapeError(f"cannot squeeze axis {a} of size {s[a]} in shape {s}")
    return reshape(x, tuple(n for d, n in enumerate(s) if d not in axes))


def atleast_1d(x):
    return reshape(x, (1,)) if ndim(x) == 0 else asarray(x)


def concatenate(arrays, axis=0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ShapeError("need at least one array to concatenate")
    vals = _promote_dtypes(arrays)
    if ndim(vals[0]) == 0:
        raise ShapeError("zero-dimensional arrays cannot be concatenated")
    ax = _axes(vals[0], axis)[0]
    if len(vals) == 1:
        return vals[0]
    return _sh.concatenate(*vals, axis=ax)


def _promote_dtypes(xs):
    dtype, _ = result_type(*[_type(x) for x in xs])
    return [_lift(x, dtype) for x in xs]


def stack(arrays, axis=0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ShapeError("need at least one array to stack")
    s = shape(arrays[0])
    for a in arrays:
        if shape(a) != s:
            raise ShapeError("all input arrays must have the same shape: "
                             + ", ".join(str(shape(a)) for a in arrays))
    ax = axis % (len(s) + 1)
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax)


def hstack(arrays):
    return concatenate(arrays, axis=0 if ndim(arrays[0]) == 1 else 1)


def vstack(arrays):
    return concatenate([reshape(a, (1, -1)) if ndim(a) == 1 else a for a in arrays], axis=0)


def split(x, indices_or_sections, axis=0):
    x = asarray(x)
    ax = _axes(x, axis)[0]
    n = shape(x)[ax]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ShapeError(f"array split does not result in an equal division: "
                             f"{n} into {indices_or_sections}")
        step = n // indices_or_sections
        bounds = [i * step for i in range(1, indices_or_sections)]
    else:
        bounds = [int(b) for b in indices_or_sections]
    edges = [0] + [builtins.min(builtins.max(b, 0), n) for b in bounds] + [n]
    return [_slice_axis(x, ax, a, builtins.max(a, b)) for a, b in zip(edges, edges[1:])]


def array_split(x, sections, axis=0):
    n = shape(x)[axis]
    q, r = divmod(n, sections)
    sizes = [q + 1] * r + [q] * (sections - r)
    return split(x, list(np.cumsum(sizes)[:-1]), axis)


def _slice_axis(x, ax, start, stop, step=1):
    s = shape(x)
    st = [0] * len(s)
    lim = list(s)
    strides = [1] * len(s)
    st[ax], lim[ax], strides[ax] = start, stop, step
    if st == [0] * len(s) and lim == list(s) and step == 1:
        return x
    return _sh.slice(x, start=tuple(st), limit=tuple(lim), strides=tuple(strides))


def flip(x, axis=None):
    x = asarray(x)
    axes = _axes(x, axis)
    return _sh.rev(x, dimensions=axes) if axes else x


def pad(x, pad_width, mode="constant", constant_values=0):
    if mode != "constant":
        raise NotImplementedError("tnp.pad supports mode='constant' only")
    x = asarray(x)
    nd = ndim(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2))
    value = _lift(constant_values, _type(x).dtype)
    return _sh.pad(x, value, config=tuple((int(lo), int(hi), 0) for lo, hi in pw))


def tile(x, reps):
    x = asarray(x)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    s = shape(x)
    nd = builtins.max(len(s), len(reps))
    s = (1,) * (nd - len(s)) + s
    reps = (1,) * (nd - len(reps)) + reps
    x = reshape(x, s)
    # broadcast to (r0, s0, r1, s1, ...) and merge pairs
    big = tuple(v for r, n in zip(reps, s) for v in (r, n))
    b = _sh.broadcast_in_dim(x, shape=big, broadcast_dimensions=tuple(range(1, 2 * nd, 2)))
    return reshape(b, tuple(r * n for r, n in zip(reps, s)))


def repeat(x, repeats, axis=None):
    x = asarray(x)
    if axis is None:
        x, axis = ravel(x), 0
    ax = _axes(x, axis)[0]
    s = shape(x)
    big = s[:ax + 1] + (repeats,) + s[ax + 1:]
    dims = tuple(range(ax + 1)) + tuple(range(ax + 2, len(s) + 1))
    b = _sh.broadcast_in_dim(x, shape=big, broadcast_dimensions=dims)
    return reshape(b, s[:ax] + (s[ax] * repeats,) + s[ax + 1:])


# --- creation -------------------------------------------------------------------------
def _creation_dtype(dtype, default="float64"):
    return canonical_dtype(dtype) if dtype is not None else default


def full(shape, fill_value, dtype=None):
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    if dtype is None:
        dtype = _type(fill_value).dtype
        if _is_scalar_literal(fill_value):
            dtype = "float64" if isinstance(fill_value, float) else (
                "bool" if isinstance(fill_value, bool) else "int64")
    v = _lift(fill_value, canonical_dtype(dtype))
    return broadcast_to(v, shape)


def zeros(shape, dtype=None):
    return full(shape, 0, _creation_dtype(dtype))


def ones(shape, dtype=None):
    return full(shape, 1, _creation_dtype(dtype))


def full_like(x, fill_value, dtype=None):
    return full(shape(x), fill_value, dtype or _type(x).dtype)


def zeros_like(x, dtype=None):
    return full_like(x, 0, dtype)


def ones_like(x, dtype=None):
    return full_like(x, 1, dtype)


def empty(shape, dtype=None):
    return zeros(shape, dtype)


def arange(start, stop=None, step=1, dtype=None):
    if stop is None:
        start, stop = 0, start
    for v in (start, stop, step):
        if isinstance(v, Tracer):
            raise ShapeError("tnp.arange needs concrete bounds (its length is part of the shape)")
    ref = np.arange(start, stop, step)
    dtype = canonical_dtype(dtype) if dtype is not None else asarray(ref).dtype.name
    n = len(ref)
    idx = _sh.iota(shape=(n,), dimension=0, dtype="int64" if dtype not in FLOATS else dtype)
    if start == 0 and step == 1:
        return astype(idx, dtype)
    return astype(add(multiply(idx, step), start), dtype)


def linspace(start, stop, num=50, endpoint=True, dtype=None):
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else 0.0
    idx = _sh.iota(shape=(num,), dimension=0, dtype="float64")
    out = add(multiply(idx, step), float(start))
    if endpoint and num > 1:
        out = where(equal(idx, num - 1), float(stop), out)
    return astype(out, dtype or "float64")


def eye(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    r = _sh.iota(shape=(N, M), dimension=0, dtype="int64")
    c = _sh.iota(shape=(N, M), dimension=1, dtype="int64")
    return astype(equal(add(r, k), c), _creation_dtype(dtype))


def tri(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    r = _sh.iota(shape=(N, M), dimension=0, dtype="int64")
    c = _sh.iota(shape=(N, M), dimension=1, dtype="int64")
    return astype(less_equal(c, add(r, k)), _creation_dtype(dtype))


def tril(x, k=0):
    m = tri(*shape(x)[-2:], k=k, dtype="bool")
    return where(m, x, zeros_like(x))


def triu(x, k=0):
    m = tri(*shape(x)[-2:], k=k - 1, dtype="bool")
    return where(m, zeros_like(x), x)


# --- contractions ---------------------------------------------------------------------
def _dot_types(a, b):
    return _promote_dtypes([asarray(a), asarray(b)])


def matmul(a, b):
    a, b = _dot_types(a, b)
    sa, sb = shape(a), shape(b)
    if not sa or not sb:
        raise ShapeError(f"matmul: operands must not be scalars, got {sa} and {sb}")
    va = reshape(a, (1,) + sa) if len(sa) == 1 else a
    vb = reshape(b, sb + (1,)) if len(sb) == 1 else b
    sa2, sb2 = shape(va), shape(vb)
    if sa2[-1] != sb2[-2]:
        raise ShapeError(f"matmul: contracting dimensions differ: {sa} @ {sb} "
                         f"({sa2[-1]} != {sb2[-2]})")
    batch = broadcast_shapes(sa2[:-2], sb2[:-2])
    va = broadcast_to(va, batch + sa2[-2:])
    vb = broadcast_to(vb, batch + sb2[-2:])
    nb = len(batch)
    out = _la.dot_general(va, vb, dimension_numbers=(((nb + 1,), (nb,)),
                                                     (tuple(range(nb)), tuple(range(nb)))))
    if len(sa) == 1:
        out = squeeze(out, -2)
    if len(sb) == 1:
        out = squeeze(out, -1)
    return out


def dot(a, b):
    a, b = _dot_types(a, b)
    if ndim(a) == 0 or ndim(b) == 0:
        return multiply(a, b)
    if ndim(b) == 1:
        return tensordot(a, b, axes=((ndim(a) - 1,), (0,)))
    return tensordot(a, b, axes=((ndim(a) - 1,), (ndim(b) - 2,)))


def vdot(a, b):
    return dot(ravel(a), ravel(b))


def inner(a, b):
    return tensordot(a, b, axes=((ndim(a) - 1,), (ndim(b) - 1,)))


def outer(a, b):
    return multiply(reshape(ravel(a), (-1, 1)), reshape(ravel(b), (1, -1)))


def tensordot(a, b, axes=2):
    a, b = _dot_types(a, b)
    if isinstance(axes, int):
        ax_a = tuple(range(ndim(a) - axes, ndim(a)))
        ax_b = tuple(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = (ax_a,) if isinstance(ax_a, int) else tuple(ax_a)
        ax_b = (ax_b,) if isinstance(ax_b, int) else tuple(ax_b)
    ax_a = tuple(x % ndim(a) for x in ax_a)
    ax_b = tuple(x % ndim(b) for x in ax_b)
    for i, j in zip(ax_a, ax_b):
        if shape(a)[i] != shape(b)[j]:
            raise ShapeError(f"tensordot: shape mismatch for sum: {shape(a)} axis {i} "
                             f"vs {shape(b)} axis {j}")
    return _la.dot_general(a, b, dimension_numbers=((ax_a, ax_b), ((), ())))


def einsum(subscripts, *operands):
    """Two-operand (or one-operand) einsum without ellipses, as a
    dot_general plus transposes, sums and diagonal-free broadcasting."""
    ops = _promote_dtypes([asarray(o) for o in operands])
    subscripts = subscripts.replace(" ", "")
    if "..." in subscripts:
        raise NotImplementedError("tnp.einsum does not support '...' yet")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
    else:
        ins = subscripts
        counts = {}
        for c in ins.replace(",", ""):
            counts[c] = counts.get(c, 0) + 1
        out = "".join(sorted(c for c, k in counts.items() if k == 1))
    specs = ins.split(",")
    if len(specs) != len(ops):
        raise ShapeError(f"einsum: {len(specs)} subscripts for {len(ops)} operands")
    for s, o in zip(specs, ops):
        if len(s) != ndim(o) or len(set(s)) != len(s):
            raise ShapeError(f"einsum: subscripts {s!r} do not fit operand of shape {shape(o)}"
                             " (repeated indices within one operand are not supported)")
    # Reduce each operand's labels that appear nowhere else first.
    def others(i):
        return set("".join(s for j, s in enumerate(specs) if j != i)) | set(out)
    reduced = []
    for i, (s, o) in enumerate(zip(specs, ops)):
        drop = [d for d, c in enumerate(s) if c not in others(i)]
        if drop:
            o = sum(o, axis=tuple(drop))
            s = "".join(c for d, c in enumerate(s) if d not in drop)
        reduced.append((s, o))
    while len(reduced) > 1:
        (s1, a), (s2, b) = reduced[0], reduced[1]
        rest = "".join(s for s, _ in reduced[2:])
        keep = set(out) | set(rest)
        common = [c for c in s1 if c in s2]
        batch = [c for c in common if c in keep]
        contract = [c for c in common if c not in keep]
        # broadcast size-1 label dims against the other operand
        dn = ((tuple(s1.index(c) for c in contract), tuple(s2.index(c) for c in contract)),
              (tuple(s1.index(c) for c in batch), tuple(s2.index(c) for c in batch)))
        r = _la.dot_general(a, b, dimension_numbers=dn)
        rs = "".join(batch) + "".join(c for c in s1 if c not in common) + \
            "".join(c for c in s2 if c not in common)
        reduced = [(rs, r)] + reduced[2:]
    s, r = reduced[0]
    if set(s) != set(out):
        extra = [d for d, c in enumerate(s) if c not in out]
        r = sum(r, axis=tuple(extra))
        s = "".join(c for c in s if c in out)
    return transpose(r, [s.index(c) for c in out]) if s != out else r


# --- indexing -------------------------------------------------------------------------
def _is_index_array(i):
    return isinstance(i, (Tracer, np.ndarray, list)) and not isinstance(i, slice)


def _expand_index(idx, nd):
    if not isinstance(idx, tuple):
        idx = (idx,)
    idx = tuple(np.asarray(i) if isinstance(i, list) else i for i in idx)
    n_real = builtins.sum(1 for i in idx if i is not None and i is not Ellipsis
                          and not (_is_bool_index(i)))
    n_real += builtins.sum(ndim(i) for i in idx if _is_bool_index(i))
    if builtins.sum(1 for i in idx if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in [i for i in idx if not _is_index_array(i)]:
        k = [j for j, i in enumerate(idx) if i is Ellipsis and not _is_index_array(i)][0]
        idx = idx[:k] + (slice(None),) * (nd - n_real) + idx[k + 1:]
    elif n_real < nd:
        idx = idx + (slice(None),) * (nd - n_real)
    if n_real > nd:
        raise IndexError(f"too many indices for array: array is {nd}-dimensional, "
                         f"but {n_real} were indexed")
    return idx


def _is_bool_index(i):
    return isinstance(i, (np.ndarray, Tracer)) and _type(i).dtype == "bool"


def _getitem(x, idx):
    x = asarray(x)
    idx = _expand_index(idx, ndim(x))
    for i in idx:
        if _is_bool_index(i):
            raise IndexError("boolean mask indexing has a data-dependent shape and cannot "
                             "be traced; use tnp.where(mask, x, 0) instead")
    # 1. newaxis -> size-1 dims
    if builtins.any(i is None for i in idx):
        s, new_idx, it = [], [], iter(shape(x))
        for i in idx:
            if i is None:
                s.append(1)
                new_idx.append(slice(None))
            else:
                s.append(next(it))
                new_idx.append(i)
        x, idx = reshape(x, tuple(s)), tuple(new_idx)
    has_adv = builtins.any(_is_index_array(i) for i in idx)
    # 2. basic indices: slices (and integers when there is no index array)
    s = shape(x)
    starts, limits, strides, rev_dims, drop = [], [], [], [], []
    for d, i in enumerate(idx):
        n = s[d]
        if isinstance(i, slice):
            r = range(*i.indices(n))
            if r.step < 0:
                rev_dims.append(d)
                first = (n - 1 - r.start) if len(r) else 0
                starts.append(first)
                limits.append(first + (len(r) - 1) * (-r.step) + 1 if len(r) else first)
                strides.append(-r.step)
            else:
                starts.append(r.start if len(r) else 0)
                limits.append(r.start + (len(r) - 1) * r.step + 1 if len(r) else 0)
                strides.append(r.step)
        elif isinstance(i, (int, np.integer)) and not has_adv:
            j = int(i)
            if not -n <= j < n:
                raise IndexError(f"index {j} is out of bounds for axis {d} with size {n}")
            j %= n
            starts.append(j), limits.append(j + 1), strides.append(1), drop.append(d)
        else:
            starts.append(0), limits.append(n), strides.append(1)
    if rev_dims:
        x = _sh.rev(x, dimensions=tuple(rev_dims))
    if (tuple(starts), tuple(limits)) != ((0,) * len(s), s) or builtins.any(st != 1 for st in strides):
        x = _sh.slice(x, start=tuple(starts), limit=tuple(limits), strides=tuple(strides))
    if drop:
        x = reshape(x, tuple(n for d, n in enumerate(shape(x)) if d not in drop))
    if not has_adv:
        return x
    # 3. advanced indices: one gather on the flattened indexed dims
    adv = [d for d, i in enumerate(idx) if _is_index_array(i) or isinstance(i, (int, np.integer))]
    s = shape(x)
    arrays = []
    for d in adv:
        i = idx[d]
        if isinstance(i, (int, np.integer)):
            if not -s[d] <= int(i) < s[d]:
                raise IndexError(f"index {int(i)} is out of bounds for axis {d} with size {s[d]}")
            i = np.asarray(int(i) % s[d], dtype=np.int64)
        i = asarray(i)
        if _type(i).dtype not in ("int32", "int64", "uint32"):
            raise IndexError(f"arrays used as indices must be of integer type, got {_type(i)}")
        arrays.append(where(less(i, 0), add(i, s[d]), i) if _type(i).dtype != "uint32" else i)
    bshape = broadcast_shapes(*[shape(a) for a in arrays])
    linear = None
    for d, a in zip(adv, arrays):
        a = broadcast_to(astype(a, "int64"), bshape)
        a = clip(a, 0, builtins.max(s[d] - 1, 0))
        linear = a if linear is None else add(multiply(linear, s[d]), a)
    rest = [d for d in range(len(s)) if d not in adv]
    xt = transpose(x, adv + rest)
    flat = reshape(xt, (int(np.prod([s[d] for d in adv], dtype=np.int64)),) + tuple(s[d] for d in rest))
    out = _sh.gather(flat, linear, axis=0)
    contiguous = adv == list(range(adv[0], adv[-1] + 1))
    if contiguous and adv[0] > 0:
        nb, k = len(bshape), adv[0]
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, ndim(out)))
        out = transpose(out, perm)
    return out


def take(a, indices, axis=None):
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    ax = _axes(a, axis)[0]
    idx = asarray(indices)
    n = shape(a)[ax]
    idx = where(less(idx, 0), add(idx, n), idx)
    return _sh.gather(a, idx, axis=ax)


def take_along_axis(arr, indices, axis):
    arr = asarray(arr)
    ax = _axes(arr, axis)[0]
    s = shape(arr)
    full_idx = []
    for d in range(len(s)):
        if d == ax:
            full_idx.append(indices)
        else:
            r = reshape(arange(s[d]), tuple(s[d] if k == d else 1 for k in range(len(s))))
            full_idx.append(r)
    return _getitem(arr, tuple(full_idx))


class _IndexUpdateHelper:
    """``x.at[idx].set(v)`` / ``.add(v)`` / ``.multiply(v)`` / ``.get()``:
    functional indexed updates, as in JAX (x itself is not changed)."""

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _IndexUpdate(self.x, idx)


class _IndexUpdate:
    def __init__(self, x, idx):
        self.x, self.idx = asarray(x), idx

    def _linear(self):
        s = shape(self.x)
        positions = reshape(arange(int(np.prod(s, dtype=np.int64)), dtype="int64"), s)
        return _getitem(positions, self.idx)

    def get(self):
        return _getitem(self.x, self.idx)

    def add(self, values):
        lin = self._linear()
        dtype = _type(self.x).dtype
        upd = broadcast_to(_lift(values, dtype), shape(lin))
        flat = _sh.scatter_add(ravel(self.x), lin, upd, axis=0)
        return reshape(flat, shape(self.x))

    def set(self, values):
        lin = self._linear()
        dtype = _type(self.x).dtype
        flat_x = ravel(self.x)
        hit = _sh.scatter_add(zeros(shape(flat_x), "int32"), lin,
                              ones(shape(lin), "int32"), axis=0)
        upd = broadcast_to(_lift(values, dtype), shape(lin))
        placed = _sh.scatter_add(zeros(shape(flat_x), dtype), lin, upd, axis=0)
        return reshape(where(greater(hit, 0), placed, flat_x), shape(self.x))

    def multiply(self, values):
        return self.set(multiply(self.get(), values))


def result_type_of(*xs):
    return np.dtype(result_type(*[_type(x) for x in xs])[0])


def is_tracing() -> bool:
    return current_trace() is not None


