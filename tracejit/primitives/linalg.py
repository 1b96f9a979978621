"""dot_general: batched tensor contraction, as XLA's DotGeneral.

``dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))``.
The result's dims are the batch dims, then lhs's free dims, then rhs's.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, ShapeError
from ..ir.dtypes import compute
from ..ir.types import TensorType
from . import ad_util as ad
from . import batch_util as bu


def _free(ndim, *used):
    taken = set(d for u in used for d in u)
    return [d for d in range(ndim) if d not in taken]


def _dot_rule(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"dot_general: operand dtypes differ: {lhs}, {rhs}")
    if len(lc) != len(rc) or len(lb) != len(rb) or \
            len(set(lc) | set(lb)) != len(lc) + len(lb) or \
            len(set(rc) | set(rb)) != len(rc) + len(rb):
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
    acc = compute(lhs.dtype.name)   # float16/bfloat16 products accumulate in float32
    return [np.asarray(np.einsum(spec, lhs.astype(acc, copy=False), rhs.astype(acc, copy=False),
                                 optimize=True), dtype=lhs.dtype)]


dot_general = Primitive("dot_general", "linalg", _dot_rule, _dot_impl)


# --- differentiation rules ----------------------------------------------------
# The cotangent of one operand contracts the output cotangent with the other
# operand over the other's free dims (batch dims stay batch dims), then
# transposes the result into the operand's dim order.


def _dot_transpose(ct, other, this_ndim, this_dims, other_dims, ct_this_free, ct_other_free):
    """Cotangent of the operand ``this`` of a dot_general with ``other``.

    ``this_dims``/``other_dims`` are (contract, batch) of each operand;
    ``ct_this_free``/``ct_other_free`` are the dims of ``ct`` holding each
    operand's free dims."""
    (tc, tb), (oc, ob) = this_dims, other_dims
    other_free = _free(ad.aval(other).ndim, oc, ob)
    nb = len(tb)
    dn = ((tuple(ct_other_free), tuple(other_free)), (tuple(range(nb)), tuple(ob)))
    r = dot_general(ct, other, dimension_numbers=dn)
    # r: batch, this operand's free dims, then other's contracting dims sorted
    pos = {d: k for k, d in enumerate(tb)}
    pos.update({d: nb + k for k, d in enumerate(_free(this_ndim, tc, tb))})
    oc_sorted = sorted(oc)
    pos.update({d: nb + len(ct_this_free) + oc_sorted.index(o) for d, o in zip(tc, oc)})
    perm = tuple(pos[d] for d in range(this_ndim))
    if perm == tuple(range(this_ndim)):
        return r
    return ad.p("transpose", r, permutation=perm)


def _dot_vjp(cts, primals, outs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = primals
    ln, rn = ad.aval(lhs).ndim, ad.aval(rhs).ndim
    nb, nlf = len(lb), len(_free(ln, lc, lb))
    ct = cts[0]
    ct_lfree = range(nb, nb + nlf)
    ct_rfree = range(nb + nlf, ad.aval(ct).ndim)
    return [lambda: _dot_transpose(ct, rhs, ln, (lc, lb), (rc, rb), ct_lfree, ct_rfree),
            lambda: _dot_transpose(ct, lhs, rn, (rc, rb), (lc, lb), ct_rfree, ct_lfree)]


def _dot_jvp(primals, tangents, outs, *, dimension_numbers):
    (lhs, rhs), (tl, tr) = primals, tangents
    return [ad.add(None if tl is None else dot_general(tl, rhs, dimension_numbers=dimension_numbers),
                   None if tr is None else dot_general(lhs, tr, dimension_numbers=dimension_numbers))]


dot_general.def_vjp(_dot_vjp)
dot_general.def_jvp(_dot_jvp)


# --- batching rules (vmap) ------------------------------------------------------
# Both operands batched: the batch becomes one more batch dim of the
# contraction (the first, so it leads the result). One operand batched: its
# batch dim is a free dim, which lands after the result's batch dims (lhs)
# or after lhs's free dims (rhs), and is moved to the front.


def _dot_batch(vals, batched, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = vals
    sh = bu.shift
    if batched[0] and batched[1]:
        dn = ((sh(lc), sh(rc)), ((0,) + sh(lb), (0,) + sh(rb)))
        return [dot_general(lhs, rhs, dimension_numbers=dn)], [True]
    if batched[0]:
        dn = ((sh(lc), tuple(rc)), (sh(lb), tuple(rb)))
        pos = len(lb)
    else:
        dn = ((tuple(lc), sh(rc)), (tuple(lb), sh(rb)))
        pos = len(lb) + len(_free(ad.aval(lhs).ndim, lc, lb))
    out = dot_general(lhs, rhs, dimension_numbers=dn)
    return [bu.moveaxis(out, pos, 0)], [True]


dot_general.def_batch(_dot_batch)
