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


def nanquantile(a, q, axis=None, method="linear", keepdims=False):
    if method not in METHODS:
        raise ValueError(f"nanquantile: unsupported method {method!r} (one of {METHODS})")
    x = tnp.asarray(a)
    if x.dtype.name not in FLOATS:
        x = tnp.astype(x, np.float64)
    nd0, shape0 = x.ndim, x.shape
    rows, axes = _to_rows(x, axis)
    n = rows.shape[-1]
    qa = tnp.asarray(q)
    qf = tnp.reshape(tnp.astype(qa, x.dtype), (-1,))               # (m,)
    if n == 0:
        out = tnp.full(rows.shape[:-1] + qf.shape, np.nan, x.dtype)
    else:
        s = tnp.sort(rows, axis=-1)                                    # NaN last
        k = tnp.sum(~tnp.isnan(rows), axis=-1, keepdims=True)          # (..., 1)
        pos = qf * tnp.astype(k - 1, x.dtype)                          # (..., m)
        lo, hi = tnp.floor(pos), tnp.ceil(pos)

        def at(p):
            i = tnp.clip(tnp.astype(p, np.int64), 0, n - 1)
            return tnp.take_along_axis(s, i, axis=-1)
        v_lo, v_hi = at(lo), at(hi)
        frac = pos - lo
        if method == "linear":
            out = tnp.where(frac == 0, v_lo, v_lo + (v_hi - v_lo) * frac)
        elif method == "lower":
            out = v_lo
        elif method == "higher":
            out = v_hi
        elif method == "midpoint":
            out = (v_lo + v_hi) * np.asarray(0.5, x.dtype)
        else:
            out = at(tnp.rint(pos))                                    # half to even, as NumPy
        out = tnp.where(k == 0, np.asarray(np.nan, x.dtype), out)
    # (kept..., m) -> q's shape first, then the kept dims (as NumPy)
    kept = out.shape[:-1]
    out = tnp.reshape(out, kept + qa.shape)
    out = tnp.moveaxis(out, tuple(range(len(kept), len(kept) + qa.ndim)), tuple(range(qa.ndim)))
    if keepdims:
        dims = (1,) * nd0 if axis is None else \
            tuple(1 if d in axes else shape0[d] for d in range(nd0))
        out = tnp.reshape(out, qa.shape + dims)
    return out


def nanpercentile(a, q, axis=None, method="linear", keepdims=False):
    return nanquantile(a, tnp.asarray(q) / 100.0, axis=axis, method=method, keepdims=keepdims)


def nanmedian(a, axis=None, keepdims=False):
    return nanquantile(a, 0.5, axis=axis, keepdims=keepdims)


__all__ = ["nanmedian", "nanpercentile", "nanquantile"]
add_name_keyword(globals(), __all__)
