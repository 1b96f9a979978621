"""lax.dynamic_slice / dynamic_update_slice with traced starts (clamped as
XLA), and basic slicing with traced bounds of a static size."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit import lax
from tracejit.testing import check_grads


def _clamp(s, n, k):
    return min(max(s, 0), n - k)


def _np_dynamic_slice(x, starts, sizes):
    c = [_clamp(s, n, k) for s, n, k in zip(starts, x.shape, sizes)]
    return x[tuple(slice(a, a + k) for a, k in zip(c, sizes))]


def _np_dynamic_update_slice(x, u, starts):
    c = [_clamp(s, n, k) for s, n, k in zip(starts, x.shape, u.shape)]
    out = x.copy()
    out[tuple(slice(a, a + k) for a, k in zip(c, u.shape))] = u
    return out


@st.composite
def problems(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    sizes = tuple(draw(st.integers(0, n)) for n in shape)
    starts = tuple(draw(st.integers(-3, n + 3)) for n in shape)
    return shape, sizes, starts


@settings(max_examples=25, deadline=None)
@given(problem=problems(), seed=st.integers(0, 99))
def test_against_numpy_eager_and_traced(problem, seed):
    shape, sizes, starts = problem
    rng = np.random.RandomState(seed)
    x = rng.randn(*shape)
    u = rng.randn(*sizes)
    want = _np_dynamic_slice(x, starts, sizes)
    np.testing.assert_array_equal(lax.dynamic_slice(x, starts, sizes), want)
    traced = tracejit.jit(lambda x, s: lax.dynamic_slice(x, s, sizes), backend="reference")
    np.testing.assert_array_equal(traced(x, [np.int32(s) for s in starts]), want)
    want = _np_dynamic_update_slice(x, u, starts)
    np.testing.assert_array_equal(lax.dynamic_update_slice(x, u, starts), want)
    traced = tracejit.jit(lambda x, u, s: lax.dynamic_update_slice(x, u, s), backend="reference")
    np.testing.assert_array_equal(traced(x, u, list(starts)), want)


def test_compiled_on_cpu():
    x = np.arange(30.0).reshape(5, 6)
    u = -np.ones((2, 3))
    ds = tracejit.jit(lambda x, i, j: lax.dynamic_slice(x, (i, j), (2, 3)), backend="cpu")
    dus = tracejit.jit(lambda x, u, i, j: lax.dynamic_update_slice(x, u, (i, j)), backend="cpu")
    for i, j in [(0, 0), (2, 1), (4, 5), (-2, 9)]:
        np.testing.assert_array_equal(ds(x, i, j), _np_dynamic_slice(x, (i, j), (2, 3)))
        np.testing.assert_array_equal(dus(x, u, i, j), _np_dynamic_update_slice(x, u, (i, j)))


def test_gradients_to_order_2():
    rng = np.random.RandomState(0)
    x, u = rng.randn(4, 5), rng.randn(2, 3)
    i = np.int64(1)
    check_grads(lambda x: tnp.sin(lax.dynamic_slice(x, (i, np.int64(3)), (2, 2))) ** 2,
                (x,), order=2)
    check_grads(lambda x, u: tnp.sin(lax.dynamic_update_slice(x, u * u, (i, np.int64(-1)))),
                (x, u), order=2)
    # traced starts inside jit: gradients land in the clamped window
    g = tracejit.jit(tracejit.grad(lambda x, i: tnp.sum(lax.dynamic_slice(x, (i, 0), (2, 5)))))
    np.testing.assert_array_equal(g(x, 3), np.r_[np.zeros((2, 5)), np.ones((2, 5))])


def test_vmap_with_batched_starts():
    x = np.arange(20.0).reshape(4, 5)
    starts = np.array([0, 2, 4, -1])
    f = lambda i: lax.dynamic_slice(x, (0, i), (4, 2))
    got = tracejit.vmap(f)(starts)
    np.testing.assert_array_equal(got, np.stack([_np_dynamic_slice(x, (0, s), (4, 2))
                                                 for s in starts]))
    g = lambda x, i: lax.dynamic_update_slice(x, np.zeros(2), (i,))
    xs = np.ones((4, 5))
    got = tracejit.vmap(g)(xs, starts)
    np.testing.assert_array_equal(got, np.stack([_np_dynamic_update_slice(a, np.zeros(2), (s,))
                                                 for a, s in zip(xs, starts)]))


def test_basic_slicing_with_traced_bounds():
    x = np.arange(24.0).reshape(6, 4)
    f = tracejit.jit(lambda x, i: x[i * 2:(i + 1) * 2, 1:])
    np.testing.assert_array_equal(f(x, 1), x[2:4, 1:])
    np.testing.assert_array_equal(f(x, 5), x[4:6, 1:])         # clamped: the last window
    h = tracejit.jit(lambda x, i: x[:, i:i + 3])
    np.testing.assert_array_equal(h(x, 1), x[:, 1:4])

    def blocks(x):   # a loop over row blocks, differentiable
        return tracejit.fori_loop(0, 3, lambda i, acc: acc + tnp.sum(x[i * 2:(i + 1) * 2] ** 2),
                                  0.0)
    assert tracejit.jit(blocks, backend="cpu")(x) == (x ** 2).sum()
    np.testing.assert_allclose(tracejit.grad(blocks)(x), 2 * x)


def test_traced_bounds_of_unknown_size_raise_a_clear_error():
    x = np.arange(6.0)
    with pytest.raises(tracejit.ConcretizationError, match="dynamic_slice"):
        tracejit.jit(lambda x, i, j: x[i:j])(x, 1, 3)
    with pytest.raises(tracejit.ConcretizationError, match="step 1"):
        tracejit.jit(lambda x, i: x[i:i + 2:2])(x, 1)
    with pytest.raises(tracejit.ShapeError, match="does not fit"):
        lax.dynamic_slice(x, (0,), (7,))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), size=st.integers(0, 9), start=st.integers(-3, 12),
       op=st.sampled_from(["set", "add", "multiply"]))
def test_at_updates_with_traced_slice_bounds(n, size, start, op):
    """``x.at[i:i + k]`` with a traced ``i``: the window of ``dynamic_slice``
    (start clamped into [0, n - k]) is updated, like a concrete slice there."""
    size = min(size, n)
    x = np.arange(n, dtype=np.float64) + 1
    v = np.float64(7.5)
    f = tracejit.jit(lambda x, i: getattr(x.at[i:i + size], op)(v))
    lo = min(max(start, 0), n - size)
    want = x.copy()
    if op == "set":
        want[lo:lo + size] = v
    elif op == "add":
        want[lo:lo + size] += v
    else:
        want[lo:lo + size] *= v
    np.testing.assert_array_equal(f(x, np.int64(start)), want)


def test_at_update_with_traced_bounds_is_differentiable():
    x = np.random.default_rng(3).normal(size=(3, 6))

    def f(x, i):
        return tnp.sum(tnp.sin(x.at[:, 2 * i:2 * i + 2].set(x[:, 2 * i:2 * i + 2] ** 2)))
    jf = tracejit.jit(f)   # traced, so x has .at (NumPy arrays do not)
    check_grads(lambda x: jf(x, np.int64(1)), (x,), order=2)
    check_grads(lambda x: jf(x, np.int64(2)), (x,), order=1)
