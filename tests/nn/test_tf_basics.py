"""add_n, one_hot, cast and relu's gradient at 0, against NumPy, eagerly and jitted."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
from tracejit import nn


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(-3, 12), min_size=0, max_size=6), st.integers(1, 10))
def test_one_hot_matches_numpy(labels, depth):
    labels = np.asarray(labels, np.int32)
    want = (labels[:, None] == np.arange(depth)).astype(np.float32)
    for f in (nn.one_hot, tracejit.jit(nn.one_hot, static_argnums=1)):
        got = np.asarray(f(labels, depth))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_one_hot_values_and_dtype():
    got = nn.one_hot(np.array([[0, 2]]), 3, on_value=5.0, off_value=-1.0, dtype="float64")
    np.testing.assert_array_equal(got, [[[5, -1, -1], [-1, -1, 5]]])
    assert got.dtype == np.float64


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.lists(
    hnp.arrays(np.float32, (2, 3), elements=st.floats(-10, 10, width=32)), min_size=n, max_size=n)))
def test_add_n_matches_sum(xs):
    got = tracejit.jit(nn.add_n)(xs)
    np.testing.assert_allclose(got, np.sum(xs, axis=0), rtol=1e-6, atol=1e-6)


def test_add_n_empty_is_an_error():
    try:
        nn.add_n([])
    except ValueError as e:
        assert "at least one" in str(e)
    else:
        raise AssertionError("add_n([]) did not raise")


def test_cast():
    x = np.array([1.7, -2.2], np.float64)
    got = tracejit.jit(lambda x: nn.cast(x, "int32"))(x)
    np.testing.assert_array_equal(got, x.astype(np.int32))


def test_relu_gradient_is_zero_at_zero_and_nan_propagates():
    x = np.array([-1.0, 0.0, 2.0, np.nan], np.float32)
    g = tracejit.jit(tracejit.grad(lambda x: nn.relu(x).sum()))(x)
    np.testing.assert_array_equal(g[:3], [0, 0, 1])
    y = tracejit.jit(nn.relu)(x)
    np.testing.assert_array_equal(y[:3], [0, 0, 2])
    assert np.isnan(y[3])
