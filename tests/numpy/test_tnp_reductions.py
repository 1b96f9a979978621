"""tracejit.numpy reductions with axis (None, int, negative, tuple) and
keepdims, eager and jitted, against NumPy 2."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tnp_check import (ALL_DTYPES, FLOAT_DTYPES, NUM_DTYPES, array_and_axis, arrays,
                       check, check_raises, shapes)

SETTINGS = settings(max_examples=15, deadline=None)
# Sums of float32 in a different order than NumPy's pairwise summation.
TOL = dict(rtol=1e-4, atol=1e-4)


def _nonempty(x, axis):
    axes = range(x.ndim) if axis is None else np.atleast_1d(axis)
    return all(x.shape[a] for a in axes)


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "amax", "amin", "any", "all",
                                  "count_nonzero"])
@SETTINGS
@given(xa=array_and_axis())
def test_reduction(name, xa):
    x, axis, keepdims = xa
    if name == "prod":
        x = np.clip(x, -2, 2) if x.dtype != np.bool_ else x
    if name in ("max", "min", "amax", "amin") and not _nonempty(x, axis):
        check_raises(lambda m, x: getattr(m, name)(x, axis=axis), x, exc=ValueError)
        return
    check(lambda m, x: getattr(m, name)(x, axis=axis, keepdims=keepdims), x, **TOL)


@pytest.mark.parametrize("name", ["mean", "var", "std", "nansum", "nanmean"])
@SETTINGS
@given(xa=array_and_axis(dtype=None))
def test_statistics(name, xa):
    x, axis, keepdims = xa
    if x.dtype == np.bool_ and name.startswith("nan"):
        return
    check(lambda m, x: getattr(m, name)(x, axis=axis, keepdims=keepdims), x, **TOL)


@SETTINGS
@given(xa=array_and_axis(dtype="float64"), ddof=st.integers(0, 3))
def test_var_std_ddof(xa, ddof):
    x, axis, keepdims = xa
    check(lambda m, x: m.var(x, axis=axis, ddof=ddof, keepdims=keepdims), x, **TOL)
    check(lambda m, x: m.std(x, axis=axis, ddof=ddof), x, **TOL)


@pytest.mark.parametrize("name", ["sum", "prod", "mean"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_reduction_dtype_argument(name, dtype):
    x = np.arange(12, dtype=np.int32).reshape(3, 4) % 5
    check(lambda m, x: getattr(m, name)(x, axis=1, dtype=dtype), x)


@SETTINGS
@given(xa=array_and_axis(), initial=st.integers(-3, 3))
def test_max_min_initial(xa, initial):
    x, axis, keepdims = xa
    if x.dtype == np.bool_:
        initial = bool(initial)
    check(lambda m, x: m.max(x, axis=axis, keepdims=keepdims, initial=initial), x)
    check(lambda m, x: m.min(x, axis=axis, keepdims=keepdims, initial=initial), x)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@SETTINGS
@given(data=st.data())
def test_argmax_argmin(name, data):
    x = data.draw(arrays(data.draw(st.sampled_from(ALL_DTYPES)), shapes(min_dims=1, min_side=1)))
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    keepdims = data.draw(st.booleans())
    check(lambda m, x: getattr(m, name)(x, axis=axis), x)
    check(lambda m, x: getattr(m, name)(x, axis=axis, keepdims=keepdims), x)


def test_argmax_of_empty_raises():
    check_raises(lambda m, x: m.argmax(x), np.zeros((0, 3)), exc=ValueError)


@SETTINGS
@given(data=st.data())
def test_cumsum(data):
    x = data.draw(arrays(data.draw(st.sampled_from(ALL_DTYPES)), shapes(max_dims=3)))
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1))) if x.ndim else None
    check(lambda m, x: m.cumsum(x, axis=axis), x, **TOL)
    check(lambda m, x: m.cumsum(x, axis=axis, dtype="float64"), x, **TOL)


@SETTINGS
@given(xa=array_and_axis(dtype="float64", min_dims=1))
def test_average(xa):
    x, axis, keepdims = xa
    if x.size == 0:
        return   # NumPy raises ZeroDivisionError
    check(lambda m, x: m.average(x, axis=axis, keepdims=keepdims), x)
    if isinstance(axis, int) and x.shape[axis]:
        w = np.arange(1, x.shape[axis] + 1, dtype=np.float32)
        check(lambda m, x: m.average(x, axis=axis, weights=w), x)


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "prod", "any", "all",
                                    "var", "std", "argmax", "argmin", "cumsum"])
def test_methods_on_tracers(method):
    x = np.array([[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]], np.float32)
    check(lambda m, x: getattr(x, method)(), x, eager=False)
    check(lambda m, x: getattr(x, method)(axis=0), x, eager=False)
    check(lambda m, x: getattr(x, method)(-1), x, eager=False)
    if method not in ("argmax", "argmin", "cumsum"):
        check(lambda m, x: getattr(x, method)(axis=(0, 1), keepdims=True), x, eager=False)


def test_float32_reductions_stay_float32():
    x = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    for name in ("sum", "mean", "var", "std", "max", "prod"):
        check(lambda m, x: getattr(m, name)(x, axis=(0, 2)), x)
    for dt in NUM_DTYPES + FLOAT_DTYPES:
        check(lambda m, x: m.mean(x.astype(dt)), x, eager=False)


@SETTINGS
@given(data=st.data())
def test_sort_argsort_median(data):
    x = data.draw(arrays(data.draw(st.sampled_from(NUM_DTYPES)), shapes(max_dims=3)))
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None
    check(lambda m, x: m.sort(x, axis=axis), x)
    check(lambda m, x: m.argsort(x, axis=axis, kind="stable"), x)
    if x.ndim:
        check(lambda m, x: m.sort(x), x)
    if x.size and x.dtype.kind == "f":
        keepdims = data.draw(st.booleans())
        check(lambda m, x: m.median(x, axis=axis, keepdims=keepdims), x)


@SETTINGS
@given(data=st.data())
def test_allclose_array_equal(data):
    x = data.draw(arrays("float64", shapes(max_dims=2)))
    y = np.where(data.draw(arrays("bool", x.shape)), x, x * (1 + 1e-6))
    for equal_nan in (False, True):
        check(lambda m, x, y: m.allclose(x, y, equal_nan=equal_nan), x, y)
        check(lambda m, x, y: m.array_equal(x, y, equal_nan=equal_nan), x, y)
    if x.ndim:
        check(lambda m, x: m.array_equal(x, x[..., :0]), x)
