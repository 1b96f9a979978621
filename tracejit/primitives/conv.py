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

from ..errors import DTypeError, ShapeError
from ..ir.types import TensorType
from .core import Primitive
from .shape import _pad_impl


def _window_out(n, k, stride, lo, hi, lhs_dil=1, rhs_dil=1):
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
    x = _pad_impl(lhs, np.zeros((), lhs.dtype), config=config)[0]
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
    xp = _pad_impl(x, np.asarray(fill, x.dtype), config=config)[0]
    out_shape = [_window_out(n, k, s, lo, hi) for n, k, s, (lo, hi) in
                 zip(x.shape, window_dimensions, window_strides, padding)]
    for offs in itertools.product(*[range(k) for k in window_dimensions]):
        sl = tuple(np.s_[o: o + (m - 1) * s + 1: s] if m > 0 else np.s_[0:0]
                   for o, s, m in zip(offs, window_strides, out_shape))
        yield offs, xp[sl], out_shape


def _lowest(dtype):
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


def _reduce_window_impl(x, *, computation="max", window_dimensions, window_strides, padding):
    fill = _lowest(x.dtype) if computation == "max" else 0
    out = None
    for _, view, out_shape in _windows(x, window_dimensions, window_strides, padding, fill):
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
                          _reduce_window_impl)


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
    for k, (offs, view, _) in enumerate(views):
        if best is None:
            best, best_off = view.copy(), np.zeros(view.shape, np.int64)
        else:
            better = view > best
            best = np.where(better, view, best)
            best_off = np.where(better, k, best_off)
    config = [(lo, hi, 0) for lo, hi in padding]
    grad = np.zeros(_pad_impl(operand, np.zeros((), operand.dtype), config=config)[0].shape,
                    operand.dtype)
    if best is not None:
        for k, (offs, _, out_shape) in enumerate(views):
            sl = tuple(np.s_[o: o + (m - 1) * s + 1: s] if m > 0 else np.s_[0:0]
                       for o, s, m in zip(offs, window_strides, out_shape))
            grad[sl] += np.where(best_off == k, source, 0).astype(operand.dtype)
    crop = tuple(np.s_[lo: grad.shape[d] - hi] for d, (lo, hi) in enumerate(padding))
    return [grad[crop].copy()]


select_and_scatter_add = Primitive("select_and_scatter_add", "conv", _sas_rule, _sas_impl)
