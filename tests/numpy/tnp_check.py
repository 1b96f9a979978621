"""Differential testing of tracejit.numpy against NumPy.

``check(f, *args)`` runs ``f(np, *args)`` (NumPy, the oracle),
``f(tnp, *args)`` (eager tracejit.numpy) and ``jit(lambda *a: f(tnp, *a),
backend="reference")(*args)``, and asserts the three agree: same pytree of
results, same shapes, same dtypes, equal values (exact for integers and
booleans, close for floats, NaN and infinities in the same places).
Hypothesis strategies for shapes, dtypes and values live here too.
"""
from __future__ import annotations

import warnings

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
NUM_DTYPES = FLOAT_DTYPES + INT_DTYPES
ALL_DTYPES = NUM_DTYPES + ("bool",)

RTOL = {"float32": 2e-5, "float64": 1e-12}


def run_numpy(f, args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return f(np, *args)


def run_tnp(f, args, jit: bool):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if jit:
            return tracejit.jit(lambda *a: f(tnp, *a), backend="reference")(*args)
        return f(tnp, *args)


def assert_same(expected, got, rtol=None, atol=0.0, where=""):
    """``got`` matches NumPy's ``expected`` in structure, shape, dtype, value."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), \
            f"{where}: expected a sequence of {len(expected)}, got {type(got).__name__}"
        for k, (e, g) in enumerate(zip(expected, got)):
            assert_same(e, g, rtol, atol, f"{where}[{k}]")
        return
    e, g = np.asarray(expected), np.asarray(got)
    assert g.shape == e.shape, f"{where}: shape {g.shape} != NumPy's {e.shape}"
    assert g.dtype == e.dtype, f"{where}: dtype {g.dtype} != NumPy's {e.dtype}"
    if e.dtype.kind in "biu":
        np.testing.assert_array_equal(g, e, err_msg=where)
    else:
        tol = RTOL[e.dtype.name] if rtol is None else rtol
        np.testing.assert_allclose(g, e, rtol=tol, atol=atol, equal_nan=True, err_msg=where)


def check(f, *args, rtol=None, atol=0.0, jit=True, eager=True):
    """Assert eager and jitted tracejit.numpy agree with NumPy on ``f``."""
    expected = run_numpy(f, args)
    if eager:
        assert_same(expected, run_tnp(f, args, jit=False), rtol, atol, "eager")
    if jit:
        assert_same(expected, run_tnp(f, args, jit=True), rtol, atol, "jit")


def check_raises(f, *args, exc=Exception):
    """NumPy and tracejit.numpy (eager and traced) both reject ``f``."""
    import pytest
    for runner in (lambda: run_numpy(f, args), lambda: run_tnp(f, args, False),
                   lambda: run_tnp(f, args, True)):
        with pytest.raises(exc):
            runner()


# --- strategies -------------------------------------------------------------
def shapes(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                            min_side=min_side, max_side=max_side)


def elements(dtype, special=True, lo=None, hi=None):
    """Values of ``dtype``; floats include NaN, infinities and signed zeros
    when ``special``; integers stay small unless bounds are given."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        lo = -20 if lo is None else lo
        hi = 20 if hi is None else hi
        if dtype.kind == "u":
            lo = max(lo, 0)
        return st.integers(lo, hi)
    width = 32 if dtype == np.float32 else 64
    if lo is not None or hi is not None:
        return st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False)
    finite = st.floats(-1e3, 1e3, width=width)
    if not special:
        return finite
    return st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0]),
                     st.floats(width=width))


def arrays(dtype, shape, **kw):
    return hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, **kw))


@st.composite
def array_and_axis(draw, dtype=None, min_dims=1, shape=None, **kw):
    """An array, an axis argument (None, int incl. negative, or tuple) and
    keepdims."""
    dtype = dtype or draw(st.sampled_from(ALL_DTYPES))
    shape = shape or draw(shapes(min_dims=min_dims))
    x = draw(arrays(dtype, shape, **kw))
    nd = len(shape)
    choices = [st.none()]
    if nd:
        choices.append(st.integers(-nd, nd - 1))
        choices.append(st.lists(st.integers(0, nd - 1), unique=True).flatmap(
            lambda axes: st.tuples(*[st.sampled_from([a, a - nd]) for a in axes])))
    axis = draw(st.one_of(*choices))
    return x, axis, draw(st.booleans())


@st.composite
def broadcast_arrays(draw, n=2, dtypes=ALL_DTYPES, **kw):
    """``n`` arrays of mutually broadcastable shapes and drawn dtypes."""
    s = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3,
                                               min_side=0, max_side=3))
    return tuple(draw(arrays(draw(st.sampled_from(dtypes)), shape, **kw))
                 for shape in s.input_shapes)


def broadcast_pair(dtypes=ALL_DTYPES, **kw):
    return broadcast_arrays(2, dtypes, **kw)
