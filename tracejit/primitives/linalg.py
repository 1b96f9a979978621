"""dot_general: batched tensor contraction, as XLA's DotGeneral.

``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``.
The result's dims are the batch dims, then lhs's free dims, then rhs's.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.types import TensorType
from .core import Primitive


def _free(ndim, *used):
    taken = set(d for u in used for d in u)
    return [d for d in range(ndim) if d not in taken]


def _dot_rule(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"dot_general: operand dtypes differ: {lhs}, {rhs}")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise ShapeError(f"dot_general: bad dimension_numbers {dimension_numbers}")
    for a, b, what in [(lc, rc, "contracting"), (lb, rb, "batch")]:
        for i, j in zip(a, b):
            if not (0 <= i < lhs.ndim and 0 <= j < rhs.ndim) or lhs.shape[i] != rhs.shape[j]:
                raise ShapeError(f"dot_general: {what} dims do not match: {lhs} dim {i} "
                                 f"vs {rhs} dim {j}")
    shape = ([lhs.shape[d] for d in lb] + [lhs.shape[d] for d in _free(lhs.ndim, lc, lb)]
             + [rhs.shape[d] for d in _free(rhs.ndim, rc, rb)])
    return TensorType(shape, lhs.dtype, lhs.weak and rhs.weak)


def _dot_impl(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    ls = [None] * lhs.ndim
    rs = [None] * rhs.ndim
    for i, j in zip(list(lb) + list(lc), list(rb) + list(rc)):
        ls[i] = rs[j] = next(letters)
    for k in range(lhs.ndim):
        ls[k] = ls[k] or next(letters)
    for k in range(rhs.ndim):
        rs[k] = rs[k] or next(letters)
    out = ([ls[d] for d in lb] + [ls[d] for d in _free(lhs.ndim, lc, lb)]
           + [rs[d] for d in _free(rhs.ndim, rc, rb)])
    spec = f"{''.join(ls)},{''.join(rs)}->{''.join(out)}"
    return [np.asarray(np.einsum(spec, lhs, rhs, optimize=True), dtype=lhs.dtype)]


dot_general = Primitive("dot_general", "linalg", _dot_rule, _dot_impl)
