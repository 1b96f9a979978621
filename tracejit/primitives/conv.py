"""Convolution and windowed reductions, channels-last.

conv_general: lhs ``[N, *spatial, C]``, rhs ``[*window, C // groups, O]``,
out ``[N, *out_spatial, O]`` (TensorFlow's NHWC/HWIO for 2-D). ``padding``
is ((low, high), ...) per spatial dim; ``lhs_dilation`` is the transposed
convolution's stride, ``rhs_dilation`` the atrous rate; channels are split
into ``feature_group_count`` groups (depthwise convolution uses C groups).

reduce_window: max or sum over windows spanning every dim of the operand
(pooling uses windows of 1 over batch and channels). select_and_scatter_add
is max pooling's gradient: each window's cotangent goes to the position of
that window's (first) maximum.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, ShapeError
from ..ir.dims import Dim
from ..ir.dtypes import compute
from ..ir.types import FLOATS, TensorType
from .shape import pad_impl
from . import ad_util as ad
from . import batch_util as bu


def _window_out(n, k, stride, lo, hi, lhs_dil=1, rhs_dil=1):
    if isinstance(n, Dim) and k == 1 and stride == 1 and lo == hi == 0 and lhs_dil == 1:
        return n   # a symbolic (batch) dimension the window does not slide over
    n_eff = (n - 1) * lhs_dil + 1 + lo + hi if n > 0 else lo + hi
    k_eff = (k - 1) * rhs_dil + 1
    return 0 if n_eff < k_eff else (n_eff - k_eff) // stride + 1


def _conv_rule(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               feature_group_count):
    nd = lhs.ndim - 2
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"conv: input {lhs} and filter {rhs} dtypes differ")
    if rhs.ndim != nd + 2 or not (len(window_strides) == len(padding) == len(lhs_dilation)
                                  == len(rhs_dilation) == nd):
        raise ShapeError(f"conv: input {lhs} and filter {rhs} do not have matching ranks "
                         f"(input [N, *spatial, C], filter [*window, C/groups, O])")
    g = feature_group_count
    c, o = lhs.shape[-1], rhs.shape[-1]
    if c % g or o % g or rhs.shape[-2] * g != c:
        raise ShapeError(f"conv: input {lhs} has {c} channels but filter {rhs} expects "
                         f"{rhs.shape[-2]} per group with {g} group(s)")
    spatial = [_window_out(n, k, s, lo, hi, ld, rd) for n, k, s, (lo, hi), ld, rd in zip(
        lhs.shape[1:-1], rhs.shape[:-2], window_strides, padding, lhs_dilation, rhs_dilation)]
    return TensorType([lhs.shape[0], *spatial, o], lhs.dtype, lhs.weak and rhs.weak)


def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               feature_group_count):
    out_t = _conv_rule(TensorType.of(lhs), TensorType.of(rhs), window_strides=window_strides,
                       padding=padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                       feature_group_count=feature_group_count)
    config = [(0, 0, 0)] + [(lo, hi, ld - 1) for (lo, hi), ld in zip(padding, lhs_dilation)] + [(0, 0, 0)]
    x = pad_impl(lhs, np.zeros((), lhs.dtype), config=config)[0]
    x, rhs = x.astype(compute(x.dtype.name), copy=False), rhs.astype(compute(rhs.dtype.name), copy=False)
    g = feature_group_count
    n, c, o = lhs.shape[0], lhs.shape[-1], rhs.shape[-1]
    out_sp = out_t.shape[1:-1]
    out = np.zeros((n, *out_sp, g, o // g), dtype=np.float64 if lhs.dtype == np.float64 else np.float32)
    w = rhs.reshape(*rhs.shape[:-2], c // g, g, o // g)
    for offs in itertools.product(*[range(k) for k in rhs.shape[:-2]]):
        sl = tuple(np.s_[off * rd: off * rd + (m - 1) * s + 1: s] if m > 0 else np.s_[0:0]
                   for off, rd, s, m in zip(offs, rhs_dilation, window_strides, out_sp))
        patch = x[(np.s_[:],) + sl].reshape(n, *out_sp, g, c // g)
        out += np.einsum("...gc,cgo->...go", patch, w[offs])
    return [out.reshape(n, *out_sp, o).astype(lhs.dtype)]


conv_general = Primitive("conv_general", "conv", _conv_rule, _conv_impl)


def _window_rule(name):
    def rule(x, *, computation="max", window_dimensions, window_strides, padding):
        if not (len(window_dimensions) == len(window_strides) == len(padding) == x.ndim):
            raise ShapeError(f"{name}: window spec must have {x.ndim} entries for {x}")
        if computation not in ("max", "sum"):
            raise ShapeError(f"{name}: computation must be 'max' or 'sum'")
        shape = [_window_out(n, k, s, lo, hi) for n, k, s, (lo, hi) in
                 zip(x.shape, window_dimensions, window_strides, padding)]
        return TensorType(shape, x.dtype, x.weak)
    return rule


def _windows(x, window_dimensions, window_strides, padding, fill):
    """Yield (offset, strided view of the padded input) per window position."""
    config = [(lo, hi, 0) for lo, hi in padding]
    xp = pad_impl(x, np.asarray(fill, x.dtype), config=config)[0]
    out_shape = [_window_out(n, k, s, lo, hi) for n, k, s, (lo, hi) in
                 zip(x.shape, window_dimensions, window_strides, padding)]
    for offs in itertools.product(*[range(k) for k in window_dimensions]):
        sl = tuple(np.s_[o: o + (m - 1) * s + 1: s] if m > 0 else np.s_[0:0]
                   for o, s, m in zip(offs, window_strides, out_shape))
        yield offs, xp[sl], out_shape


def _lowest(dtype):
    return -np.inf if dtype in FLOATS else np.iinfo(dtype).min


def _reduce_window_impl(x, *, computation="max", window_dimensions, window_strides, padding):
    fill = _lowest(x.dtype) if computation == "max" else 0
    out = None
    for _, view, out_shape in _windows(x, window_dimensions, window_strides, padding, fill):  # noqa: B007
        if out is None:
            out = view.copy()
        elif computation == "max":
            out = np.maximum(out, view)
        else:
            out = out + view
    if out is None:
        out = np.zeros(out_shape, x.dtype)
    return [out.astype(x.dtype)]


reduce_window = Primitive("reduce_window", "conv", _window_rule("reduce_window"),
                          _reduce_window_impl, index_op=True, expensive=True)


def _sas_rule(source, operand, *, window_dimensions, window_strides, padding):
    want = _window_rule("select_and_scatter_add")(
        operand, window_dimensions=window_dimensions, window_strides=window_strides, padding=padding)
    if source.shape != want.shape or source.dtype != operand.dtype:
        raise ShapeError(f"select_and_scatter_add: source {source} does not match the "
                         f"pooled shape {want} of {operand}")
    return TensorType(operand.shape, operand.dtype, operand.weak)


def _sas_impl(source, operand, *, window_dimensions, window_strides, padding):
    best = best_off = None
    views = list(_windows(operand, window_dimensions, window_strides, padding,
                          _lowest(operand.dtype)))
    for k, (_, view, _) in enumerate(views):
        if best is None:
            best, best_off = view.copy(), np.zeros(view.shape, np.int64)
        else:
            better = view > best
            best = np.where(better, view, best)
            best_off = np.where(better, k, best_off)
    config = [(lo, hi, 0) for lo, hi in padding]
    grad = np.zeros(pad_impl(operand, np.zeros((), operand.dtype), config=config)[0].shape,
                    operand.dtype)
    if best is not None:
        for k, (offs, _, out_shape) in enumerate(views):
            sl = tuple(np.s_[o: o + (m - 1) * s + 1: s] if m > 0 else np.s_[0:0]
                       for o, s, m in zip(offs, window_strides, out_shape))
            grad[sl] += np.where(best_off == k, source, 0).astype(operand.dtype)
    crop = tuple(np.s_[lo: grad.shape[d] - hi] for d, (lo, hi) in enumerate(padding))
    return [grad[crop].copy()]


select_and_scatter_add = Primitive("select_and_scatter_add", "conv", _sas_rule, _sas_impl)


# --- differentiation rules ----------------------------------------------------
# conv_general is bilinear. Its input cotangent is a convolution of the
# output cotangent with the spatially flipped kernel (in/out channels swapped
# per group), strides becoming lhs_dilation; its kernel cotangent is a
# convolution of the input with the output cotangent as the window (batch
# and channels swapped, groups carried by the feature_group_count trick
# below). Paddings as in JAX's _conv_general_vjp_{lhs,rhs}_padding.


def _dilate(n, d):
    return 0 if n == 0 else 1 + d * (n - 1)


def _conv_lhs_padding(in_sp, k_sp, strides, out_sp, padding, lhs_dil, rhs_dil):
    pads = []
    for n, k, s, m, (lo, _), ld, rd in zip(in_sp, k_sp, strides, out_sp, padding, lhs_dil,
                                           rhs_dil):
        before = _dilate(k, rd) - lo - 1
        after = _dilate(n, ld) + _dilate(k, rd) - 1 - _dilate(m, s) - before
        pads.append((before, after))
    return tuple(pads)


def _conv_rhs_padding(in_sp, k_sp, strides, out_sp, padding, lhs_dil, rhs_dil):
    return tuple((lo, _dilate(m, s) - _dilate(n, ld) + _dilate(k, rd) - lo - 1)
                 for n, k, s, m, (lo, _), ld, rd in zip(in_sp, k_sp, strides, out_sp, padding,
                                                        lhs_dil, rhs_dil))


def _conv_transpose_lhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count):
    g = feature_group_count
    ls, ks, cs = ad.shape(lhs), ad.shape(rhs), ad.shape(ct)
    nd = len(ks) - 2
    cg, o = ks[-2], ks[-1]
    # kernel [*K, C/g, O] -> [*K, O/g, C]: flip the window, swap channels per group
    w = ad.p("rev", rhs, dimensions=tuple(range(nd))) if nd else rhs
    w = ad.p("reshape", w, new_shape=(*ks[:nd], cg, g, o // g))
    w = ad.p("transpose", w, permutation=(*range(nd), nd + 2, nd + 1, nd))
    w = ad.p("reshape", w, new_shape=(*ks[:nd], o // g, g * cg))
    pads = _conv_lhs_padding(ls[1:-1], ks[:nd], window_strides, cs[1:-1], padding,
                             lhs_dilation, rhs_dilation)
    return conv_general(ct, w, window_strides=lhs_dilation, padding=pads,
                        lhs_dilation=window_strides, rhs_dilation=rhs_dilation,
                        feature_group_count=g)


def _conv_transpose_rhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count):
    g = feature_group_count
    ls, ks, cs = ad.shape(lhs), ad.shape(rhs), ad.shape(ct)
    nd = len(ks) - 2
    n, c = ls[0], ls[-1]
    if 0 in cs or 0 in ls:
        return ad.zeros_like(rhs)
    # input [N, *S, C] -> [C/g, *S, g*N]: its channels within a group become
    # the batch, (group, batch) the features, so groups pair with ct's groups
    x = ad.p("reshape", lhs, new_shape=(n, *ls[1:-1], g, c // g))
    x = ad.p("transpose", x, permutation=(nd + 2, *range(1, nd + 1), nd + 1, 0))
    x = ad.p("reshape", x, new_shape=(c // g, *ls[1:-1], g * n))
    # ct [N, *S', O] -> window [*S', N, O]
    w = ad.p("transpose", ct, permutation=(*range(1, nd + 1), 0, nd + 1))
    pads = _conv_rhs_padding(ls[1:-1], ks[:nd], window_strides, cs[1:-1], padding,
                             lhs_dilation, rhs_dilation)
    r = conv_general(x, w, window_strides=rhs_dilation, padding=pads,
                     lhs_dilation=lhs_dilation, rhs_dilation=window_strides,
                     feature_group_count=g)
    # r: [C/g, *K, O] -> [*K, C/g, O]
    return ad.p("transpose", r, permutation=(*range(1, nd + 1), 0, nd + 1))


def _conv_vjp(cts, primals, outs, **attrs):
    lhs, rhs = primals
    return [lambda: _conv_transpose_lhs(cts[0], lhs, rhs, **attrs),
            lambda: _conv_transpose_rhs(cts[0], lhs, rhs, **attrs)]


def _conv_jvp(primals, tangents, outs, **attrs):
    (lhs, rhs), (tl, tr) = primals, tangents
    return [ad.add(None if tl is None else conv_general(tl, rhs, **attrs),
                   None if tr is None else conv_general(lhs, tr, **attrs))]


conv_general.def_vjp(_conv_vjp)
conv_general.def_jvp(_conv_jvp)


def _select_and_gather(t, operand, *, window_dimensions, window_strides, padding):
    """Per window, ``t`` at the position of ``operand``'s first maximum: the
    JVP of max pooling and the transpose of select_and_scatter_add (one
    strided slice per window offset, so the IR grows with the window size)."""
    dtype = ad.aval(operand).dtype
    config = tuple((lo, hi, 0) for lo, hi in padding)
    xp = ad.p("pad", operand, np.asarray(_lowest(dtype), dtype), config=config)
    tp = ad.p("pad", t, np.zeros((), dtype), config=config)
    out_shape = [_window_out(n, k, s, lo, hi) for n, k, s, (lo, hi) in
                 zip(ad.shape(operand), window_dimensions, window_strides, padding)]
    best = picked = None
    for offs in itertools.product(*[range(k) for k in window_dimensions]):
        start = tuple(offs)
        limit = tuple(o + (m - 1) * s + 1 if m > 0 else o
                      for o, s, m in zip(offs, window_strides, out_shape))
        view = ad.p("slice", xp, start=start, limit=limit, strides=tuple(window_strides))
        tview = ad.p("slice", tp, start=start, limit=limit, strides=tuple(window_strides))
        if best is None:
            best, picked = view, tview
        else:
            better = ad.p("gt", view, best)
            best = ad.p("select", better, view, best)
            picked = ad.p("select", better, tview, picked)
    return picked


def _window_sum_transpose(ct, x_shape, *, window_dimensions, window_strides, padding):
    pads = []
    for n, k, s, (lo, _), m in zip(x_shape, window_dimensions, window_strides, padding,
                                   ad.shape(ct)):
        before = k - lo - 1
        pads.append((before, n + k - 1 - _dilate(m, s) - before, s - 1))
    dtype = ad.aval(ct).dtype
    padded = ad.p("pad", ct, np.zeros((), dtype), config=tuple(pads))
    return reduce_window(padded, computation="sum", window_dimensions=window_dimensions,
                         window_strides=(1,) * len(x_shape),
                         padding=((0, 0),) * len(x_shape))


def _reduce_window_vjp(cts, primals, outs, *, computation="max", **window):
    x = primals[0]
    if computation == "sum":
        return [_window_sum_transpose(cts[0], ad.shape(x), **window)]
    return [select_and_scatter_add(cts[0], x, **window)]


def _reduce_window_jvp(primals, tangents, outs, *, computation="max", **window):
    if computation == "sum":
        return [reduce_window(tangents[0], computation="sum", **window)]
    return [_select_and_gather(tangents[0], primals[0], **window)]


reduce_window.def_vjp(_reduce_window_vjp)
reduce_window.def_jvp(_reduce_window_jvp)
# select_and_scatter_add is linear in the source; the operand only selects
# positions (piecewise constant), so it gets no cotangent.
select_and_scatter_add.def_vjp(lambda cts, primals, outs, **window: [
    _select_and_gather(cts[0], primals[1], **window), None])
select_and_scatter_add.def_jvp(lambda primals, tangents, outs, **window: [
    None if tangents[0] is None else select_and_scatter_add(tangents[0], primals[1], **window)])


# --- batching rules (vmap) ------------------------------------------------------
# A batched input folds the batch into N. A batched kernel folds it into the
# output features, inside each feature group. Both batched: the batch
# becomes more feature groups (B * groups), input channels ordered (batch,
# channel) and kernel outputs (batch, group, feature), so group (b, g) of
# the input meets group (b, g) of the kernel.


def _conv_batch(vals, batched, **attrs):
    lhs, rhs = vals
    g = attrs["feature_group_count"]
    if not batched[1]:
        ls = ad.shape(lhs)
        x = ad.p("reshape", lhs, new_shape=(ls[0] * ls[1],) + ls[2:])
        out = conv_general(x, rhs, **attrs)
        return [ad.p("reshape", out, new_shape=ls[:2] + ad.shape(out)[1:])], [True]
    ks = ad.shape(rhs)
    b, window, cg, o = ks[0], ks[1:-2], ks[-2], ks[-1]
    nd = len(window)
    w = ad.p("reshape", rhs, new_shape=(b, *window, cg, g, o // g))
    if not batched[0]:
        # kernel -> [*K, C/g, g * B * O/g]; result [N, *S', g, B, O/g]
        w = ad.p("transpose", w, permutation=(*range(1, nd + 2), nd + 2, 0, nd + 3))
        w = ad.p("reshape", w, new_shape=(*window, cg, g * b * (o // g)))
        out = conv_general(lhs, w, **attrs)
        os_ = ad.shape(out)
        out = ad.p("reshape", out, new_shape=(*os_[:-1], g, b, o // g))
        out = bu.moveaxis(out, len(os_), 0)
        return [ad.p("reshape", out, new_shape=(b, *os_[:-1], o))], [True]
    ls = ad.shape(lhs)   # (B, N, *S, C)
    x = ad.p("transpose", lhs, permutation=(1, *range(2, nd + 2), 0, nd + 2))
    x = ad.p("reshape", x, new_shape=(ls[1], *ls[2:-1], b * ls[-1]))
    w = ad.p("transpose", w, permutation=(*range(1, nd + 2), 0, nd + 2, nd + 3))
    w = ad.p("reshape", w, new_shape=(*window, cg, b * o))
    out = conv_general(x, w, **dict(attrs, feature_group_count=b * g))
    os_ = ad.shape(out)
    out = ad.p("reshape", out, new_shape=(*os_[:-1], b, o))
    return [bu.moveaxis(out, len(os_) - 1, 0)], [True]


def _window_batch(prim):
    def rule(vals, batched, *, window_dimensions, window_strides, padding, **kw):
        vals = bu.materialize(vals, batched)
        out = prim.bind(*vals, window_dimensions=(1,) + tuple(window_dimensions),
                        window_strides=(1,) + tuple(window_strides),
                        padding=((0, 0),) + tuple(padding), **kw)
        return out, [True]
    return rule


conv_general.def_batch(_conv_batch)
reduce_window.def_batch(_window_batch(reduce_window))
select_and_scatter_add.def_batch(_window_batch(select_and_scatter_add))
