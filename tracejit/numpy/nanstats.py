"""NaN-ignoring quantiles: ``nanquantile``, ``nanpercentile``, ``nanmedian``.

The count of non-NaN values differs from slice to slice and is known only
at run time, so the shape cannot depend on it: each slice is sorted (NaN
last, as NumPy sorts), its count of non-NaN values ``k`` is computed, and
the quantile's position ``q * (k - 1)`` indexes the sorted slice
(``take_along_axis``, one position per slice). A slice with no non-NaN
value gives NaN (NumPy warns and gives NaN). Methods as ``quantile``:
'linear' (the default), 'lower', 'higher', 'midpoint', 'nearest'.
Differentiable in the data (through the sort and the interpolation).
"""
from __future__ import annotations

import numpy as np

from ..ir.types import FLOATS
from ..naming import add_name_keyword
from . import base as tnp

METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _to_rows(x, axis):
    """``x`` with the reduced axes moved last and merged: (kept..., n)."""
    if axis is None:
        return tnp.reshape(x, (-1,)), ()
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(d % x.ndim for d in axes)
    rest = [d for d in range(x.ndim) if d not in axes]
    x = tnp.transpose(x, rest + list(axes))
    return tnp.reshape(x, tuple(x.shape[:len(rest)]) + (-1,)), axes


def _float_rows(a, axis):
    """``a`` as a float array (float64 for other dtypes), and its rows and
    reduced axes (:func:`_to_rows`)."""
    x = tnp.asarray(a)
    if x.dtype.name not in FLOATS:
        x = tnp.astype(x, np.float64)
    rows, axes = _to_rows(x, axis)
    return x, rows, axes


def _kept_dims(shape, axis, axes):
    """The shape of a reduction of ``shape`` with ``keepdims=True``."""
    return (1,) * len(shape) if axis is None else \
        tuple(1 if d in axes else size for d, size in enumerate(shape))


def _at(s, i):
    """The values of each sorted row ``s`` (..., n) at float positions ``i`` (..., m)."""
    n = s.shape[-1]
    return tnp.take_along_axis(s, tnp.clip(tnp.astype(i, np.int64), 0, n - 1), axis=-1)


def _quantile_of_sorted(s, k, q, method):
    """Quantiles ``q`` (m,) of the first ``k`` (..., 1) values of each sorted
    row of ``s`` (..., n), by NumPy's own algorithm (numpy/lib/
    _function_base_impl.py: ``_quantile``, ``_get_indexes``, ``_lerp``), so
    that ties, infinities (``inf - inf`` in the interpolation is NaN there
    too) and the rounding of the position agree."""
    dt = s.dtype
    one, half, zero = (np.asarray(v, dt) for v in (1.0, 0.5, 0.0))
    last = k - one
    if method == "lower":
        return _at(s, tnp.floor(last * q))
    if method == "higher":
        return _at(s, tnp.ceil(last * q))
    if method == "nearest":
        return _at(s, tnp.rint(last * q))   # half to even
    if method == "linear":
        v = k * q + (one + q * -one) - one
    else:   # midpoint
        v = half * (tnp.floor(last * q) + tnp.ceil(last * q))
    prev = tnp.floor(v)
    above = v >= last
    gamma_prev = tnp.where(above, -one, prev)   # NumPy's index -1 (the last value)
    prev = tnp.where(above, last, prev)
    nxt = tnp.where(above, last, prev + one)
    if method == "linear":
        t = v - gamma_prev
    else:
        t = tnp.where(v % one == zero, zero, half)
    a, b = _at(s, prev), _at(s, nxt)
    diff = b - a
    return tnp.where(t >= half, b - diff * (one - t), a + diff * t)


def nanquantile(a, q, axis=None, method="linear", keepdims=False):
    if method not in METHODS:
        raise ValueError(f"nanquantile: unsupported method {method!r} (one of {METHODS})")
    x, rows, axes = _float_rows(a, axis)
    n = rows.shape[-1]
    qa = tnp.asarray(q)
    qf = tnp.reshape(tnp.astype(qa, x.dtype), (-1,))               # (m,)
    if n == 0:
        out = tnp.full(rows.shape[:-1] + qf.shape, np.nan, x.dtype)
    else:
        s = tnp.sort(rows, axis=-1)                                    # NaN last
        k = tnp.sum(~tnp.isnan(rows), axis=-1, keepdims=True)          # (..., 1)
        out = _quantile_of_sorted(s, tnp.astype(k, x.dtype), qf, method)
        out = tnp.where(k == 0, np.asarray(np.nan, x.dtype), out)
    # (kept..., m) -> q's shape first, then the kept dims (as NumPy)
    kept = out.shape[:-1]
    out = tnp.reshape(out, kept + qa.shape)
    out = tnp.moveaxis(out, tuple(range(len(kept), len(kept) + qa.ndim)), tuple(range(qa.ndim)))
    if keepdims:
        out = tnp.reshape(out, qa.shape + _kept_dims(x.shape, axis, axes))
    return out


def nanpercentile(a, q, axis=None, method="linear", keepdims=False):
    return nanquantile(a, tnp.asarray(q) / 100.0, axis=axis, method=method, keepdims=keepdims)


def nanmedian(a, axis=None, keepdims=False):
    """The middle value, or the mean of the two middle values (as NumPy's
    median: ``(a + b) / 2``, which is inf for 1 and inf where the
    interpolation of nanquantile gives NaN)."""
    x, rows, axes = _float_rows(a, axis)
    n = rows.shape[-1]
    if n == 0:
        out = tnp.full(rows.shape[:-1], np.nan, x.dtype)
    else:
        s = tnp.sort(rows, axis=-1)
        k = tnp.sum(~tnp.isnan(rows), axis=-1, keepdims=True)
        half = tnp.astype(k - 1, x.dtype) * np.asarray(0.5, x.dtype)
        out = (_at(s, tnp.floor(half)) + _at(s, tnp.ceil(half))) * np.asarray(0.5, x.dtype)
        out = tnp.where(k == 0, np.asarray(np.nan, x.dtype), out)[..., 0]
    if keepdims:
        out = tnp.reshape(out, _kept_dims(x.shape, axis, axes))
    return out


__all__ = ["nanmedian", "nanpercentile", "nanquantile"]
add_name_keyword(globals(), __all__)
