"""NumPy's names and semantics on traced arrays: ``import tracejit.numpy as tnp``.

Everything here decomposes into primitives. Promotion follows NumPy 2
(NEP 50: Python scalars are weak and do not widen arrays), broadcasting
follows NumPy and is made explicit with ``broadcast_in_dim``. Outside a
trace the same functions run eagerly on NumPy arrays. The tests in
tests/numpy check every function against NumPy itself, eager and jitted.

Where tracejit differs from NumPy, on purpose or for lack of a dtype:

- A Python scalar passed to a jitted function stays weak through tnp
  functions (``tnp.exp(lr)`` is weak, as in JAX); NumPy would make it a
  strong float64 scalar. Python scalars written in the code behave as in
  NumPy.
- No unsigned 64-bit dtype: sums of uint8, uint16 and uint32 are uint32
  (NumPy: uint64; JAX: uint32), of bool and signed integers int64 (as
  NumPy). Sums, products and means of float16 and bfloat16 accumulate in
  float32 and return the input dtype (as JAX; NumPy for float16). Functions
  NumPy computes in float16 for booleans (``exp``, ``sqrt``, ...) give
  float64, as before small dtypes existed.
- Results with data-dependent shapes cannot be traced: ``nonzero``,
  ``unique``, one-argument ``where``, indexing with a traced boolean mask
  (a concrete NumPy mask works).
- Traced integer indices are clamped into range (concrete ones are
  checked and raise IndexError as in NumPy); ``x.at[i].set`` with traced
  repeated indices sums their values, where NumPy keeps the last.
- ``x ** 0.5`` with a literal 0.5 is ``sqrt`` as NumPy computes it; with
  a traced exponent it is ``pow`` (they differ at -inf).
"""
from __future__ import annotations

import builtins
import math
import operator
import string
import types

import numpy as np

from ..core import Tracer, current_trace
from ..errors import DTypeError, ScalarOverflowError, ShapeError
from ..naming import add_name_keyword
from ..ir import dims
from ..ir import dtypes as _dt
from ..ir.types import DTYPES, FLOATS, TensorType, canonical_dtype
from ..ir.types import result_type as _result_type
from ..primitives import conv as _cv
from ..primitives import elementwise as _ew
from ..primitives import linalg as _la
from ..primitives import random as _rp
from ..primitives import reduce as _rd
from ..primitives import shape as _sh
from ..slicing import apply_traced_slices

# dtype names, so ``tnp.float32`` works as in NumPy
float32, float64, int32, int64, uint32 = np.float32, np.float64, np.int32, np.int64, np.uint32
int8, int16, uint8, uint16, float16 = np.int8, np.int16, np.uint8, np.uint16, np.float16
bool_ = np.bool_
pi, e, inf, nan, newaxis = np.pi, np.e, np.inf, np.nan, None
ndarray = (np.ndarray, Tracer)


# --- values, types and promotion -------------------------------------------
def _type(x) -> TensorType:
    if isinstance(x, Tracer):
        return x.aval
    try:
        if isinstance(x, (list, tuple)):
            return TensorType.of(np.asarray(x))
        return TensorType.of(x)
    except (TypeError, ValueError) as e:   # None, a string, a ragged list, complex
        raise DTypeError(f"operand {_brief(x)} ({type(x).__name__}) is not an array or a "
                         f"number tracejit supports: {e}") from None


def _brief(x) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def shape(x):
    return _type(x).shape


def ndim(x):
    return len(shape(x))


def size(x):
    return _type(x).size


def _is_scalar_literal(x):
    """A Python scalar (weakly typed); NumPy scalars such as np.float64,
    though a float subclass, are strongly typed."""
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def asarray(x, dtype=None):
    """A value usable as an operand: tracers stay, everything else becomes a
    NumPy array (or a typed constant when tracing)."""
    if isinstance(x, Tracer):
        return x if dtype is None else astype(x, dtype)
    if isinstance(x, (list, tuple)) and _holds_tracer(x):
        out = stack([asarray(v) for v in x])   # tnp.array([x, 2 * x])
        return out if dtype is None else astype(out, dtype)
    arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=canonical_dtype(dtype))
    if arr.dtype.kind == "c":
        raise DTypeError(f"dtype {arr.dtype} is not supported by tracejit")
    if arr.dtype.name not in DTYPES and arr.dtype.kind in "fiu":   # longdouble, uint64
        arr = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
    return arr


array = asarray


def _holds_tracer(x) -> bool:
    """Whether the nested list/tuple ``x`` holds a traced value anywhere."""
    if isinstance(x, Tracer):
        return True
    return isinstance(x, (list, tuple)) and builtins.any(_holds_tracer(v) for v in x)


def _lift(x, dtype: str, weak: bool = False):
    """``x`` as a value of ``dtype`` for implicit promotion: Python scalars
    become typed constants. ``weak`` keeps a weak value weak: only when
    every operand is weak (two Python scalar arguments of a jitted
    function), so weak values always have a Python scalar's dtype."""
    if _is_scalar_literal(x):
        with np.errstate(all="ignore"):
            try:
                return np.asarray(x, dtype=dtype)
            except OverflowError:   # NumPy 2: a Python int that does not fit
                raise ScalarOverflowError(f"Python integer {x} out of bounds for "
                                          f"{dtype}") from None
    t = _type(x)
    if t.dtype == dtype:
        return x if isinstance(x, Tracer) else asarray(x)
    return _ew.convert(x if isinstance(x, Tracer) else asarray(x), dtype=dtype,
                       weak=weak and t.weak)


def astype(x, dtype):
    """Explicit conversion; the result is strongly typed."""
    dtype = canonical_dtype(dtype)
    t = _type(x)
    if t.dtype == dtype and not t.weak:
        return x if isinstance(x, Tracer) else asarray(x)
    return _ew.convert(asarray(x), dtype=dtype)


def broadcast_shapes(*shapes):
    try:
        return dims.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError("operands could not be broadcast together with shapes "
                         + " ".join(str(tuple(s)) for s in shapes)) from None


def _new_shape(shape) -> tuple:
    """A shape for a new array: ints, none negative (refused here, where the
    array is created, not later by whatever uses it)."""
    shape = _int_tuple(shape)
    if builtins.any(d < 0 for d in shape):
        raise ShapeError(f"negative dimensions are not allowed: shape {shape}")
    return shape


def broadcast_to(x, shape):
    shape = _new_shape(shape)
    x = asarray(x)
    xs = _type(x).shape
    if xs == shape:
        return x
    if len(xs) > len(shape) or broadcast_shapes(xs, shape) != shape:
        raise ShapeError(f"cannot broadcast shape {xs} to {shape}")
    offset = len(shape) - len(xs)
    return _sh.broadcast_in_dim(x, shape=shape,
                                broadcast_dimensions=tuple(range(offset, len(shape))))


def broadcast_arrays(*xs):
    s = broadcast_shapes(*[shape(x) for x in xs])
    return [broadcast_to(x, s) for x in xs]


def _promote(*xs, float_only=False):
    """Common dtype (NumPy promotion) and common shape (broadcasting)."""
    types = [_type(x) for x in xs]
    dtype, weak = _result_type(*types)
    if float_only and dtype not in FLOATS:
        dtype = "float64"
    if weak and builtins.all(_is_scalar_literal(x) for x in xs):
        with np.errstate(all="ignore"):
            return [np.asarray(x, dtype=dtype) for x in xs]
    out_shape = broadcast_shapes(*[t.shape for t in types])
    vals = []
    for x, t in zip(xs, types):
        if weak and _is_scalar_literal(x):
            v = x if t.dtype == dtype else _weak_constant(x, dtype)
        else:
            v = _lift(x, dtype, weak)
        vals.append(broadcast_to(v, out_shape) if t.shape != out_shape else v)
    return vals


def _weak_constant(x, dtype):
    """A Python scalar as a weakly typed constant of ``dtype``."""
    with np.errstate(all="ignore"):
        value = np.asarray(x, dtype=dtype).item()
    return _ew.constant(value=value, dtype=dtype, weak=True)


def _check_dtype(name, x, bool_ok=True, float_ok=True):
    dtype = _type(x).dtype
    if not bool_ok and dtype == "bool":
        raise DTypeError(f"tnp.{name} does not take booleans (NumPy rejects them or "
                         f"computes in int8, which tracejit lacks)")
    if not float_ok and dtype in FLOATS:
        raise DTypeError(f"tnp.{name} needs integer or boolean operands, got {dtype}")


def _bin(prim, name, float_only=False, bool_ok=True, float_ok=True):
    def fn(x, y):
        a, b = _promote(x, y, float_only=float_only)
        _check_dtype(name, a, bool_ok, float_ok)
        return prim(a, b)
    fn.__name__ = fn.__qualname__ = name
    return fn


def unary_op(prim, float_only=False, bool_ok=True, float_ok=True):
    """The NumPy-style unary function of the elementwise primitive ``prim``
    (tracejit.lax builds its own with it); ``float_only`` ones compute
    integers in float64."""
    def fn(x):
        x = asarray(x)
        if float_only and _type(x).dtype not in FLOATS:
            x = _lift(x, "float64")
        _check_dtype(prim.name, x, bool_ok, float_ok)
        return prim(x)
    fn.__name__ = fn.__qualname__ = prim.name
    return fn


def _as_float(x):
    x = asarray(x)
    return x if _type(x).dtype in FLOATS else _lift(x, "float64")


# --- elementwise ------------------------------------------------------------------
add = _bin(_ew.add, "add")
subtract = _bin(_ew.sub, "subtract", bool_ok=False)
multiply = _bin(_ew.mul, "multiply")
true_divide = divide = _bin(_ew.div, "true_divide", float_only=True)
maximum = _bin(_ew.max, "maximum")
minimum = _bin(_ew.min, "minimum")
equal = _bin(_ew.eq, "equal")
not_equal = _bin(_ew.ne, "not_equal")
less = _bin(_ew.lt, "less")
less_equal = _bin(_ew.le, "less_equal")
greater = _bin(_ew.gt, "greater")
greater_equal = _bin(_ew.ge, "greater_equal")
bitwise_and = _bin(_ew.and_, "bitwise_and", float_ok=False)
bitwise_or = _bin(_ew.or_, "bitwise_or", float_ok=False)
bitwise_xor = _bin(_ew.xor, "bitwise_xor", float_ok=False)
remainder = mod = _bin(_ew.rem, "remainder", bool_ok=False)


def floor_divide(x, y):
    """NumPy's floor division; on floats it follows NumPy's ``npy_divmod``
    (quotient of ``x - remainder(x, y)``, snapped to an integer) rather
    than ``floor(x / y)``, so ``1.0 // 0.1`` is 9.0 as in NumPy."""
    a, b = _promote(x, y)
    _check_dtype("floor_divide", a, bool_ok=False)
    if _type(a).dtype not in FLOATS:
        return _ew.div(a, b)
    q = _ew.div(subtract(a, _ew.rem(a, b)), b)
    fq = floor(q)
    q = where(greater(subtract(q, fq), 0.5), add(fq, 1), fq)
    # y = +-inf: the quotient is 0, or -1 when the signs differ (NumPy).
    signs_differ = logical_and(not_equal(a, 0), not_equal(less(a, 0), less(b, 0)))
    dt = _type(a).dtype
    inf_q = where(signs_differ, np.asarray(-1, dt), np.asarray(0, dt))
    q = where(logical_and(isinf(b), isfinite(a)), inf_q, q)
    return where(equal(b, 0), _ew.div(a, b), q)


def power(x, y):
    a, b = _promote(x, y)
    _check_dtype("power", a, bool_ok=False)
    if _type(a).dtype not in FLOATS and not isinstance(y, Tracer) and \
            np.any(np.asarray(y) < 0):
        raise ValueError("Integers to negative integer powers are not allowed.")
    if _is_scalar_literal(y) and not isinstance(y, bool) and y == 2:
        return _ew.mul(a, a)
    if _is_scalar_literal(y) and y == 0.5 and _type(a).dtype in FLOATS:
        return _ew.sqrt(a)   # NumPy's fast path for a scalar 0.5: (-inf) ** 0.5 is NaN
    return _ew.pow(a, b)


def logical_and(x, y):
    return bitwise_and(astype(x, "bool"), astype(y, "bool"))


def logical_or(x, y):
    return bitwise_or(astype(x, "bool"), astype(y, "bool"))


def logical_xor(x, y):
    return bitwise_xor(astype(x, "bool"), astype(y, "bool"))


def logical_not(x):
    return _ew.not_(astype(x, "bool"))


invert = bitwise_not = unary_op(_ew.not_, float_ok=False)
negative = unary_op(_ew.neg, bool_ok=False)
exp = unary_op(_ew.exp, float_only=True)
log = unary_op(_ew.log, float_only=True)
log1p = unary_op(_ew.log1p, float_only=True)
expm1 = unary_op(_ew.expm1, float_only=True)
tanh = unary_op(_ew.tanh, float_only=True)
sinh = unary_op(_ew.sinh, float_only=True)
sqrt = unary_op(_ew.sqrt, float_only=True)
sin = unary_op(_ew.sin, float_only=True)
cos = unary_op(_ew.cos, float_only=True)
abs = absolute = unary_op(_ew.abs)
sign = unary_op(_ew.sign, bool_ok=False)


def positive(x):
    x = asarray(x)
    _check_dtype("positive", x, bool_ok=False)
    return x


def _integral(prim):
    """floor/ceil: the identity on integers and booleans (NumPy 2)."""
    def fn(x):
        x = asarray(x)
        return prim(x) if _type(x).dtype in FLOATS else x
    fn.__name__ = fn.__qualname__ = prim.name
    return fn


floor = _integral(_ew.floor)
ceil = _integral(_ew.ceil)
rint = unary_op(_ew.round, float_only=True)   # half to even


def trunc(x):
    x = asarray(x)
    if _type(x).dtype not in FLOATS:
        return x
    return where(less(x, 0), ceil(x), floor(x))


fix = trunc


def round(x, decimals=0):
    """Half to even, as NumPy: ``rint(x * 10**d) / 10**d`` on floats."""
    x = asarray(x)
    _check_dtype("round", x, bool_ok=False)
    if _type(x).dtype not in FLOATS:
        if decimals < 0:
            raise NotImplementedError("tnp.round of integers to negative decimals")
        return x
    if decimals > 0:
        return true_divide(rint(multiply(x, 10.0 ** decimals)), 10.0 ** decimals)
    if decimals < 0:
        return multiply(rint(true_divide(x, 10.0 ** -decimals)), 10.0 ** -decimals)
    return rint(x)


around = round


def fabs(x):
    return abs(_as_float(x))


def square(x):
    x = asarray(x)
    _check_dtype("square", x, bool_ok=False)
    return multiply(x, x)


def reciprocal(x):
    """``1 / x``; on integers C's truncating division, as NumPy (0 for
    |x| > 1; NumPy leaves 1 / 0 undefined, here it is 0)."""
    x = asarray(x)
    _check_dtype("reciprocal", x, bool_ok=False)
    if _type(x).dtype in FLOATS:
        return true_divide(1, x)
    return where(equal(abs(x), 1), x, 0)


def log2(x):
    return true_divide(log(x), math.log(2.0))


def log10(x):
    return true_divide(log(x), math.log(10.0))


def tan(x):
    x = _as_float(x)
    return true_divide(sin(x), cos(x))


def isfinite(x):
    x = asarray(x)
    if _type(x).dtype not in FLOATS:
        return ones(shape(x), "bool")
    return _ew.is_finite(x)


def isnan(x):
    x = asarray(x)
    if _type(x).dtype not in FLOATS:
        return zeros(shape(x), "bool")
    return not_equal(x, x)


def isinf(x):
    x = asarray(x)
    if _type(x).dtype not in FLOATS:
        return zeros(shape(x), "bool")
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
    """``minimum(maximum(x, a_min), a_max)``, NaN-propagating as NumPy."""
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return asarray(x)


def fmax(x, y):
    """Elementwise maximum that ignores NaN (returns the other operand)."""
    a, b = _promote(x, y)
    return where(isnan(b), a, where(isnan(a), b, maximum(a, b)))


def fmin(x, y):
    a, b = _promote(x, y)
    return where(isnan(b), a, where(isnan(a), b, minimum(a, b)))


def logaddexp(x, y):
    """``log(exp(x) + exp(y))`` without overflow, as NumPy computes it."""
    a, b = _promote(x, y, float_only=True)
    big = add(maximum(a, b), log1p(exp(negative(abs(subtract(a, b))))))
    # at a tie (infinities included) the mean keeps the derivative symmetric: 1/2 each
    return where(equal(a, b), add(multiply(add(a, b), 0.5), math.log(2.0)), big)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """NumPy's formula: ``|a - b| <= atol + rtol * |b|``, or equal."""
    b = asarray(b)
    b = astype(b, _result_type(_type(b), TensorType((), "float64", True))[0])
    close = logical_and(less_equal(abs(subtract(a, b)), add(atol, multiply(rtol, abs(b)))),
                        isfinite(b))
    result = logical_or(close, equal(a, b))
    if equal_nan:
        result = logical_or(result, logical_and(isnan(a), isnan(b)))
    return result


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    x = asarray(x)
    dtype = _type(x).dtype
    if dtype not in FLOATS:
        return x
    info = finfo(dtype)
    x = where(isnan(x), _lift(nan, dtype), x)
    x = where(equal(x, np.inf), _lift(info.max if posinf is None else posinf, dtype), x)
    return where(equal(x, -np.inf), _lift(info.min if neginf is None else neginf, dtype), x)


# --- reductions ----------------------------------------------------------------------
def _axes(x, axis):
    """Normalized, sorted axes: None is every axis, negatives count from the end."""
    nd = ndim(x)
    if axis is None:
        return tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = operator.index(a)
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


def _reduced_shape(x, axes):
    return tuple(n for d, n in enumerate(shape(x)) if d not in axes)


def _accumulation_dtype(x, dtype):
    """NumPy sums booleans and signed integers in int64 (the platform
    integer); unsigned ones would widen to uint64, which tracejit lacks:
    they sum in uint32 (as JAX)."""
    if dtype is not None:
        return canonical_dtype(dtype)
    d = _type(x).dtype
    return "int64" if d in ("bool", "int8", "int16", "int32") else \
        "uint32" if d in ("uint8", "uint16") else d


def _sum_like(prim):
    def fn(a, axis=None, dtype=None, keepdims=False):
        x = asarray(a)
        out_dtype = _accumulation_dtype(x, dtype)
        x = astype(x, _dt.compute(out_dtype))   # float16/bfloat16 accumulate in float32
        axes = _axes(x, axis)
        return astype(_keep(x, prim(x, axes=axes), axes, keepdims), out_dtype)
    return fn


sum = _sum_like(_rd.reduce_sum)
prod = _sum_like(_rd.reduce_prod)


def _extremum(prim, combine, name):
    def fn(a, axis=None, keepdims=False, initial=None):
        x = asarray(a)
        axes = _axes(x, axis)
        empty = builtins.any(shape(x)[d] == 0 for d in axes)
        if empty and initial is None:
            raise ShapeError(f"zero-size array to reduction operation {name} which has no "
                             f"identity (shape {shape(x)}, axis {axis}); pass initial=")
        if empty:
            r = full(_reduced_shape(x, axes), initial, _type(x).dtype)
        else:
            r = prim(x, axes=axes)
            if initial is not None:
                r = combine(r, _lift(initial, _type(x).dtype))
        return _keep(x, r, axes, keepdims)
    fn.__name__ = fn.__qualname__ = name
    return fn


max = amax = _extremum(_rd.reduce_max, lambda a, b: maximum(a, b), "max")
min = amin = _extremum(_rd.reduce_min, lambda a, b: minimum(a, b), "min")


def any(a, axis=None, keepdims=False):
    return max(astype(a, "bool"), axis, keepdims, initial=False)


def all(a, axis=None, keepdims=False):
    return min(astype(a, "bool"), axis, keepdims, initial=True)


def _count(x, axes):
    """The element count over ``axes``: an int, or a Dim if one is symbolic."""
    return dims.product(shape(x)[d] for d in axes)


def _divide_by_count(total, x, axes, dtype, ddof=0):
    """``total / max(count - ddof, 0)`` (NaN for an empty count, as NumPy):
    the count is a constant, or read at run time where a dimension is
    symbolic (the ``dimension_size`` primitive)."""
    n = _count(x, axes)
    if isinstance(n, dims.Dim):
        count = _sh.dimension_size(x, axes=tuple(axes), dtype=dtype)
        if ddof:
            count = maximum(subtract(count, np.asarray(ddof, dtype)), np.asarray(0, dtype))
        return true_divide(total, count)
    n = builtins.max(n - ddof, 0)
    return true_divide(total, float(n) if n else np.nan)


def _float_dtype(x, dtype):
    if dtype is not None:
        return canonical_dtype(dtype)
    d = _type(x).dtype
    return d if d in FLOATS else "float64"


def mean(a, axis=None, dtype=None, keepdims=False):
    """Sum over count; an empty reduction is NaN, as in NumPy."""
    x = asarray(a)
    out_dtype = _float_dtype(x, dtype)
    x = astype(x, _dt.compute(out_dtype) if out_dtype in FLOATS else "float64")
    axes = _axes(x, axis)
    r = _divide_by_count(sum(x, axes, keepdims=keepdims), x, axes, _type(x).dtype)
    return astype(r, out_dtype)   # an integer dtype truncates, as in NumPy


def var(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """``sum(|x - mean|**2) / max(n - ddof, 0)``, the two-pass formula NumPy uses."""
    x = asarray(a)
    x = astype(x, _float_dtype(x, dtype))
    axes = _axes(x, axis)
    d = subtract(x, mean(x, axes, keepdims=True))
    if isinstance(_count(x, axes), dims.Dim):
        return _divide_by_count(sum(multiply(d, d), axes, keepdims=keepdims), x, axes,
                                _type(x).dtype, ddof)
    n = builtins.max(_count(x, axes) - ddof, 0)
    return true_divide(sum(multiply(d, d), axes, keepdims=keepdims), float(n))


def std(a, axis=None, dtype=None, ddof=0, keepdims=False):
    return sqrt(var(a, axis, dtype, ddof, keepdims))


def average(a, axis=None, weights=None, keepdims=False):
    if weights is None:
        return mean(a, axis, keepdims=keepdims)
    x, w = asarray(a), asarray(weights)
    if shape(w) != shape(x):
        if axis is None or ndim(w) != 1:
            raise ShapeError(f"average: weights of shape {shape(w)} do not match {shape(x)}; "
                             f"1-D weights need an axis")
        ax = _axes(x, axis)[0]
        w = reshape(w, tuple(-1 if d == ax else 1 for d in range(ndim(x))))
    x, w = _promote(_as_float(x), w)
    return true_divide(sum(multiply(x, w), axis, keepdims=keepdims),
                       sum(w, axis, keepdims=keepdims))


def nansum(a, axis=None, dtype=None, keepdims=False):
    x = asarray(a)
    return sum(where(isnan(x), np.asarray(0, _type(x).dtype), x), axis, dtype, keepdims)


def nanmean(a, axis=None, dtype=None, keepdims=False):
    x = asarray(a)
    x = astype(x, _float_dtype(x, dtype))
    valid = logical_not(isnan(x))
    total = sum(where(valid, x, np.asarray(0, _type(x).dtype)), axis, keepdims=keepdims)
    return true_divide(total, astype(sum(valid, axis, keepdims=keepdims), _type(x).dtype))


def count_nonzero(a, axis=None, keepdims=False):
    return sum(astype(a, "bool"), axis, keepdims=keepdims)


def _arg(prim, a, axis, keepdims):
    x = asarray(a)
    if axis is None:
        flat = reshape(x, (-1,))
        r = prim(flat, axis=0, index_dtype="int64")
        return reshape(r, (1,) * ndim(x)) if keepdims else r
    ax = _axes(x, axis)[0]
    return _keep(x, prim(x, axis=ax, index_dtype="int64"), (ax,), keepdims)


def argmax(a, axis=None, keepdims=False):
    """Index of the first maximum (NaN counts as the maximum, as in NumPy)."""
    return _arg(_rd.argmax, a, axis, keepdims)


def argmin(a, axis=None, keepdims=False):
    return _arg(_rd.argmin, a, axis, keepdims)


def cumsum(a, axis=None, dtype=None):
    """Inclusive prefix sums along ``axis``, as a windowed sum whose window
    spans the whole axis (padded on the low side)."""
    x = asarray(a)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = _axes(x, axis)[0]
    x = astype(x, _accumulation_dtype(x, dtype))
    n = shape(x)[ax]
    if n == 0:
        return x
    nd = ndim(x)
    win = tuple(n if d == ax else 1 for d in range(nd))
    pad_ = tuple((n - 1, 0) if d == ax else (0, 0) for d in range(nd))
    return _cv.reduce_window(x, computation="sum", window_dimensions=win,
                             window_strides=(1,) * nd, padding=pad_)


# --- shapes ---------------------------------------------------------------------------
def _int_tuple(s):
    """A shape as a tuple of ints (symbolic dimensions stay Dims)."""
    if isinstance(s, (int, np.integer, dims.Dim)):
        s = (s,)
    return tuple(d if isinstance(d, dims.Dim) else operator.index(d) for d in s)


def reshape(a, shape, *more):
    """``reshape(x, (2, -1))`` or ``reshape(x, 2, -1)``; one dim may be -1."""
    newshape = list(_int_tuple((shape,) + more if more else shape))
    x = asarray(a)
    t = _type(x)
    if newshape.count(-1) > 1 or builtins.any(d < -1 for d in newshape
                                              if not isinstance(d, dims.Dim)):
        raise ShapeError(f"bad shape {tuple(newshape)} (only one dimension may be -1)")
    if -1 in newshape:
        known = dims.product(d for d in newshape if not (isinstance(d, int) and d == -1))
        if known == 0 or t.size % known:
            raise ShapeError(f"cannot reshape array of shape {t.shape} into shape "
                             f"{tuple(newshape)}")
        newshape[newshape.index(-1)] = t.size // known
    newshape = tuple(newshape)
    if newshape == t.shape:
        return x
    return _sh.reshape(x, new_shape=newshape)


def ravel(a):
    return reshape(a, (-1,))


flatten = ravel


def _perm(nd, axes, what):
    perm = tuple(operator.index(a) for a in axes)
    if len(perm) != nd or builtins.any(not -nd <= a < nd for a in perm) or \
            len({a % nd for a in perm}) != nd:
        raise ShapeError(f"{what}: axes {perm} are not a permutation of {nd} axes")
    return tuple(a % nd for a in perm)


def transpose(a, axes=None, *more):
    x = asarray(a)
    nd = ndim(x)
    if more:
        axes = (axes,) + more
    perm = tuple(range(nd))[::-1] if axes is None else _perm(nd, axes, "transpose")
    if perm == tuple(range(nd)):
        return x
    return _sh.transpose(x, permutation=perm)


def swapaxes(a, axis1, axis2):
    nd = ndim(a)
    i, j = _axes(a, axis1)[0], _axes(a, axis2)[0]
    perm = list(range(nd))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def _axis_list(x, axis, nd):
    axes = [operator.index(axis)] if isinstance(axis, (int, np.integer)) else \
        [operator.index(a) for a in axis]
    if builtins.any(not -nd <= a < nd for a in axes) or len({a % nd for a in axes}) != len(axes):
        raise ShapeError(f"axes {tuple(axes)} out of range or repeated for {nd} dimensions")
    return [a % nd for a in axes]


def moveaxis(a, source, destination):
    nd = ndim(a)
    src, dst = _axis_list(a, source, nd), _axis_list(a, destination, nd)
    if len(src) != len(dst):
        raise ShapeError("moveaxis: source and destination need as many axes")
    order = [d for d in range(nd) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def expand_dims(a, axis):
    s = shape(a)
    out_nd = len(s) + (1 if isinstance(axis, (int, np.integer)) else len(axis))
    axes = _axis_list(a, axis, out_nd)
    it = iter(s)
    return reshape(a, tuple(1 if d in axes else next(it) for d in range(out_nd)))


def squeeze(a, axis=None):
    s = shape(a)
    if axis is None:
        axes = [d for d, n in enumerate(s) if n == 1]
    else:
        axes = list(_axes(a, axis))
        for d in axes:
            if s[d] != 1:
                raise ShapeError(f"cannot select an axis to squeeze out which has size "
                                 f"not equal to one (axis {d} of shape {s})")
    return reshape(a, tuple(n for d, n in enumerate(s) if d not in axes))


def _each(fn, arys):
    out = [fn(a) for a in arys]
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys):
    return _each(lambda a: reshape(a, (1,)) if ndim(a) == 0 else asarray(a), arys)


def atleast_2d(*arys):
    return _each(lambda a: reshape(a, ((1,) * (2 - ndim(a)) + shape(a)))
                 if ndim(a) < 2 else asarray(a), arys)


def atleast_3d(*arys):
    def three(a):
        s = shape(a)
        new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
        return reshape(a, new)
    return _each(three, arys)


def promote_dtypes(xs):
    """``xs`` converted to their common dtype, by NumPy's promotion rules
    (weak Python scalars do not widen arrays); tracejit.lax promotes its
    operands with it."""
    dtype, _ = _result_type(*[_type(x) for x in xs])
    return [_lift(x, dtype) for x in xs]


def float_operands(*xs):
    """``xs`` as arrays of one float dtype, float32 or float64 (what LAPACK
    computes in): their common dtype, widened to float32 at least, float64
    where it is another (tnp.linalg and tracejit.scipy.linalg use it)."""
    xs = [asarray(x) for x in xs]
    dt = np.result_type(*[x.dtype for x in xs], np.float32)
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float64)
    return [astype(x, dt) if x.dtype != dt else x for x in xs]


def concatenate(arrays, axis=0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ShapeError("need at least one array to concatenate")
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    vals = promote_dtypes(arrays)
    if ndim(vals[0]) == 0:
        raise ShapeError("zero-dimensional arrays cannot be concatenated")
    ax = _axes(vals[0], axis)[0]
    for v in vals[1:]:
        s0, s = shape(vals[0]), shape(v)
        if len(s) != len(s0) or builtins.any(a != b for d, (a, b) in enumerate(zip(s0, s))
                                             if d != ax):
            raise ShapeError(f"concatenate: shapes {s0} and {s} do not fit along axis {ax}")
    if len(vals) == 1:
        return vals[0]
    return _sh.concatenate(*vals, axis=ax)


def stack(arrays, axis=0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ShapeError("need at least one array to stack")
    s = shape(arrays[0])
    for a in arrays:
        if shape(a) != s:
            raise ShapeError("all input arrays must have the same shape: "
                             + ", ".join(str(shape(a)) for a in arrays))
    ax = _axis_list(arrays[0], axis, len(s) + 1)[0]
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax)


def hstack(tup):
    arrays = [atleast_1d(a) for a in tup]
    return concatenate(arrays, axis=0 if ndim(arrays[0]) == 1 else 1)


def vstack(tup):
    return concatenate([atleast_2d(a) for a in tup], axis=0)


def dstack(tup):
    return concatenate([atleast_3d(a) for a in tup], axis=2)


def column_stack(tup):
    return concatenate([reshape(a, (-1, 1)) if ndim(a) < 2 else asarray(a) for a in tup],
                       axis=1)


def _slice_axis(x, ax, start, stop, step=1):
    s = shape(x)
    st = [0] * len(s)
    lim = list(s)
    strides = [1] * len(s)
    st[ax], lim[ax], strides[ax] = start, stop, step
    if st == [0] * len(s) and lim == list(s) and step == 1:
        return x
    return _sh.slice(x, start=tuple(st), limit=tuple(lim), strides=tuple(strides))


def _split_at(x, ax, bounds):
    """Pieces ``x[b_i:b_{i+1}]`` along ``ax``, with Python slice semantics."""
    n = shape(x)[ax]
    edges = [0] + [int(b) for b in bounds] + [n]
    out = []
    for a, b in zip(edges, edges[1:]):
        start, stop, _ = slice(a, b).indices(n)
        out.append(_slice_axis(x, ax, start, builtins.max(start, stop)))
    return out


def split(ary, indices_or_sections, axis=0):
    x = asarray(ary)
    ax = _axes(x, axis)[0]
    n = shape(x)[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ShapeError(f"array split does not result in an equal division: "
                             f"{n} into {k}")
        return _split_at(x, ax, [i * (n // k) for i in range(1, k)])
    return _split_at(x, ax, indices_or_sections)


def array_split(ary, indices_or_sections, axis=0):
    """Like split, but ``k`` sections need not divide the axis evenly."""
    x = asarray(ary)
    ax = _axes(x, axis)[0]
    if not isinstance(indices_or_sections, (int, np.integer)):
        return _split_at(x, ax, indices_or_sections)
    k = int(indices_or_sections)
    if k <= 0:
        raise ShapeError("number sections must be larger than 0")
    q, r = divmod(shape(x)[ax], k)
    sizes = [q + 1] * r + [q] * (k - r)
    return _split_at(x, ax, np.cumsum(sizes)[:-1].tolist())


def flip(m, axis=None):
    x = asarray(m)
    axes = _axes(x, axis)
    return _sh.rev(x, dimensions=axes) if axes else x


def fliplr(m):
    return flip(m, 1)


def flipud(m):
    return flip(m, 0)


def roll(a, shift, axis=None):
    """Elements shifted along ``axis`` (cyclically), as two slices."""
    x = asarray(a)
    if axis is None:
        return reshape(roll(ravel(x), shift, 0), shape(x))
    shifts = _int_tuple(shift)
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    shifts, axes = np.broadcast_arrays(np.asarray(shifts), np.asarray(axes))
    for s, ax in zip(shifts.ravel().tolist(), axes.ravel().tolist()):
        ax = _axes(x, ax)[0]
        n = shape(x)[ax]
        if n and s % n:
            k = n - s % n
            x = concatenate([_slice_axis(x, ax, k, n), _slice_axis(x, ax, 0, k)], axis=ax)
    return x


def pad(array, pad_width, mode="constant", constant_values=0):
    """``mode`` is 'constant' (a pad primitive) or 'edge', 'reflect',
    'symmetric', 'wrap' (a gather per padded axis of the indices NumPy's
    own pad computes for ``arange(n)``)."""
    x = asarray(array)
    nd = ndim(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2))
    if (pw < 0).any():
        raise ShapeError(f"pad: negative pad width {pad_width}")
    if mode == "constant":
        value = _lift(constant_values, _type(x).dtype)
        return _sh.pad(x, value, config=tuple((int(lo), int(hi), 0) for lo, hi in pw))
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise NotImplementedError(f"tnp.pad mode {mode!r}")
    for d, (lo, hi) in enumerate(pw.tolist()):
        if lo or hi:
            idx = np.pad(np.arange(shape(x)[d]), (lo, hi), mode=mode)
            x = _sh.gather(x, idx, axis=d)
    return x


def tile(A, reps):
    x = asarray(A)
    reps = _int_tuple(reps)
    s = shape(x)
    nd = builtins.max(len(s), len(reps))
    s = (1,) * (nd - len(s)) + s
    reps = (1,) * (nd - len(reps)) + reps
    x = reshape(x, s)
    # broadcast to (r0, s0, r1, s1, ...) and merge pairs
    big = tuple(v for r, n in zip(reps, s) for v in (r, n))
    b = _sh.broadcast_in_dim(x, shape=big, broadcast_dimensions=tuple(range(1, 2 * nd, 2)))
    return reshape(b, tuple(r * n for r, n in zip(reps, s)))


def repeat(a, repeats, axis=None):
    """Each element ``repeats`` times; per-element counts gather with
    indices computed here, since they are concrete."""
    x = asarray(a)
    if axis is None:
        x, axis = ravel(x), 0
    ax = _axes(x, axis)[0]
    s = shape(x)
    if np.ndim(repeats):
        counts = np.broadcast_to(np.asarray(repeats, dtype=np.int64), (s[ax],))
        return _sh.gather(x, np.repeat(np.arange(s[ax]), counts), axis=ax)
    r = operator.index(repeats)
    big = s[:ax + 1] + (r,) + s[ax + 1:]
    dims = tuple(range(ax + 1)) + tuple(range(ax + 2, len(s) + 1))
    b = _sh.broadcast_in_dim(x, shape=big, broadcast_dimensions=dims)
    return reshape(b, s[:ax] + (s[ax] * r,) + s[ax + 1:])


def diff(a, n=1, axis=-1):
    """``x[1:] - x[:-1]`` along ``axis``, ``n`` times (``!=`` for booleans)."""
    x = asarray(a)
    ax = _axes(x, axis)[0]
    for _ in range(n):
        m = shape(x)[ax]
        hi, lo = _slice_axis(x, ax, builtins.min(1, m), m), _slice_axis(x, ax, 0, builtins.max(m - 1, 0))
        x = not_equal(hi, lo) if _type(x).dtype == "bool" else subtract(hi, lo)
    return x


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The ``offset`` diagonal of the (axis1, axis2) planes, last in the
    result, as a gather of its flat positions."""
    x = asarray(a)
    i, j = _axes(x, axis1)[0], _axes(x, axis2)[0]
    if i == j:
        raise ShapeError("diagonal: axis1 and axis2 cannot be the same")
    x = moveaxis(x, (i, j), (-2, -1))
    s = shape(x)
    r, c = s[-2], s[-1]
    rows = np.arange(builtins.max(0, -offset), builtins.max(0, builtins.min(r, c - offset)))
    flat = reshape(x, s[:-2] + (r * c,))
    return _sh.gather(flat, rows * c + rows + offset, axis=len(s) - 2)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def diag(v, k=0):
    """The k-th diagonal of a 2-D array, or a 2-D array with ``v`` on it."""
    v = asarray(v)
    if ndim(v) == 2:
        return diagonal(v, k)
    if ndim(v) != 1:
        raise ShapeError(f"diag: input must be 1-D or 2-D, got shape {shape(v)}")
    n = shape(v)[0] + builtins.abs(k)
    vals = pad(v, (0, builtins.abs(k)))
    vals = reshape(vals, (n, 1) if k >= 0 else (1, n))
    return where(eye(n, k=k, dtype="bool"), vals, np.zeros((), _type(v).dtype))


# --- creation -------------------------------------------------------------------------
def _creation_dtype(dtype, default="float64"):
    return canonical_dtype(dtype) if dtype is not None else default


def _natural_dtype(value):
    """The dtype NumPy gives ``np.asarray(value)`` (Python ints are int64)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float) and not isinstance(value, np.generic):
        return "float64"
    return _type(asarray(value)).dtype


def full(shape, fill_value, dtype=None):
    shape = _new_shape(shape)
    dtype = _natural_dtype(fill_value) if dtype is None else canonical_dtype(dtype)
    return broadcast_to(astype(fill_value, dtype), shape)


def zeros(shape, dtype=None):
    return full(shape, 0, _creation_dtype(dtype))


def ones(shape, dtype=None):
    return full(shape, 1, _creation_dtype(dtype))


def empty(shape, dtype=None):
    """Zeros: a traced program has no uninitialized memory to hand out."""
    return zeros(shape, dtype)


def full_like(a, fill_value, dtype=None):
    return full(shape(a), fill_value, dtype or _type(a).dtype)


def zeros_like(a, dtype=None):
    return full_like(a, 0, dtype)


def ones_like(a, dtype=None):
    return full_like(a, 1, dtype)


def empty_like(a, dtype=None):
    return zeros_like(a, dtype)


def arange(start, stop=None, step=1, dtype=None):
    """``start + step * iota``; the bounds must be concrete (the length is
    part of the shape), NumPy decides the length and default dtype."""
    if stop is None:
        start, stop = 0, start
    for v in (start, stop, step):
        if isinstance(v, Tracer):
            raise ShapeError("tnp.arange needs concrete bounds (its length is part of the shape)")
    if isinstance(stop, dims.Dim):   # arange(b) of a symbolic size: 0, 1, ..., b - 1
        if not (isinstance(start, int) and start == 0 and step == 1):
            stop.__index__()   # raises SymbolicDimensionError
        return _sh.iota(shape=(stop,), dimension=0, dtype=canonical_dtype(dtype or "int64"))
    ref = np.arange(start, stop, step, dtype=dtype)
    dtype = _type(asarray(ref)).dtype
    idx = _sh.iota(shape=(len(ref),), dimension=0,
                   dtype=dtype if dtype in FLOATS else "int64")
    if not (start == 0 and step == 1):
        idx = add(multiply(idx, step), start)
    return astype(idx, dtype)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None):
    """``num`` evenly spaced values, computed as NumPy does (in float64,
    the last one set to ``stop``, floored for an integer dtype)."""
    num = operator.index(num)
    if num < 0:
        raise ShapeError(f"Number of samples, {num}, must be non-negative.")
    div = (num - 1) if endpoint else num
    if builtins.any(isinstance(v, Tracer) or np.ndim(v) > 0 for v in (start, stop)):
        return _linspace_arrays(start, stop, num, endpoint, retstep, dtype, div)
    start, stop = float(start), float(stop)
    step = (stop - start) / div if div > 0 else np.nan
    idx = _sh.iota(shape=(num,), dimension=0, dtype="float64")
    y = add(multiply(idx, step if div > 0 else stop - start), start)
    if endpoint and num > 1:
        y = where(equal(idx, num - 1), stop, y)
    dtype = _creation_dtype(dtype)
    if dtype not in FLOATS:
        y = floor(y)
    y = astype(y, dtype)
    return (y, step) if retstep else y


def _linspace_arrays(start, stop, num, endpoint, retstep, dtype, div):
    """linspace with traced or array ends: the samples along a new first axis."""
    start, stop = asarray(start), asarray(stop)
    ft = _result_type(_type(start), _type(stop), TensorType((), "float64", weak=True))[0]
    start, stop = astype(start, ft), astype(stop, ft)
    start, stop = broadcast_arrays(start, stop)
    extra = shape(start)
    idx = reshape(_sh.iota(shape=(num,), dimension=0, dtype=ft), (num,) + (1,) * len(extra))
    delta = subtract(stop, start)
    step = true_divide(delta, div) if div > 0 else delta
    y = add(multiply(idx, step), start)
    if endpoint and num > 1:
        y = where(equal(idx, num - 1), stop, y)
    dtype = ft if dtype is None else canonical_dtype(dtype)
    if dtype not in FLOATS:
        y = floor(y)
    y = astype(y, dtype)
    if retstep:
        return y, (step if div > 0 else full_like(step, np.nan))
    return y


def eye(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    r = _sh.iota(shape=(N, M), dimension=0, dtype="int64")
    c = _sh.iota(shape=(N, M), dimension=1, dtype="int64")
    return astype(equal(add(r, k), c), _creation_dtype(dtype))


def identity(n, dtype=None):
    return eye(n, dtype=dtype)


def tri(N, M=None, k=0, dtype=None):
    M = N if M is None else M
    r = _sh.iota(shape=(N, M), dimension=0, dtype="int64")
    c = _sh.iota(shape=(N, M), dimension=1, dtype="int64")
    return astype(less_equal(c, add(r, k)), _creation_dtype(dtype))


def tril(m, k=0):
    x = asarray(m)
    mask = tri(*shape(x)[-2:], k=k, dtype="bool")
    return where(mask, x, np.zeros((), _type(x).dtype))


def triu(m, k=0):
    x = asarray(m)
    mask = tri(*shape(x)[-2:], k=k - 1, dtype="bool")
    return where(mask, np.zeros((), _type(x).dtype), x)


def meshgrid(*xi, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    xs = [ravel(x) for x in xi]
    sizes = [shape(x)[0] for x in xs]
    axes = list(range(len(xs)))
    if indexing == "xy" and len(xs) > 1:
        axes[0], axes[1] = 1, 0
        sizes[0], sizes[1] = sizes[1], sizes[0]
    return [_sh.broadcast_in_dim(x, shape=tuple(sizes), broadcast_dimensions=(a,))
            for x, a in zip(xs, axes)]


# --- dtypes -------------------------------------------------------------------------
dtype, iinfo, promote_types = np.dtype, np.iinfo, np.promote_types
finfo = _dt.finfo   # also knows bfloat16
number, integer, signedinteger, unsignedinteger, floating = (
    np.number, np.integer, np.signedinteger, np.unsignedinteger, np.floating)


def issubdtype(arg1, arg2):
    """``np.issubdtype``, with bfloat16 a floating type (as in jax.numpy)."""
    try:
        bf16 = _dt.names_bfloat16(arg1)
    except TypeError:   # an abstract type such as np.floating
        bf16 = False
    if bf16 and arg2 in (np.floating, np.inexact, np.number):
        return True
    return np.issubdtype(arg1, arg2)


def result_type(*arrays_and_dtypes):
    """NumPy 2's result dtype; arrays may be traced, Python scalars are weak."""
    types = []
    for x in arrays_and_dtypes:
        if isinstance(x, (np.dtype, str, type)) and not _is_scalar_literal(x):
            types.append(TensorType((), canonical_dtype(x)))
        else:
            types.append(_type(x))
    return np.dtype(_result_type(*types)[0])


result_type_of = result_type


# --- contractions ---------------------------------------------------------------------
def _dot_types(a, b):
    return promote_dtypes([asarray(a), asarray(b)])


def _preferred(a, b, preferred_element_type):
    """Operands promoted together, then to JAX's ``preferred_element_type``
    (the accumulation and result dtype) when given."""
    a, b = _dot_types(a, b)
    if preferred_element_type is not None:
        t = canonical_dtype(preferred_element_type)
        a, b = astype(a, t), astype(b, t)
    return a, b


def matmul(a, b, *, precision=None, preferred_element_type=None):
    """NumPy's matmul: 1-D operands gain then lose a dim, batch dims
    broadcast. ``precision`` (JAX's) is accepted: products are exact to the
    dtype here."""
    a, b = _preferred(a, b, preferred_element_type)
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


def dot(a, b, *, precision=None, preferred_element_type=None):
    """NumPy's dot: over a's last axis and b's second-to-last (or only) one."""
    a, b = _preferred(a, b, preferred_element_type)
    if ndim(a) == 0 or ndim(b) == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=((ndim(a) - 1,), (builtins.max(ndim(b) - 2, 0),)))


def vdot(a, b, *, precision=None, preferred_element_type=None):
    return dot(ravel(a), ravel(b), preferred_element_type=preferred_element_type)


def inner(a, b, *, precision=None, preferred_element_type=None):
    a, b = _preferred(a, b, preferred_element_type)
    if ndim(a) == 0 or ndim(b) == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=((ndim(a) - 1,), (ndim(b) - 1,)))


def outer(a, b):
    return multiply(reshape(ravel(a), (-1, 1)), reshape(ravel(b), (1, -1)))


def tensordot(a, b, axes=2, *, precision=None, preferred_element_type=None):
    a, b = _preferred(a, b, preferred_element_type)
    if isinstance(axes, (int, np.integer)):
        if axes < 0 or axes > builtins.min(ndim(a), ndim(b)):
            raise ShapeError(f"tensordot: cannot contract {axes} axes of shapes "
                             f"{shape(a)} and {shape(b)}")
        ax_a = tuple(range(ndim(a) - axes, ndim(a)))
        ax_b = tuple(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = _axis_list(a, ax_a, ndim(a))
        ax_b = _axis_list(b, ax_b, ndim(b))
    if len(ax_a) != len(ax_b):
        raise ShapeError(f"tensordot: {len(ax_a)} axes of a but {len(ax_b)} of b")
    for i, j in zip(ax_a, ax_b):
        if shape(a)[i] != shape(b)[j]:
            raise ShapeError(f"tensordot: shape mismatch for sum: {shape(a)} axis {i} "
                             f"vs {shape(b)} axis {j}")
    return _la.dot_general(a, b, dimension_numbers=((tuple(ax_a), tuple(ax_b)), ((), ())))


def _einsum_specs(subscripts, ops):
    """Parse einsum subscripts: '...' becomes fresh labels (right-aligned,
    as in NumPy) and the implicit output is '...' then the labels that
    appear once, in alphabetical order."""
    subscripts = subscripts.replace(" ", "")
    ins, arrow, out = subscripts.partition("->")
    specs = ins.split(",")
    if len(specs) != len(ops):
        raise ShapeError(f"einsum: {len(specs)} subscripts for {len(ops)} operands")
    used = set(subscripts)
    fresh = [c for c in string.ascii_letters if c not in used]
    n_ell = builtins.max([ndim(o) - len(s.replace("...", "")) for s, o in zip(specs, ops)
                          if "..." in s] or [0])
    ell = "".join(fresh[:n_ell])
    expanded = []
    for s, o in zip(specs, ops):
        if "..." in s:
            k = ndim(o) - len(s.replace("...", ""))
            s = s.replace("...", ell[n_ell - k:] if k > 0 else "")
        if len(s) != ndim(o) or not builtins.all(c in string.ascii_letters for c in s):
            raise ShapeError(f"einsum: subscripts {s!r} do not fit an operand of shape {shape(o)}")
        expanded.append(s)
    if arrow:
        out = out.replace("...", ell)
    else:
        counts = {}
        for c in "".join(expanded):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    return expanded, out


def _einsum_sum(x, axes):
    """A sum that keeps the dtype (logical or for booleans), as einsum's."""
    if _type(x).dtype == "bool":
        return any(x, axes)
    return sum(x, axes, dtype=_type(x).dtype)


def _sublist_subscripts(args):
    """einsum's sublist form ``(op0, [0, 1], op1, [1, 2], [0, 2])`` as
    ``('ab,bc->ac', op0, op1)``: integers are labels, Ellipsis is '...'."""
    def letters(sub):
        return "".join("..." if s is Ellipsis else string.ascii_letters[operator.index(s)]
                       for s in sub)
    args = list(args)
    out = letters(args.pop()) if len(args) % 2 else None
    ops, subs = args[0::2], [letters(s) for s in args[1::2]]
    return ",".join(subs) + ("" if out is None else "->" + out), ops


def einsum(subscripts, *operands, optimize=None, precision=None, preferred_element_type=None):
    """Einstein summation as diagonals, sums, broadcasts and a chain of
    dot_generals (left to right; ``optimize`` and JAX's ``precision`` are
    accepted and ignored). Takes NumPy's sublist form too:
    ``einsum(a, [0, 1], b, [1, 2])``."""
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_subscripts((subscripts,) + operands)
    ops = promote_dtypes([asarray(o) for o in operands])
    if preferred_element_type is not None:
        ops = [astype(o, canonical_dtype(preferred_element_type)) for o in ops]
    specs, out = _einsum_specs(subscripts, ops)
    sizes = {}
    for s, o in zip(specs, ops):
        for c, n in zip(s, shape(o)):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ShapeError(f"einsum: label {c!r} has sizes {sizes[c]} and {n}")
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    reduced = []
    for i, (s, o) in enumerate(zip(specs, ops)):
        while len(set(s)) != len(s):   # a repeated label: take the diagonal
            c = next(c for c in s if s.count(c) > 1)
            j, k = s.index(c), s.index(c, s.index(c) + 1)
            o = diagonal(o, 0, j, k)
            s = "".join(ch for d, ch in enumerate(s) if d not in (j, k)) + c
        o = broadcast_to(o, tuple(sizes[c] for c in s))
        others = set("".join(t for j, t in enumerate(specs) if j != i)) | set(out)
        drop = [d for d, c in enumerate(s) if c not in others]
        if drop:
            o = _einsum_sum(o, tuple(drop))
            s = "".join(c for d, c in enumerate(s) if d not in drop)
        reduced.append((s, o))
    while len(reduced) > 1:
        (s1, a), (s2, b) = reduced[0], reduced[1]
        keep = set(out) | set("".join(s for s, _ in reduced[2:]))
        common = [c for c in s1 if c in s2]
        batch = [c for c in common if c in keep]
        contract = [c for c in common if c not in keep]
        dn = ((tuple(s1.index(c) for c in contract), tuple(s2.index(c) for c in contract)),
              (tuple(s1.index(c) for c in batch), tuple(s2.index(c) for c in batch)))
        r = _la.dot_general(a, b, dimension_numbers=dn)
        rs = "".join(batch) + "".join(c for c in s1 if c not in common) + \
            "".join(c for c in s2 if c not in common)
        reduced = [(rs, r)] + reduced[2:]
    s, r = reduced[0]
    extra = [d for d, c in enumerate(s) if c not in out]
    if extra:
        r = _einsum_sum(r, tuple(extra))
        s = "".join(c for c in s if c in out)
    return transpose(r, [s.index(c) for c in out])


# linalg (norm and the decompositions) is tracejit/numpy/linalg.py


# --- sorting and comparisons of whole arrays ---------------------------------------
def argsort(a, axis=-1, kind=None, stable=None):
    """Stable argsort (ties keep their order; NaN last), whatever ``kind``."""
    x = asarray(a)
    if axis is None:
        x, axis = ravel(x), 0
    if ndim(x) == 0:
        return zeros((), "int64")
    return _rp.argsort(x, axis=_axes(x, axis)[0], index_dtype="int64")


def sort(a, axis=-1, kind=None, stable=None):
    x = asarray(a)
    if axis is None:
        x, axis = ravel(x), 0
    if ndim(x) == 0:
        return x
    return take_along_axis(x, argsort(x, axis), axis)


def median(a, axis=None, keepdims=False):
    """The middle of the sorted values (mean of the two middle ones); NaN
    where a NaN is present, as in NumPy."""
    x = _as_float(a)
    axes = _axes(x, axis)
    rest = [d for d in range(ndim(x)) if d not in axes]
    moved = transpose(x, rest + list(axes))
    flat = reshape(moved, tuple(shape(x)[d] for d in rest) + (_count(x, axes),))
    n = shape(flat)[-1]
    if n == 0:
        r = full(shape(flat)[:-1], np.nan, _type(x).dtype)
    else:
        s = sort(flat, axis=-1)
        hi = take(s, n // 2, axis=-1)
        # An odd count takes the middle value itself (no (x + x) / 2 overflow).
        mid = hi if n % 2 else multiply(add(take(s, n // 2 - 1, axis=-1), hi), 0.5)
        r = where(any(isnan(flat), axis=-1), np.asarray(np.nan, _type(x).dtype), mid)
    return _keep(x, r, axes, keepdims)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1, a2, equal_nan=False):
    """A 0-d boolean (traced when the operands are); False for other shapes."""
    a1, a2 = asarray(a1), asarray(a2)
    if shape(a1) != shape(a2):
        return np.asarray(False)
    eq = equal(a1, a2)
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    return all(eq)


def copy(a):
    """Values are immutable, so a copy is the value itself."""
    return asarray(a)


def append(arr, values, axis=None):
    if axis is None:
        return concatenate([ravel(arr), ravel(values)])
    return concatenate([arr, values], axis=axis)


def float_power(x1, x2):
    return power(astype(x1, "float64"), astype(x2, "float64"))


# --- indexing -------------------------------------------------------------------------
def _is_index_array(i):
    return isinstance(i, (Tracer, np.ndarray))


def _index_tuple(idx):
    """The index as a tuple: lists become arrays, and a concrete boolean
    mask becomes its ``nonzero()`` index arrays (as NumPy does). A traced
    mask has a data-dependent result shape and cannot be used."""
    out = []
    for i in (idx if isinstance(idx, tuple) else (idx,)):
        if isinstance(i, list):
            i = asarray(i) if i else np.zeros(0, np.int64)
        if isinstance(i, (bool, np.bool_)):
            raise IndexError("tnp indexing with a Python boolean is not supported")
        if isinstance(i, np.ndarray) and i.dtype == np.bool_:
            out.extend(np.nonzero(i))
        elif isinstance(i, Tracer) and _type(i).dtype == "bool":
            raise IndexError("boolean mask indexing has a data-dependent shape and cannot "
                             "be traced; use tnp.where(mask, x, 0) instead")
        elif i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) or \
                _is_index_array(i):
            out.append(i)
        else:
            raise IndexError(f"only integers, slices, ellipsis, newaxis and integer or "
                             f"boolean arrays are valid indices, got {type(i).__name__}")
    return tuple(out)


def _expand_index(idx, nd):
    """Replace the Ellipsis (or pad the end) with full slices."""
    n_real = builtins.sum(1 for i in idx if i is not None and i is not Ellipsis)
    ellipses = [k for k, i in enumerate(idx) if i is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > nd:
        raise IndexError(f"too many indices for array: array is {nd}-dimensional, "
                         f"but {n_real} were indexed")
    fill = (slice(None),) * (nd - n_real)
    if ellipses:
        k = ellipses[0]
        return idx[:k] + fill + idx[k + 1:]
    return idx + fill


def _size_of(x, d):
    """The size of dimension ``d`` of ``x``: an int, or for a symbolic
    dimension a traced int64 scalar read at run time."""
    n = shape(x)[d]
    return _sh.dimension_size(x, axes=(d,), dtype="int64") if isinstance(n, dims.Dim) else n


def _array_index(i, n, d):
    """An integer index array for a dim of size ``n``, made non-negative.
    Concrete indices are checked as NumPy does; traced ones are clamped, and
    so are all indices into a symbolic dim (``n`` is then a traced size)."""
    if isinstance(n, Tracer):
        i = asarray(i)
    if isinstance(i, (int, np.integer)) or isinstance(i, np.ndarray):
        a = np.asarray(i)
        if a.dtype.kind not in "iu":
            raise IndexError("arrays used as indices must be of integer (or boolean) type")
        if a.size and (a.min() < -n or a.max() >= n):
            bad = a[(a < -n) | (a >= n)].flat[0]
            raise IndexError(f"index {bad} is out of bounds for axis {d} with size {n}")
        return np.where(a < 0, a + n, a).astype(np.int64)
    if _type(i).dtype not in ("int32", "int64", "uint32"):
        raise IndexError(f"arrays used as indices must be of integer type, got {_type(i)}")
    i = astype(i, "int64")
    i = where(less(i, 0), add(i, n), i)
    if isinstance(n, Tracer):
        return clip(i, 0, maximum(subtract(n, 1), 0))
    return clip(i, 0, builtins.max(n - 1, 0))


def _basic_index(x, idx, has_adv):
    """Apply slices (and integers, when no index array makes them advanced)
    as one reverse + slice + reshape."""
    s = shape(x)
    starts, limits, strides, rev_dims, drop = [], [], [], [], []
    for d, i in enumerate(idx):
        n = s[d]
        if isinstance(i, slice) and isinstance(n, dims.Dim) and i == slice(None):
            starts.append(0), limits.append(n), strides.append(1)   # all of a symbolic dim
        elif isinstance(i, slice):
            r = range(*i.indices(n))
            step = builtins.abs(r.step)
            first = (r.start if r.step > 0 else n - 1 - r.start) if len(r) else 0
            if r.step < 0:
                rev_dims.append(d)
            starts.append(first)
            limits.append(first + (len(r) - 1) * step + 1 if len(r) else first)
            strides.append(step)
        elif isinstance(i, (int, np.integer)) and not has_adv:
            j = int(_array_index(i, n, d))
            starts.append(j), limits.append(j + 1), strides.append(1), drop.append(d)
        else:
            starts.append(0), limits.append(n), strides.append(1)
    if rev_dims:
        x = _sh.rev(x, dimensions=tuple(rev_dims))
    if tuple(starts) != (0,) * len(s) or tuple(limits) != s or \
            builtins.any(st != 1 for st in strides):
        x = _sh.slice(x, start=tuple(starts), limit=tuple(limits), strides=tuple(strides))
    if drop:
        x = reshape(x, tuple(n for d, n in enumerate(shape(x)) if d not in drop))
    return x


def _getitem(x, idx):
    """NumPy indexing: basic (slices incl. negative steps, integers, None,
    Ellipsis) and advanced (integer arrays, concrete boolean masks, and
    integers among them), with NumPy's rule for where the broadcast index
    dims go: in place of adjacent index arrays, else first."""
    x = asarray(x)
    idx = _expand_index(_index_tuple(idx), ndim(x))
    if builtins.any(i is None for i in idx):   # newaxis -> size-1 dims
        it = iter(shape(x))
        x = reshape(x, tuple(1 if i is None else next(it) for i in idx))
        idx = tuple(slice(None) if i is None else i for i in idx)
    x, idx = apply_traced_slices(x, idx)   # x[i * b:(i + 1) * b]: a dynamic_slice
    has_adv = builtins.any(_is_index_array(i) for i in idx)
    x = _basic_index(x, idx, has_adv)
    if not has_adv:
        return x
    # Advanced indices: one gather on the flattened indexed dims.
    s = shape(x)
    adv = [d for d, i in enumerate(idx) if not isinstance(i, slice)]
    n = [_size_of(x, d) for d in range(len(s))]
    arrays = [_array_index(idx[d], n[d], d) for d in adv]
    bshape = broadcast_shapes(*[shape(a) for a in arrays])
    linear = None
    for d, a in zip(adv, arrays):
        a = broadcast_to(a, bshape)
        linear = a if linear is None else add(multiply(linear, n[d]), a)
    rest = [d for d in range(len(s)) if d not in adv]
    flat = reshape(transpose(x, adv + rest),
                   (dims.product(s[d] for d in adv),) + tuple(s[d] for d in rest))
    out = _sh.gather(flat, linear, axis=0)
    if adv == list(range(adv[0], adv[-1] + 1)) and adv[0] > 0:
        nb, k = len(bshape), adv[0]
        out = transpose(out, list(range(nb, nb + k)) + list(range(nb))
                        + list(range(nb + k, ndim(out))))
    return out


def take(a, indices, axis=None, mode=None):
    """``mode`` None/'raise' checks concrete indices (traced ones are
    clamped), 'clip' clamps, 'wrap' wraps around."""
    x = asarray(a)
    if axis is None:
        x, axis = ravel(x), 0
    ax = _axes(x, axis)[0]
    n = _size_of(x, ax)
    idx = asarray(indices)
    if mode in (None, "raise"):
        idx = _array_index(idx, n, ax)
    elif mode == "clip":
        idx = clip(idx, 0, maximum(subtract(n, 1), 0) if isinstance(n, Tracer)
                   else builtins.max(n - 1, 0))
    elif mode == "wrap":
        idx = remainder(idx, maximum(n, 1)) if isinstance(n, Tracer) else \
            remainder(idx, n) if n else idx
    else:
        raise ValueError(f"take: mode must be 'raise', 'clip' or 'wrap', got {mode!r}")
    return _sh.gather(x, idx, axis=ax)


def take_along_axis(arr, indices, axis):
    x = asarray(arr)
    if axis is None:
        x, axis = ravel(x), 0
    ax = _axes(x, axis)[0]
    if ndim(indices) != ndim(x):
        raise ShapeError(f"take_along_axis: indices of shape {shape(indices)} must have "
                         f"as many dimensions as the array of shape {shape(x)}")
    s = shape(x)
    # the other dims' positions as iotas (tnp.arange), not NumPy constants:
    # the kernels then see a row index, which fuses as the advanced-index form does
    full_idx = tuple(indices if d == ax else
                     reshape(arange(s[d]), tuple(s[d] if k == d else 1 for k in range(len(s))))
                     for d in range(len(s)))
    return _getitem(x, full_idx)


class _IndexUpdateHelper:
    """``x.at[idx].set(v)`` / ``.add(v)`` / ``.multiply(v)`` / ``.get()``:
    functional indexed updates, as in JAX (``x`` itself is not changed)."""

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _IndexUpdate(self.x, idx)


class _IndexUpdate:
    def __init__(self, x, idx):
        self.x, self.idx = asarray(x), idx

    def _static(self):
        """Whether the index holds no traced value (slice bounds included)."""
        def traced(i):
            if isinstance(i, slice):
                return builtins.any(isinstance(b, Tracer) for b in (i.start, i.stop, i.step))
            return isinstance(i, Tracer)
        return not builtins.any(traced(i) for i in _index_tuple(self.idx))

    def _positions(self):
        """Flat positions of the indexed elements, shaped like ``x[idx]``;
        computed by NumPy itself when the index is concrete."""
        s = shape(self.x)
        n = int(np.prod(s, dtype=np.int64))
        if self._static():
            return np.arange(n, dtype=np.int64).reshape(s)[self.idx]
        return _getitem(reshape(_sh.iota(shape=(n,), dimension=0, dtype="int64"), s), self.idx)

    def _values(self, values, pos):
        return ravel(broadcast_to(_lift(values, _type(self.x).dtype), shape(pos)))

    def get(self):
        return _getitem(self.x, self.idx)

    def add(self, values):
        """Repeated indices accumulate (as ``np.add.at``)."""
        pos = self._positions()
        flat = _sh.scatter_add(ravel(self.x), ravel(pos), self._values(values, pos), axis=0)
        return reshape(flat, shape(self.x))

    def set(self, values):
        """``y = x.copy(); y[idx] = values``. With a concrete index this is
        a gather (the last of repeated indices wins, as in NumPy); with a
        traced one, a scatter (repeated indices must not occur)."""
        pos = self._positions()
        upd = self._values(values, pos)
        flat_x = ravel(self.x)
        if isinstance(pos, np.ndarray):
            size = shape(flat_x)[0]
            src = np.full(size, -1, np.int64)
            src[pos.ravel()] = np.arange(pos.size)
            hit = src >= 0
            if not hit.any():
                return self.x
            picked = _sh.gather(upd, np.where(hit, src, 0), axis=0)
            return reshape(where(hit, picked, flat_x), shape(self.x))
        lin = ravel(pos)
        hit = _sh.scatter_add(zeros(shape(flat_x), "int32"), lin, ones(shape(lin), "int32"), axis=0)
        placed = _sh.scatter_add(zeros(shape(flat_x), _type(self.x).dtype), lin, upd, axis=0)
        return reshape(where(greater(hit, 0), placed, flat_x), shape(self.x))

    def multiply(self, values):
        """Indices must be unique."""
        return self.set(multiply(self.get(), values))


def is_tracing() -> bool:
    return current_trace() is not None


# --- the Tracer's operators and array methods ---------------------------------------
# tracejit.core defines Tracer without them, so that tracing never imports this
# module; they are NumPy's functions, installed here.
_TRACER_METHODS = (
    "sum", "mean", "max", "min", "argmax", "argmin", "var", "std", "prod",
    "reshape", "transpose", "astype", "squeeze", "clip", "dot", "swapaxes",
    "ravel", "flatten", "any", "all", "cumsum", "round", "repeat", "take", "diagonal",
    "trace")


def _tracer_getattr(self, name):
    if name not in _TRACER_METHODS:
        raise AttributeError(f"traced array has no attribute {name!r}")
    fn = globals()[name]
    return lambda *a, **k: fn(self, *a, **k)


def _binop(fn, reflected=False):
    if reflected:
        return lambda self, other: fn(other, self)
    return lambda self, other: fn(self, other)


Tracer.__getattr__ = _tracer_getattr
Tracer.__getitem__ = _getitem
Tracer.T = property(transpose)
Tracer.at = property(_IndexUpdateHelper)
for _dunder, _fn in [("add", add), ("sub", subtract), ("mul", multiply),
                     ("truediv", true_divide), ("floordiv", floor_divide),
                     ("mod", remainder), ("pow", power), ("matmul", matmul),
                     ("and", bitwise_and), ("or", bitwise_or), ("xor", bitwise_xor)]:
    setattr(Tracer, f"__{_dunder}__", _binop(_fn))
    setattr(Tracer, f"__r{_dunder}__", _binop(_fn, reflected=True))
for _dunder, _fn in [("lt", less), ("le", less_equal), ("gt", greater),
                     ("ge", greater_equal), ("eq", equal), ("ne", not_equal)]:
    setattr(Tracer, f"__{_dunder}__", _binop(_fn))
Tracer.__neg__ = lambda self: negative(self)
Tracer.__pos__ = lambda self: self
Tracer.__abs__ = lambda self: abs(self)
Tracer.__invert__ = lambda self: invert(self)
del _dunder, _fn


#: What ``from tracejit.numpy import *`` brings in: NumPy's names and the
#: tracejit helpers above, not this module's own imports.
__all__ = sorted(
    name for name, value in globals().items()
    if not name.startswith("_") and not isinstance(value, types.ModuleType)
    and name not in {"annotations", "DTypeError", "ShapeError", "FLOATS", "TensorType",
                     "canonical_dtype", "Tracer", "current_trace", "promote_dtypes", "unary_op",
                     "float_operands"})

# ``name=`` on every function (tracejit.naming): ``tnp.dot(x, w, name="linear")``.
add_name_keyword(globals(), __all__)
