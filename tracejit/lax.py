"""Primitive-level operations that NumPy has no name for (like jax.lax):
``logistic``, ``rsqrt``, ``erf``, convolutions and windowed reductions,
and JAX's structured control flow under its ``lax`` names (``scan``,
``cond``, ``switch``, ``while_loop``, ``fori_loop``, ``map``; defined in
tracejit/control.py). Operands are promoted as in tracejit.numpy."""
from __future__ import annotations

from .control import cond, fori_loop, scan, switch, while_loop  # noqa: F401
from .control import map_ as map  # noqa: F401
from .numpy import asarray, astype, promote_dtypes, unary_op
from .primitives import conv as _cv
from .primitives import elementwise as _ew
from .primitives import linalg as _la
from .slicing import dynamic_slice, dynamic_update_slice  # noqa: F401

logistic = unary_op(_ew.logistic, float_only=True)
rsqrt = unary_op(_ew.rsqrt, float_only=True)
erf = unary_op(_ew.erf, float_only=True)


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """XLA's DotGeneral. JAX's ``precision`` is accepted (products are exact
    to the dtype here); ``preferred_element_type`` is the accumulation and
    result dtype."""
    lhs, rhs = promote_dtypes([asarray(lhs), asarray(rhs)])
    if preferred_element_type is not None:
        lhs, rhs = astype(lhs, preferred_element_type), astype(rhs, preferred_element_type)
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    return _la.dot_general(lhs, rhs, dimension_numbers=dn)


def conv_general(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                 feature_group_count=1, precision=None, preferred_element_type=None):
    """N-d convolution, channels last: lhs [N, *spatial, C], rhs [*window, C/groups, O]."""
    lhs, rhs = promote_dtypes([asarray(lhs), asarray(rhs)])
    if preferred_element_type is not None:
        lhs, rhs = astype(lhs, preferred_element_type), astype(rhs, preferred_element_type)
    nd = len(window_strides)
    return _cv.conv_general(
        lhs, rhs, window_strides=tuple(window_strides),
        padding=tuple((int(lo), int(hi)) for lo, hi in padding),
        lhs_dilation=tuple(lhs_dilation or (1,) * nd),
        rhs_dilation=tuple(rhs_dilation or (1,) * nd),
        feature_group_count=int(feature_group_count))


def reduce_window(x, computation, window_dimensions, window_strides, padding):
    return _cv.reduce_window(asarray(x), computation=computation,
                             window_dimensions=tuple(window_dimensions),
                             window_strides=tuple(window_strides),
                             padding=tuple((int(lo), int(hi)) for lo, hi in padding))


def select_and_scatter_add(source, operand, window_dimensions, window_strides, padding):
    return _cv.select_and_scatter_add(
        asarray(source), asarray(operand), window_dimensions=tuple(window_dimensions),
        window_strides=tuple(window_strides),
        padding=tuple((int(lo), int(hi)) for lo, hi in padding))
