"""More of NumPy's real-valued API, built on tracejit/numpy/base.py:
inverse trigonometric and hyperbolic functions, NaN-aware reductions,
quantiles, statistics, polynomials, convolution, interpolation, index
tricks (r_, c_), rot90, gradient, and the array manipulation routines
base.py lacks. (To be filed into the package's section modules.)"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..errors import ConcretizationError, ShapeError
from ..ir.types import FLOATS
from ..naming import add_name_keyword
from ..primitives import elementwise as _ew
from . import base as tnp
from .linalg import lstsq

_LN2 = math.log(2.0)


def _float(x):
    x = tnp.asarray(x)
    return x if x.dtype.name in FLOATS else tnp.astype(x, np.float64)


def _floats(*xs):
    xs = [tnp.asarray(x) for x in xs]
    dt = tnp.result_type(*xs)
    if np.dtype(dt).name not in FLOATS:
        dt = np.float64
    return [tnp.astype(x, dt) if x.dtype != dt else x for x in xs]


def _broadcast(*xs):
    return tnp.broadcast_arrays(*xs)


def _c(x, v):
    """The Python constant ``v`` in ``x``'s dtype (no promotion)."""
    return np.asarray(v, tnp.asarray(x).dtype)


# --- trigonometric and hyperbolic functions -------------------------------------------
def arctan2(x1, x2):
    """The angle of the point (x2, x1): arctan(x1 / x2) in x2's quadrant."""
    y, x = _broadcast(*_floats(x1, x2))
    return _ew.atan2(y, x)


def arctan(x):
    x = _float(x)
    return _ew.atan2(x, tnp.ones_like(x))


def _one_minus_square_root(x):
    """sqrt(1 - x**2), computed as sqrt((1 - x)(1 + x)) for accuracy near +-1."""
    one = _c(x, 1)
    return tnp.sqrt((one - x) * (one + x))


def arcsin(x):
    x = _float(x)
    return _ew.atan2(x, _one_minus_square_root(x))


def arccos(x):
    x = _float(x)
    return _ew.atan2(_one_minus_square_root(x), x)


def _exp_half(a):
    """exp(a) / 2 without overflowing before the result does."""
    return tnp.exp(a - _c(a, _LN2))


def cosh(x):
    x = _float(x)
    a = tnp.abs(x)
    e = tnp.exp(tnp.minimum(a, _c(a, 20)))
    near = _c(a, 0.5) * (e + _c(a, 1) / e)
    return tnp.where(a > _c(a, 20), _exp_half(a), near)


_BIG = 1e8   # beyond it, x**2 + 1 == x**2 in float64: asinh(x) = log(2x)


def arcsinh(x):
    x = _float(x)
    a = tnp.abs(x)
    small = tnp.minimum(a, _c(a, _BIG))
    near = tnp.log1p(small + small * small / (_c(a, 1) + tnp.sqrt(_c(a, 1) + small * small)))
    far = tnp.log(tnp.maximum(a, _c(a, 1))) + _c(a, _LN2)
    return tnp.sign(x) * tnp.where(a > _c(a, _BIG), far, near)


def arccosh(x):
    x = _float(x)
    t = tnp.clip(x, _c(x, 1), _c(x, _BIG)) - _c(x, 1)
    near = tnp.log1p(t + tnp.sqrt(_c(x, 2) * t + t * t))
    far = tnp.log(tnp.maximum(x, _c(x, 1))) + _c(x, _LN2)
    r = tnp.where(x > _c(x, _BIG), far, near)
    return tnp.where(x < _c(x, 1), _c(x, np.nan), r)


def arctanh(x):
    x = _float(x)
    return _c(x, 0.5) * tnp.log1p(_c(x, 2) * x / (_c(x, 1) - x))


def hypot(x1, x2):
    """sqrt(x1**2 + x2**2) without overflow or underflow (scaled by the larger)."""
    a, b = _broadcast(*[tnp.abs(v) for v in _floats(x1, x2)])
    big, small = tnp.maximum(a, b), tnp.minimum(a, b)
    safe = tnp.where(big == _c(big, 0), _c(big, 1), big)
    r = big * tnp.sqrt(_c(big, 1) + tnp.square(small / safe))
    r = tnp.where(big == _c(big, 0), _c(big, 0), r)
    return tnp.where(tnp.isinf(a) | tnp.isinf(b), _c(big, np.inf), r)


def deg2rad(x):
    x = _float(x)
    return x * _c(x, math.pi / 180)


def rad2deg(x):
    x = _float(x)
    return x * _c(x, 180 / math.pi)


radians = deg2rad
degrees = rad2deg


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0: a Taylor polynomial near 0 keeps its
    derivatives (of any order) right there."""
    x = _float(x)
    px = x * _c(x, math.pi)
    small = tnp.abs(px) < _c(x, 1e-3)
    safe = tnp.where(small, _c(x, 1), px)
    p2 = px * px
    taylor = _c(x, 1) - p2 / _c(x, 6) + p2 * p2 / _c(x, 120)
    return tnp.where(small, taylor, tnp.sin(safe) / safe)


# --- exponents and logarithms --------------------------------------------------------------
def exp2(x):
    x = _float(x)
    return tnp.power(_c(x, 2), x)


def logaddexp2(x1, x2):
    """log2(2**x1 + 2**x2); at a tie both operands get half the derivative."""
    a, b = _floats(x1, x2)
    big = tnp.maximum(a, b) + tnp.log1p(exp2(-tnp.abs(a - b))) / _c(a, _LN2)
    return tnp.where(a == b, (a + b) * _c(a, 0.5) + _c(a, 1), big)


def cbrt(x):
    """The real cube root: |x|**(1/3) with the sign, refined by one Newton step."""
    x = _float(x)
    a = tnp.abs(x)
    y = tnp.power(a, _c(a, 1 / 3))
    safe = tnp.where(y == _c(y, 0), _c(y, 1), y)
    y = tnp.where((y == _c(y, 0)) | tnp.isinf(a), y, y - (y * y * y - a) / (_c(y, 3) * safe * safe))
    return tnp.sign(x) * y


def ldexp(x1, x2):
    x = _float(x1)
    return x * tnp.power(_c(x, 2), tnp.astype(x2, x.dtype))


# --- arithmetic ---------------------------------------------------------------------------------
def signbit(x):
    """True where the sign bit is set: negative numbers and -0.0."""
    x = tnp.asarray(x)
    if x.dtype.kind == "b" or x.dtype.kind == "u":
        return tnp.zeros(x.shape, bool)
    if x.dtype.kind == "i":
        return x < 0
    zero = _c(x, 0)
    return (x < zero) | ((x == zero) & (_c(x, 1) / tnp.where(x == zero, x, _c(x, 1)) < zero))


def copysign(x1, x2):
    a, b = _broadcast(*_floats(x1, x2))
    return tnp.where(signbit(b), -tnp.abs(a), tnp.abs(a))


def heaviside(x1, x2):
    a, b = _broadcast(*_floats(x1, x2))
    zero, one = _c(a, 0), _c(a, 1)
    return tnp.where(tnp.isnan(a), a, tnp.where(a < zero, zero, tnp.where(a > zero, one, b)))


def fmod(x1, x2):
    """The C remainder, with the sign of the dividend (NumPy's remainder
    follows the divisor): the remainder of the magnitudes, which is exact."""
    a, b = tnp.broadcast_arrays(*_promote(x1, x2))
    r = tnp.remainder(tnp.abs(a), tnp.abs(b))
    if a.dtype.name in FLOATS:
        return copysign(r, a)
    return tnp.where(a < _c(a, 0), -r, r)


def _promote(*xs):
    xs = [tnp.asarray(x) for x in xs]
    dt = tnp.result_type(*xs)
    return [tnp.astype(x, dt) if x.dtype != dt else x for x in xs]


def divmod(x1, x2):
    return tnp.floor_divide(x1, x2), tnp.remainder(x1, x2)


def modf(x):
    x = _float(x)
    whole = tnp.trunc(x)
    frac = tnp.where(tnp.isinf(x), copysign(_c(x, 0), x), x - whole)
    return frac, whole


def real(val):
    """The real part: the value itself (tracejit has no complex dtype)."""
    return tnp.asarray(val)


def imag(val):
    x = tnp.asarray(val)
    return tnp.zeros_like(x)


def conj(x):
    return tnp.asarray(x)


conjugate = conj


def iscomplexobj(x):
    return False


def isrealobj(x):
    return True


def iscomplex(x):
    return tnp.zeros(tnp.shape(x), bool)


def isreal(x):
    return tnp.ones(tnp.shape(x), bool)


def angle(z, deg=False):
    """The argument of a real number: 0 or pi (180 degrees) for negatives."""
    z = _float(z)
    a = tnp.where(signbit(z), _c(z, 180.0 if deg else math.pi), _c(z, 0))
    return tnp.where(tnp.isnan(z), z, a)


# --- sums, products, NaN-aware reductions ----------------------------------------------------------
def cumprod(a, axis=None, dtype=None):
    """Inclusive prefix products along ``axis`` (log-depth doubling: each
    step multiplies by the product ``2**k`` places back)."""
    x = tnp.asarray(a)
    if axis is None:
        x, axis = tnp.ravel(x), 0
    ax = axis % x.ndim if x.ndim else 0
    if dtype is not None:
        x = tnp.astype(x, dtype)
    elif x.dtype.kind in "bi" and x.dtype.itemsize < 8:
        x = tnp.astype(x, np.int64)
    n = x.shape[ax]
    shift = 1
    while shift < n:
        head = tnp.ones(x.shape[:ax] + (shift,) + x.shape[ax + 1:], x.dtype)
        lagged = tnp.concatenate([head, _slice(x, ax, 0, n - shift)], axis=ax)
        x = x * lagged
        shift *= 2
    return x


def _slice(x, ax, start, stop):
    idx = [slice(None)] * x.ndim
    idx[ax] = slice(start, stop)
    return x[tuple(idx)]


cumulative_prod = cumprod


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    r = tnp.cumsum(x, axis=axis if axis is not None else 0, dtype=dtype)
    if include_initial:
        ax = (axis if axis is not None else 0) % r.ndim
        zero = tnp.zeros(r.shape[:ax] + (1,) + r.shape[ax + 1:], r.dtype)
        r = tnp.concatenate([zero, r], axis=ax)
    return r


def _nan_to(a, value):
    x = tnp.asarray(a)
    if x.dtype.name not in FLOATS:
        return x
    return tnp.where(tnp.isnan(x), _c(x, value), x)


def nanprod(a, axis=None, dtype=None, keepdims=False):
    return tnp.prod(_nan_to(a, 1), axis=axis, dtype=dtype, keepdims=keepdims)


def nancumsum(a, axis=None, dtype=None):
    return tnp.cumsum(_nan_to(a, 0), axis=axis, dtype=dtype)


def nancumprod(a, axis=None, dtype=None):
    return cumprod(_nan_to(a, 1), axis=axis, dtype=dtype)


def _all_nan(x, axis, keepdims):
    return tnp.all(tnp.isnan(x), axis=axis, keepdims=keepdims)


def nanmax(a, axis=None, keepdims=False):
    """The max ignoring NaN; NaN where a slice is all NaN (NumPy warns there)."""
    x = tnp.asarray(a)
    if x.dtype.name not in FLOATS:
        return tnp.max(x, axis=axis, keepdims=keepdims)
    r = tnp.max(_nan_to(x, -np.inf), axis=axis, keepdims=keepdims)
    return tnp.where(_all_nan(x, axis, keepdims), _c(x, np.nan), r)


def nanmin(a, axis=None, keepdims=False):
    x = tnp.asarray(a)
    if x.dtype.name not in FLOATS:
        return tnp.min(x, axis=axis, keepdims=keepdims)
    r = tnp.min(_nan_to(x, np.inf), axis=axis, keepdims=keepdims)
    return tnp.where(_all_nan(x, axis, keepdims), _c(x, np.nan), r)


def nanargmax(a, axis=None, keepdims=False):
    x = tnp.asarray(a)
    return tnp.argmax(_nan_to(x, -np.inf), axis=axis, keepdims=keepdims)


def nanargmin(a, axis=None, keepdims=False):
    x = tnp.asarray(a)
    return tnp.argmin(_nan_to(x, np.inf), axis=axis, keepdims=keepdims)


def nanvar(a, axis=None, dtype=None, ddof=0, keepdims=False):
    x = _float(a)
    ok = ~tnp.isnan(x)
    n = tnp.sum(ok, axis=axis, keepdims=True)
    mean = tnp.sum(tnp.where(ok, x, _c(x, 0)), axis=axis, keepdims=True) / n
    d = tnp.where(ok, x - mean, _c(x, 0))
    r = tnp.sum(d * d, axis=axis, keepdims=True) / (n - ddof)
    if not keepdims:
        r = tnp.squeeze(r, axis=axis) if axis is not None else tnp.reshape(r, ())
    return tnp.astype(r, dtype) if dtype is not None else r


def nanstd(a, axis=None, dtype=None, ddof=0, keepdims=False):
    return tnp.sqrt(nanvar(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def ptp(a, axis=None, keepdims=False):
    return tnp.max(a, axis=axis, keepdims=keepdims) - tnp.min(a, axis=axis, keepdims=keepdims)


def quantile(a, q, axis=None, method="linear", keepdims=False):
    """NumPy's quantiles with ``method`` 'linear' (the default), 'lower',
    'higher', 'nearest' or 'midpoint'; ``q`` may be traced."""
    x = _float(a)
    axis_was_none, nd0 = axis is None, x.ndim
    if axis is None:
        x, axis = tnp.ravel(x), 0
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(d % x.ndim for d in axes)
    rest = [d for d in range(x.ndim) if d not in axes]
    x = tnp.transpose(x, rest + list(axes))
    x = tnp.reshape(x, x.shape[:len(rest)] + (-1,))
    n = x.shape[-1]
    s = tnp.sort(x, axis=-1)
    qa = tnp.asarray(q)
    qf = tnp.astype(qa, x.dtype) if qa.dtype.name not in FLOATS else tnp.astype(qa, x.dtype)
    pos = qf * _c(qf, n - 1)
    lo = tnp.floor(pos)
    hi = tnp.ceil(pos)
    lo_i = tnp.astype(tnp.clip(lo, 0, n - 1), np.int64)
    hi_i = tnp.astype(tnp.clip(hi, 0, n - 1), np.int64)
    flat_lo, flat_hi = tnp.ravel(lo_i), tnp.ravel(hi_i)
    v_lo = tnp.take(s, flat_lo, axis=-1)
    v_hi = tnp.take(s, flat_hi, axis=-1)
    frac = tnp.ravel(pos - lo)
    if method == "linear":
        r = v_lo + (v_hi - v_lo) * frac
        r = tnp.where(frac == _c(frac, 0), v_lo, r)
    elif method == "lower":
        r = v_lo
    elif method == "higher":
        r = v_hi
    elif method == "midpoint":
        r = (v_lo + v_hi) * _c(v_lo, 0.5)
    elif method == "nearest":
        near = tnp.astype(tnp.ravel(tnp.rint(pos)), np.int64)
        r = tnp.take(s, tnp.clip(near, 0, n - 1), axis=-1)
    else:
        raise ValueError(f"quantile: unsupported method {method!r}")
    r = tnp.moveaxis(tnp.reshape(r, r.shape[:-1] + qa.shape), tuple(range(len(rest), len(rest) + qa.ndim)),
                     tuple(range(qa.ndim)))
    if keepdims:
        kept = (1,) * nd0 if axis_was_none else \
            tuple(1 if d in axes else tnp.shape(a)[d] for d in range(nd0))
        r = tnp.reshape(r, qa.shape + kept)
    return r


def percentile(a, q, axis=None, method="linear", keepdims=False):
    return quantile(a, tnp.asarray(q) / 100.0, axis=axis, method=method, keepdims=keepdims)


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None):
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov: fweights/aweights are not supported")
    x = tnp.atleast_2d(_float(m))
    if not rowvar and x.shape[0] != 1:
        x = x.T
    if y is not None:
        yy = tnp.atleast_2d(_float(y))
        if not rowvar and yy.shape[0] != 1:
            yy = yy.T
        x = tnp.concatenate([x, yy], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    n = x.shape[1]
    xc = x - tnp.mean(x, axis=1, keepdims=True)
    c = tnp.matmul(xc, xc.T) / (n - ddof)
    return tnp.squeeze(c) if c.shape == (1, 1) else c


def corrcoef(x, y=None, rowvar=True):
    c = cov(x, y, rowvar)
    if c.ndim == 0:
        return c / c
    d = tnp.sqrt(tnp.diagonal(c))
    c = c / d[:, None] / d[None, :]
    return tnp.clip(c, -1, 1)


def trapezoid(y, x=None, dx=1.0, axis=-1):
    y = _float(y)
    ax = axis % y.ndim
    n = y.shape[ax]
    left, right = _slice(y, ax, 0, n - 1), _slice(y, ax, 1, n)
    if x is None:
        d = dx
    else:
        x = _float(x)
        d = tnp.diff(x, axis=-1 if x.ndim == 1 else ax)
        if x.ndim == 1:
            shape = [1] * y.ndim
            shape[ax] = n - 1
            d = tnp.reshape(d, shape)
    return tnp.sum((left + right) * d, axis=ax) * 0.5


# --- polynomials, signal processing, interpolation ------------------------------------------------
def polyval(p, x):
    p = tnp.asarray(p)
    x = tnp.asarray(x)
    r = tnp.zeros_like(x * p[0]) if p.shape[0] else tnp.zeros_like(tnp.asarray(x, np.float64))
    for k in range(p.shape[0]):
        r = r * x + p[k]
    return r


def vander(x, N=None, increasing=False):
    x = tnp.asarray(x)
    n = x.shape[0] if N is None else int(N)
    powers = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
    if n == 0:
        return tnp.zeros((x.shape[0], 0), x.dtype)
    cols = [tnp.ones_like(x) if k == 0 else tnp.power(x, k) if (x.dtype.name in FLOATS) else
            _int_power(x, k) for k in powers]
    return tnp.stack(cols, axis=1)


def _int_power(x, k):
    r = tnp.ones_like(x)
    for _ in range(int(k)):
        r = r * x
    return r


def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    if full or w is not None or cov:
        raise NotImplementedError("polyfit: full=, w= and cov= are not supported")
    a = vander(_float(x), int(deg) + 1)
    return lstsq(a, _float(y), rcond=rcond)[0]


def polyder(p, m=1):
    p = tnp.asarray(p)
    for _ in range(int(m)):
        n = p.shape[0] - 1
        if n <= 0:
            return tnp.zeros((1,), p.dtype)
        p = p[:-1] * np.arange(n, 0, -1).astype(p.dtype if p.dtype.name in FLOATS else np.int64)
    return p


def polyint(p, m=1, k=None):
    p = _float(p)
    for _ in range(int(m)):
        n = p.shape[0]
        tail = tnp.zeros((1,), p.dtype) if k is None else tnp.reshape(tnp.asarray(k, p.dtype), (1,))
        p = tnp.concatenate([p / np.arange(n, 0, -1).astype(p.dtype), tail])
    return p


def convolve(a, v, mode="full"):
    """1-D discrete linear convolution, as a (Toeplitz) gather and a product."""
    a, v = _promote(a, v)
    if a.ndim != 1 or v.ndim != 1:
        raise ShapeError(f"convolve: a and v must be 1-D, got shapes {a.shape} and {v.shape}")
    if a.shape[0] == 0 or v.shape[0] == 0:
        raise ValueError("convolve: a and v cannot be empty")
    if v.shape[0] > a.shape[0]:
        a, v = v, a
    n, m = a.shape[0], v.shape[0]
    full_len = n + m - 1
    idx = np.arange(full_len)[:, None] - np.arange(m)[None, :]
    valid = (idx >= 0) & (idx < n)
    gathered = tnp.where(valid, tnp.take(a, np.clip(idx, 0, n - 1)), _c(a, 0))
    full = tnp.sum(gathered * v[None, :], axis=1) if a.dtype.kind != "b" else \
        tnp.any(gathered & v[None, :], axis=1)
    if mode == "full":
        return full
    if mode == "same":
        start = (m - 1) // 2
        return full[start:start + n]
    if mode == "valid":
        return full[m - 1:n]
    raise ValueError(f"convolve: mode must be 'full', 'same' or 'valid', got {mode!r}")


def correlate(a, v, mode="valid"):
    """c[k] = sum_n a[n + k] v[n]: a convolution with ``v`` reversed."""
    a, v = _promote(a, v)
    return convolve(a, tnp.flip(v), mode)


def searchsorted(a, v, side="left", sorter=None):
    """Insertion points of ``v`` in the sorted 1-D ``a`` (by counting, O(len(a)) per value)."""
    a = tnp.asarray(a)
    if sorter is not None:
        a = tnp.take(a, sorter)
    v = tnp.asarray(v)
    a2, v2 = _promote(a, v)
    if side == "left":
        below = a2 < v2[..., None]
    elif side == "right":
        below = a2 <= v2[..., None]
    else:
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    return tnp.astype(tnp.sum(below, axis=-1), np.int64)


def digitize(x, bins, right=False):
    bins = tnp.asarray(bins)
    if isinstance(bins, np.ndarray) and bins.size > 1 and bins[0] > bins[-1]:
        n = bins.shape[0]
        return n - searchsorted(tnp.flip(bins), x, side="left" if right else "right")
    return searchsorted(bins, x, side="left" if right else "right")


def interp(x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise NotImplementedError("interp: period= is not supported")
    x, xp, fp = _floats(x, xp, fp)
    n = xp.shape[0]
    i = tnp.clip(searchsorted(xp, x, side="right"), 1, n - 1)
    x0, x1 = tnp.take(xp, i - 1), tnp.take(xp, i)
    y0, y1 = tnp.take(fp, i - 1), tnp.take(fp, i)
    dx = x1 - x0
    t = (x - x0) / tnp.where(dx == _c(dx, 0), _c(dx, 1), dx)
    r = tnp.where(dx == _c(dx, 0), y0, y0 + t * (y1 - y0))
    r = tnp.where(x == xp[-1], fp[-1], r)
    r = tnp.where(x < xp[0], fp[0] if left is None else _c(fp, left), r)
    return tnp.where(x > xp[-1], fp[-1] if right is None else _c(fp, right), r)


def bincount(x, weights=None, minlength=0, length=None):
    """Counts of each value of the non-negative integer array ``x``. The
    result's length is data-dependent: traced, give ``length=`` (as JAX)."""
    x = tnp.asarray(x)
    if length is None:
        if not isinstance(x, np.ndarray):
            raise ConcretizationError("bincount of a traced array needs length= (its result's "
                                      "size depends on the values)")
        length = builtins.max(int(x.max()) + 1 if x.size else 0, int(minlength))
    one_hot = tnp.asarray(x)[:, None] == tnp.arange(length)[None, :]
    if weights is None:
        return tnp.astype(tnp.sum(one_hot, axis=0), np.int64)
    w = tnp.asarray(weights)
    w = tnp.astype(w, np.float64) if w.dtype.name not in FLOATS else w
    return tnp.sum(tnp.where(one_hot, w[:, None], _c(w, 0)), axis=0)


def isin(element, test_elements, invert=False):
    e = tnp.asarray(element)
    t = tnp.ravel(tnp.asarray(test_elements))
    r = tnp.any(e[..., None] == t, axis=-1)
    return ~r if invert else r


def ediff1d(ary, to_end=None, to_begin=None):
    d = tnp.diff(tnp.ravel(ary))
    parts = ([tnp.ravel(tnp.asarray(to_begin, d.dtype))] if to_begin is not None else []) + [d] + \
        ([tnp.ravel(tnp.asarray(to_end, d.dtype))] if to_end is not None else [])
    return tnp.concatenate(parts) if len(parts) > 1 else d


# --- array manipulation ---------------------------------------------------------------------------
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross products of 3-vectors (and 2-vectors: the z component) along the axes."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _promote(a, b)
    a = tnp.moveaxis(a, axisa, -1)
    b = tnp.moveaxis(b, axisb, -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError("cross: incompatible dimensions for cross product "
                         "(dimension must be 2 or 3)")
    if a.shape[-1] == 2 and b.shape[-1] == 2:
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    zero_a = tnp.zeros_like(a[..., :1])
    zero_b = tnp.zeros_like(b[..., :1])
    if a.shape[-1] == 2:
        a = tnp.concatenate([a, zero_a], axis=-1)
    if b.shape[-1] == 2:
        b = tnp.concatenate([b, zero_b], axis=-1)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    c = tnp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return tnp.moveaxis(c, -1, axisc)


def kron(a, b):
    a, b = _promote(a, b)
    nd = builtins.max(a.ndim, b.ndim)
    a = tnp.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = tnp.reshape(b, (1,) * (nd - b.ndim) + b.shape)
    ea = tnp.reshape(a, tuple(s for d in a.shape for s in (d, 1)))
    eb = tnp.reshape(b, tuple(s for d in b.shape for s in (1, d)))
    return tnp.reshape(ea * eb, tuple(x * y for x, y in zip(a.shape, b.shape)))


def hsplit(ary, indices_or_sections):
    ary = tnp.asarray(ary)
    if ary.ndim == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return tnp.split(ary, indices_or_sections, axis=1 if ary.ndim > 1 else 0)


def vsplit(ary, indices_or_sections):
    ary = tnp.asarray(ary)
    if ary.ndim < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return tnp.split(ary, indices_or_sections, axis=0)


def dsplit(ary, indices_or_sections):
    ary = tnp.asarray(ary)
    if ary.ndim < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return tnp.split(ary, indices_or_sections, axis=2)


def row_stack(tup):
    return tnp.vstack(tup)


def select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    result = tnp.asarray(default)
    for c, v in zip(reversed(condlist), reversed(choicelist)):
        c = tnp.asarray(c)
        if c.dtype != np.bool_:
            raise TypeError(f"invalid entry in condlist: should be boolean ndarray, got {c.dtype}")
        result = tnp.where(c, v, result)
    return result


def piecewise(x, condlist, funclist, *args, **kw):
    x = tnp.asarray(x)
    if not isinstance(condlist, (list, tuple)) or \
            (x.ndim > 0 and builtins.all(isinstance(c, (bool, np.bool_)) for c in condlist)):
        condlist = [condlist]
    condlist = [tnp.asarray(c) for c in condlist]
    if len(funclist) == len(condlist) + 1:
        otherwise = ~tnp.any(tnp.stack(condlist), axis=0) if condlist else tnp.ones(x.shape, bool)
        condlist = condlist + [otherwise]
    out = tnp.zeros_like(x)
    for c, f in zip(condlist, funclist):
        v = f(x, *args, **kw) if callable(f) else tnp.asarray(f)
        out = tnp.where(c, tnp.astype(tnp.asarray(v), x.dtype), out)
    return out


def rot90(m, k=1, axes=(0, 1)):
    m = tnp.asarray(m)
    if len(axes) != 2 or axes[0] % m.ndim == axes[1] % m.ndim:
        raise ValueError("rot90: axes must be two different axes")
    k %= 4
    a0, a1 = axes
    if k == 0:
        return m
    if k == 2:
        return tnp.flip(tnp.flip(m, a0), a1)
    if k == 1:
        return tnp.swapaxes(tnp.flip(m, a1), a0, a1)
    return tnp.flip(tnp.swapaxes(m, a0, a1), a1)


def block(arrays):
    def depth(x):
        return 1 + depth(x[0]) if isinstance(x, list) and x else (1 if isinstance(x, list) else 0)
    d = depth(arrays)

    def rec(x, level):
        if not isinstance(x, list):
            return tnp.asarray(x)
        parts = [rec(e, level + 1) for e in x]
        nd = builtins.max([d] + [tnp.ndim(p) for p in parts])
        parts = [tnp.reshape(p, (1,) * (nd - tnp.ndim(p)) + tnp.shape(p)) for p in parts]
        return tnp.concatenate(parts, axis=-(d - level))
    return rec(arrays, 0)


def diagflat(v, k=0):
    return tnp.diag(tnp.ravel(v), k)


def resize(a, new_shape):
    a = tnp.asarray(a)
    shape = (new_shape,) if isinstance(new_shape, int) else tuple(new_shape)
    idx = np.resize(np.arange(a.size), shape) if a.size else None
    if idx is None:
        return tnp.zeros(shape, a.dtype)
    return tnp.take(tnp.ravel(a), idx)


def delete(arr, obj, axis=None):
    """Entries at the (concrete) positions ``obj`` removed."""
    arr = tnp.asarray(arr)
    if axis is None:
        arr, axis = tnp.ravel(arr), 0
    n = arr.shape[axis]
    keep = np.delete(np.arange(n), obj)
    return tnp.take(arr, keep, axis=axis)


def insert(arr, obj, values, axis=None):
    """``values`` inserted before the (concrete) positions ``obj``."""
    arr = tnp.asarray(arr)
    if axis is None:
        arr, axis = tnp.ravel(arr), 0
    axis %= arr.ndim
    n = arr.shape[axis]
    positions = np.atleast_1d(np.asarray(obj))
    if positions.ndim != 1:
        raise ValueError("insert: obj must be an int or a 1-D sequence of ints")
    positions = np.where(positions < 0, positions + n, positions)
    values = tnp.asarray(values)
    if np.ndim(obj) == 0:
        vshape = arr.shape[:axis] + arr.shape[axis + 1:]
        values = tnp.broadcast_to(tnp.astype(values, arr.dtype), vshape)
        values = tnp.expand_dims(values, axis)
    else:
        vshape = arr.shape[:axis] + (len(positions),) + arr.shape[axis + 1:]
        values = tnp.broadcast_to(tnp.astype(values, arr.dtype), vshape)
    # the combined array, then a gather that puts each inserted value in place:
    # before original entry i go the values whose position is i, in their order
    combined = tnp.concatenate([arr, values], axis=axis)
    order = []
    for i in range(n + 1):
        order.extend(n + j for j in np.flatnonzero(positions == i))
        if i < n:
            order.append(i)
    return tnp.take(combined, np.asarray(order, np.int64), axis=axis)


def tril_indices(n, k=0, m=None):
    return np.tril_indices(n, k, m)


def triu_indices(n, k=0, m=None):
    return np.triu_indices(n, k, m)


def tril_indices_from(arr, k=0):
    return np.tril_indices(tnp.shape(arr)[-2], k, tnp.shape(arr)[-1])


def triu_indices_from(arr, k=0):
    return np.triu_indices(tnp.shape(arr)[-2], k, tnp.shape(arr)[-1])


def diag_indices(n, ndim=2):
    return np.diag_indices(n, ndim)


def diag_indices_from(arr):
    return np.diag_indices(tnp.shape(arr)[0], tnp.ndim(arr))


def indices(dimensions, dtype=int, sparse=False):
    return np.indices(dimensions, dtype=dtype, sparse=sparse)


def unravel_index(indices, shape, order="C"):
    if order != "C":
        raise NotImplementedError("unravel_index: only order='C'")
    i = tnp.asarray(indices)
    out = []
    for d in reversed(shape):
        out.append(tnp.remainder(i, d))
        i = tnp.floor_divide(i, d)
    return tuple(reversed(out))


def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    if order != "C":
        raise NotImplementedError("ravel_multi_index: only order='C'")
    r = 0
    for i, d in zip(multi_index, dims):
        r = r * d + tnp.asarray(i)
    return r


def gradient(f, *varargs, axis=None, edge_order=1):
    """NumPy's gradient: second-order central differences inside, one-sided
    differences of ``edge_order`` at the ends; spacings are scalars or
    coordinate arrays (one per axis)."""
    f = _float(f)
    axes = list(range(f.ndim)) if axis is None else \
        [a % f.ndim for a in ((axis,) if isinstance(axis, int) else axis)]
    if not varargs:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError("gradient: invalid number of arguments")
    out = []
    for ax, h in zip(axes, spacing):
        n = f.shape[ax]
        if n < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        out.append(_gradient_axis(f, ax, h, edge_order))
    return out[0] if len(out) == 1 else out


def _gradient_axis(f, ax, h, edge_order):
    n = f.shape[ax]

    def s(a, b):
        return _slice(f, ax, a, b)

    def shaped(v):
        shape = [1] * f.ndim
        shape[ax] = -1
        return tnp.reshape(v, shape)
    if np.ndim(h) == 0:
        h = float(h)
        interior = (s(2, n) - s(0, n - 2)) / (2.0 * h)
        if edge_order == 1:
            first = (s(1, 2) - s(0, 1)) / h
            last = (s(n - 1, n) - s(n - 2, n - 1)) / h
        else:
            first = (-1.5 * s(0, 1) + 2.0 * s(1, 2) - 0.5 * s(2, 3)) / h
            last = (0.5 * s(n - 3, n - 2) - 2.0 * s(n - 2, n - 1) + 1.5 * s(n - 1, n)) / h
        return tnp.concatenate([first, interior, last], axis=ax)
    x = _float(h)
    dx = tnp.diff(x)
    dx1, dx2 = dx[:-1], dx[1:]
    a = -dx2 / (dx1 * (dx1 + dx2))
    b = (dx2 - dx1) / (dx1 * dx2)
    c = dx1 / (dx2 * (dx1 + dx2))
    interior = shaped(a) * s(0, n - 2) + shaped(b) * s(1, n - 1) + shaped(c) * s(2, n)
    if edge_order == 1:
        first = (s(1, 2) - s(0, 1)) / dx[0]
        last = (s(n - 1, n) - s(n - 2, n - 1)) / dx[-1]
    else:
        d1, d2 = dx[0], dx[1]
        first = (-(2.0 * d1 + d2) / (d1 * (d1 + d2)) * s(0, 1) + (d1 + d2) / (d1 * d2) * s(1, 2)
                 - d1 / (d2 * (d1 + d2)) * s(2, 3))
        d1, d2 = dx[-2], dx[-1]
        last = (d2 / (d1 * (d1 + d2)) * s(n - 3, n - 2) - (d2 + d1) / (d1 * d2) * s(n - 2, n - 1)
                + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * s(n - 1, n))
    return tnp.concatenate([first, interior, last], axis=ax)


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """A full sort, which is one valid partition: the ``kth`` entries are in
    their sorted places, smaller ones before, larger ones after."""
    if axis is None:
        return tnp.sort(tnp.ravel(a))
    return tnp.sort(a, axis=axis)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    if axis is None:
        return tnp.argsort(tnp.ravel(a))
    return tnp.argsort(a, axis=axis)


class _AxisConcatenator:
    """``r_`` and ``c_``: slices become ranges (a complex step ``Nj`` a
    linspace of N points), scalars 1-D arrays, then one concatenate. A
    leading string 'axis' or 'axis,ndmin' (or 'r'/'c') sets the axis."""

    def __init__(self, axis, ndmin, trans1d):
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        items = list(key)
        matrix = None
        if items and isinstance(items[0], str):
            spec = items.pop(0)
            if spec in ("r", "c"):
                matrix = spec
                ndmin = 2
            else:
                parts = [int(p) for p in spec.split(",")]
                axis = parts[0]
                if len(parts) > 1:
                    ndmin = parts[1]
                if len(parts) > 2:
                    trans1d = parts[2]
        arrays = []
        for item in items:
            if isinstance(item, slice):
                start = 0 if item.start is None else item.start
                step = 1 if item.step is None else item.step
                if isinstance(step, complex):
                    arr = tnp.linspace(start, item.stop, int(abs(step)))
                else:
                    arr = tnp.arange(start, item.stop, step)
            else:
                arr = tnp.asarray(item)
            if tnp.ndim(arr) < ndmin:
                k = ndmin - tnp.ndim(arr)
                shape = tnp.shape(arr)
                if trans1d == -1 or tnp.ndim(arr) == 0:
                    arr = tnp.reshape(arr, (1,) * k + shape)
                else:
                    new = [1] * ndmin
                    t = trans1d % ndmin
                    pos = list(range(ndmin))
                    for d, sz in zip(pos[t:t + len(shape)] if t + len(shape) <= ndmin
                                     else pos[:len(shape)], shape):
                        new[d] = sz
                    arr = tnp.reshape(arr, tuple(new))
            elif tnp.ndim(arr) == 0:
                arr = tnp.reshape(arr, (1,))
            arrays.append(arr)
        if not arrays:
            return tnp.zeros((0,))
        out = tnp.concatenate(arrays, axis=axis)
        if matrix == "c":
            out = tnp.transpose(out)
        return out

    def __len__(self):
        return 0


r_ = _AxisConcatenator(0, 1, -1)
c_ = _AxisConcatenator(-1, 2, 0)


__all__ = sorted(n for n, v in globals().items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == __name__
                 and callable(v)) + ["r_", "c_"]
add_name_keyword(globals(), __all__)
