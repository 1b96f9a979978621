"""Functions of a float's representation: ``frexp`` and ``nextafter``.

Both are computed arithmetically (tracejit has no bit casts): the exponent
from ``log2`` with a correction of one either way (``log2`` is not exact
at powers of two), and the neighbour from the spacing of floats at ``x``.
float16 and bfloat16 are computed in float32 (exactly: their values and
neighbours are float32 values) with their own precision and range.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError
from ..ir import dtypes as _dt
from ..ir.types import FLOATS
from ..naming import add_name_keyword
from . import base as tnp


def _float(x):
    x = tnp.asarray(x)
    return x if x.dtype.name in FLOATS else tnp.astype(x, np.float64)


def _pow2(e, dtype):
    """2.0 ** e for integer-valued floats ``e`` (exact: two factors, so that
    neither overflows nor underflows where 2 ** e itself is a float)."""
    two = np.asarray(2.0, dtype)
    half = tnp.floor(e / np.asarray(2.0, dtype))
    return tnp.power(two, half), tnp.power(two, e - half)


def _frexp(x):
    """(mantissa, exponent as a float) of finite nonzero ``x``; anything at
    the other places."""
    dt = x.dtype
    ax = tnp.abs(x)
    safe = tnp.where((ax == 0) | ~tnp.isfinite(ax), np.asarray(1.0, dt), ax)
    e = tnp.floor(tnp.log2(safe)) + np.asarray(1.0, dt)
    for _ in range(2):   # log2 may be off by one at the edges: fix |m| into [0.5, 1)
        p, r = _pow2(e, dt)
        m = safe / p / r
        e = tnp.where(m >= 1, e + 1, tnp.where(m < 0.5, e - 1, e))
    p, r = _pow2(e, dt)
    return x / p / r, e


def frexp(x):
    """``(m, e)`` with ``x == m * 2**e``, ``0.5 <= |m| < 1`` (``m = x``, ``e = 0``
    for 0, inf and NaN), ``e`` int32, as NumPy."""
    x = _float(x)
    dt = x.dtype.name
    xc = tnp.astype(x, _dt.compute(dt))
    m, e = _frexp(xc)
    special = (xc == 0) | ~tnp.isfinite(xc)
    m = tnp.where(special, xc, m)
    e = tnp.where(special, np.asarray(0, np.int32), tnp.astype(e, np.int32))
    return tnp.astype(m, dt), e


def nextafter(x1, x2):
    """The next float after ``x1`` toward ``x2`` (``x2`` if they are equal,
    NaN if either is), as NumPy."""
    a, b = tnp.broadcast_arrays(*_promote_float(x1, x2))
    dt = a.dtype.name
    info = _dt.finfo(_dt.numpy_dtype(dt))
    ac, bc = tnp.astype(a, _dt.compute(dt)), tnp.astype(b, _dt.compute(dt))
    cd = ac.dtype
    up = bc > ac
    m, e = _frexp(ac)
    # the spacing at |x1| is 2**(e - precision); one half below a power of two
    # when moving toward zero; never below the smallest subnormal
    toward_zero = up == (ac < 0)
    e = e - np.asarray(info.nmant + 1, cd) - tnp.where(toward_zero & (tnp.abs(m) == 0.5),
                                                      np.asarray(1.0, cd), np.asarray(0.0, cd))
    p, r = _pow2(e, cd)
    step = tnp.maximum(p * r, np.asarray(float(info.smallest_subnormal), cd))
    out = tnp.where(up, ac + step, ac - step)
    out = tnp.where(out == 0, ac * np.asarray(0.0, cd), out)   # to zero: x1's sign, as NumPy
    tiny = np.asarray(float(info.smallest_subnormal), cd)
    out = tnp.where(ac == 0, tnp.where(up, tiny, -tiny), out)
    big = np.asarray(float(info.max), cd)
    out = tnp.where(tnp.isinf(ac), tnp.where(ac > 0, big, -big), out)
    # equal: x2 (C's nextafter); NumPy's float16 version gives x1 (+0.0 toward -0.0)
    out = tnp.where(ac == bc, ac if dt == "float16" else bc, out)
    out = tnp.where(tnp.isnan(ac) | tnp.isnan(bc), np.asarray(np.nan, cd), out)
    return tnp.astype(out, dt)


def _promote_float(x1, x2):
    a, b = tnp.asarray(x1), tnp.asarray(x2)
    dt = tnp.result_type(x1, x2)
    if dt.name not in FLOATS:
        if dt.kind == "b" or dt.kind in "iu":
            dt = np.dtype(np.float64)
        else:
            raise DTypeError(f"nextafter: unsupported dtype {dt}")
    return tnp.astype(a, dt), tnp.astype(b, dt)


__all__ = ["frexp", "nextafter"]
add_name_keyword(globals(), __all__)
