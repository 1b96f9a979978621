"""Small helpers for the differentiation rules written next to each primitive.

Rules bind primitives (so they run eagerly or record into the active trace)
on values that are NumPy arrays, tracers or Python scalars (weakly typed
constants). Primitives are looked up by name at call time, so every family
file can import this module without import cycles.

``guard`` implements the zero-cotangent policy of tracejit/transforms/autodiff.py:
an exactly-zero incoming cotangent (or tangent) gives an exactly-zero result,
even where the local derivative is inf or NaN.
"""
from __future__ import annotations

import numpy as np

from ..core import PRIMITIVES
from ..ir.types import FLOATS, TensorType


def aval(x) -> TensorType:
    t = getattr(x, "aval", None)
    return t if isinstance(t, TensorType) else TensorType.of(x)


def shape(x) -> tuple:
    return aval(x).shape


def is_float(x) -> bool:
    return aval(x).dtype in FLOATS


def is_float_type(t: TensorType) -> bool:
    """Values of type ``t`` can be differentiated (integers and booleans are
    never active)."""
    return t.dtype in FLOATS


def p(name, *args, **attrs):
    """Bind primitive ``name`` (single result)."""
    return PRIMITIVES[name](*args, **attrs)


def full_like(x, value, dtype=None):
    t = aval(x)
    c = np.asarray(value, dtype=dtype or t.dtype)
    if not t.shape:
        return c
    return p("broadcast_in_dim", c, shape=t.shape, broadcast_dimensions=())


def zeros_like(x):
    return full_like(x, 0)


def instantiate(t, like):
    """A symbolic zero (None) made concrete in the type of ``like``."""
    return zeros_like(like) if t is None else t


def add(a, b):
    """Sum of two cotangents or tangents, None being zero."""
    if a is None:
        return b
    if b is None:
        return a
    return p("add", a, b)


def guard(g, value):
    """``value`` (a product ``g * d``), exactly 0 where ``g == 0`` even where
    ``d`` is inf or NaN. The ``guard`` primitive (primitives/elementwise.py)
    keeps the product's derivative in ``g`` at ``g == 0``, so higher-order
    derivatives through it stay right at exactly-zero cotangents."""
    return p("guard", g, value)


def bcast_back(ct, full_shape, axes):
    """Broadcast a reduction's result back over the reduced ``axes``."""
    kept = tuple(d for d in range(len(full_shape)) if d not in axes)
    return p("broadcast_in_dim", ct, shape=tuple(full_shape), broadcast_dimensions=kept)


def linear_jvp(prim):
    """The JVP of a primitive linear in its float operands (jointly): the
    primitive applied to the tangents, non-float operands (indices,
    predicates) passed as they are."""
    def rule(primals, tangents, outs, **attrs):
        args = [instantiate(t, x) if is_float(x) else x for x, t in zip(primals, tangents)]
        return PRIMITIVES[prim].bind(*args, **attrs)
    return rule


def zero_vjp(cts, primals, outs, **attrs):
    """Piecewise-constant primitives: the derivative is zero almost everywhere."""
    return [None] * len(primals)


def zero_jvp(primals, tangents, outs, **attrs):
    return [None] * len(outs)
