"""Code written for NumPy and JAX running unchanged: NumPy's own functions on
traced values (NEP 13/18 dispatch), lists of traced values, linspace with
traced ends, einsum's sublist form, JAX's precision= and
preferred_element_type=, functools.partial and wraps, registered
namedtuples; one regression test per bug of issue 15."""
import collections
import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.lax as lax
import tracejit.numpy as tnp
from tracejit.testing import check_grads

from tnp_check import assert_same

X = np.array([0.5, -1.5, 2.0])
M = np.arange(6.0).reshape(2, 3)


def both(f, *args, rtol=1e-12):
    """``f`` on NumPy arrays (NumPy itself) and traced (cpu backend) agree."""
    want = f(*args)
    got = tracejit.jit(f)(*args)
    assert_same(want, got, rtol=rtol)


NUMPY_ON_TRACERS = {
    "sum": lambda x: np.sum(x),
    "sum_axis_keepdims": lambda x: np.sum(x, axis=1, keepdims=True),
    "mean": lambda x: np.mean(x, axis=0),
    "max": lambda x: np.max(x),
    "exp": lambda x: np.exp(x),
    "ufunc_binary_with_array": lambda x: np.add(np.ones(x.shape), x) * np.float64(2),
    "array_op_tracer": lambda x: np.ones(x.shape) * x - np.arange(x.size).reshape(x.shape),
    "concatenate": lambda x: np.concatenate([x, 2 * x], axis=0),
    "stack": lambda x: np.stack([x, x]),
    "where": lambda x: np.where(x > 1, x, -x),
    "reshape": lambda x: np.reshape(x, (-1,)),
    "transpose": lambda x: np.transpose(x),
    "dot": lambda x: np.dot(x, x.T),
    "einsum": lambda x: np.einsum("ij,kj->ik", x, x),
    "linalg_norm": lambda x: np.linalg.norm(x),
    "clip": lambda x: np.clip(x, 1.0, 4.0),
    "add_reduce": lambda x: np.add.reduce(x, axis=1),
    "multiply_accumulate": lambda x: np.multiply.accumulate(x + 1, axis=1),
    "maximum_outer": lambda x: np.maximum.outer(x[0], x[1]),
    "arcsin": lambda x: np.arcsin(x / 10),
    "logaddexp": lambda x: np.logaddexp(x, 1.0),
}


@pytest.mark.parametrize("name", sorted(NUMPY_ON_TRACERS))
def test_numpy_functions_trace(name):
    both(NUMPY_ON_TRACERS[name], M)


def test_numpy_functions_differentiate():
    g = tracejit.grad(lambda x: np.sum(np.exp(x) * np.sin(x)))(X)
    np.testing.assert_allclose(g, np.exp(X) * (np.sin(X) + np.cos(X)), rtol=1e-12)


def test_untraceable_numpy_names_the_line_and_the_alternative():
    with pytest.raises(tracejit.ConcretizationError, match="numpy.fft.fft") as e:
        tracejit.jit(lambda x: np.fft.fft(x))(X)
    assert "test_compat.py" in str(e.value) and "docs/numpy.md" in str(e.value)
    with pytest.raises(tracejit.ConcretizationError, match="out="):
        tracejit.jit(lambda x: np.exp(x, out=np.empty(3)))(X)
    with pytest.raises(tracejit.ConcretizationError, match="unique"):
        tracejit.jit(lambda x: np.unique(x))(X)


@settings(max_examples=20, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=3), elements=st.floats(-5, 5)))
def test_lists_of_traced_values(x):
    both(lambda x: tnp.array([x, 2 * x, x * x]) if True else None, x)
    both(lambda x: tnp.mean(tnp.asarray([x, x + 1.0]), axis=0), x)
    both(lambda x: tnp.asarray([[x, 1.0 + 0 * x], [x, x]], dtype=np.float32), x)


def test_lists_of_traced_values_numpy_side():
    f = tracejit.jit(lambda x: tnp.array([x, 2 * x]))
    np.testing.assert_array_equal(f(X), np.array([X, 2 * X]))
    g = tracejit.jit(lambda a, b: tnp.mean([a, b]))
    np.testing.assert_allclose(g(1.0, 4.0), 2.5)
    h = tracejit.jit(lambda a: tnp.array([a[0], 1.0, a[1]]))
    np.testing.assert_array_equal(h(X), [0.5, 1.0, -1.5])
    check_grads(lambda x: tnp.sum(tnp.array([x, 2 * x]) ** 2), (X,), order=2)


@pytest.mark.parametrize("endpoint", [True, False])
@pytest.mark.parametrize("num", [0, 1, 2, 5])
def test_linspace_traced_and_array_ends(endpoint, num):
    f = tracejit.jit(lambda a, b: tnp.linspace(a, b, num, endpoint=endpoint))
    np.testing.assert_allclose(f(0.5, 3.0), np.linspace(0.5, 3.0, num, endpoint=endpoint))
    a, b = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    assert_same(np.linspace(a, b, num, endpoint=endpoint), f(a, b))
    assert_same(np.linspace(a, b, num, endpoint=endpoint),
                tnp.linspace(a, b, num, endpoint=endpoint))
    y, step = tracejit.jit(lambda a, b: tnp.linspace(a, b, num, endpoint=endpoint,
                                                     retstep=True))(a, b)
    ey, estep = np.linspace(a, b, num, endpoint=endpoint, retstep=True)
    np.testing.assert_allclose(step, estep)
    if num > 1:
        check_grads(lambda a, b: tnp.linspace(a, b, num, endpoint=endpoint), (a, b), order=2)


def test_einsum_sublist_form():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    for args in [(a, [0, 1], b, [1, 2]), (a, [0, 1], b, [1, 2], [2, 0]), (a, [0, 1], [1]),
                 (a, [0, Ellipsis], [Ellipsis]), (a, [Ellipsis, 1], b, [1, 2], [Ellipsis, 2])]:
        want = np.einsum(*args)
        arrays = [x for x in args if isinstance(x, np.ndarray)]

        def f(*xs, _args=args):
            it = iter(xs)
            return tnp.einsum(*[next(it) if isinstance(x, np.ndarray) else x for x in _args])
        assert_same(want, tracejit.jit(f)(*arrays))


def test_jax_precision_and_preferred_element_type_keywords():
    a = M.astype(np.float32)
    for f in (lambda a: tnp.dot(a, a.T, precision="highest"),
              lambda a: tnp.matmul(a, a.T, precision=None),
              lambda a: tnp.einsum("ij,kj->ik", a, a, precision="high"),
              lambda a: tnp.tensordot(a, a, axes=([1], [1]), precision="default"),
              lambda a: tnp.inner(a, a, precision="highest"),
              lambda a: lax.dot_general(a, a, (((1,), (1,)), ((), ())), precision="highest")):
        np.testing.assert_allclose(tracejit.jit(f)(a), a @ a.T)
    r = tracejit.jit(lambda a: tnp.matmul(a, a.T, preferred_element_type=np.float64))(a)
    assert r.dtype == np.float64
    r = lax.dot_general(np.arange(4, dtype=np.int32).reshape(2, 2), np.ones((2, 2), np.int32),
                        (((1,), (0,)), ((), ())), preferred_element_type=np.float32)
    assert r.dtype == np.float32


def test_logaddexp_at_a_tie():
    """grad(logaddexp, argnums=(0, 1))(0.6, 0.6) was (1.0, 0.0)."""
    g = tracejit.grad(tnp.logaddexp, argnums=(0, 1))(0.6, 0.6)
    np.testing.assert_allclose(g, (0.5, 0.5))
    np.testing.assert_allclose(tnp.logaddexp(0.6, 0.6), np.logaddexp(0.6, 0.6))
    for a, b in [(np.inf, np.inf), (-np.inf, -np.inf), (np.inf, 1.0)]:
        assert tnp.logaddexp(a, b) == np.logaddexp(a, b)


def test_ties_at_kinks():
    """The conventions of docs/numpy.md: ties split the derivative equally."""
    g = tracejit.grad(lambda a, b: tnp.maximum(a, b), argnums=(0, 1))
    np.testing.assert_allclose(g(1.0, 1.0), (0.5, 0.5))
    g = tracejit.grad(lambda a, b: tnp.minimum(a, b), argnums=(0, 1))
    np.testing.assert_allclose(g(1.0, 1.0), (0.5, 0.5))
    assert tracejit.grad(tnp.abs)(0.0) == 0.0
    clip = tracejit.grad(lambda x: tnp.clip(x, 0.0, 1.0))
    assert clip(0.0) == 0.5 and clip(1.0) == 0.5 and clip(0.5) == 1.0
    np.testing.assert_allclose(tracejit.grad(lambda x: tnp.max(x))(np.array([1.0, 2, 2])),
                               [0, 0.5, 0.5])
    np.testing.assert_allclose(tracejit.grad(lambda x, y: tnp.where(x > y, x, y),
                                             argnums=(0, 1))(1.0, 1.0), (0.0, 1.0))
    s = tracejit.grad(lambda x: tnp.sum(tnp.sort(x) * np.arange(3.0)))(np.array([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(s, [0, 1, 2])


def _scaled(a, x):
    """Multiply by a."""
    return a * x


def test_jit_of_partial_and_wrapped_names():
    f = tracejit.jit(functools.partial(_scaled, 3.0))
    np.testing.assert_allclose(f(X), 3 * X)
    assert f.__name__ == "_scaled"
    for t in (tracejit.jit(_scaled), tracejit.grad(_scaled), tracejit.value_and_grad(_scaled)):
        assert t.__name__ == "_scaled" and t.__doc__ == "Multiply by a."

    class Scale:
        def __call__(self, x):
            return 2 * x
    np.testing.assert_allclose(tracejit.jit(Scale())(X), 2 * X)


State = collections.namedtuple("State", "step moments")


def test_registered_namedtuple_wins_over_the_builtin_handling():
    calls = []

    def flatten(s):
        calls.append("flatten")
        return (s.moments,), s.step          # step is static (aux data)

    tracejit.register_pytree_node(State, flatten, lambda aux, ch: State(aux, ch[0]))
    leaves, tree = tracejit.tree_flatten(State(3, np.ones(2)))
    assert len(leaves) == 1 and calls
    back = tracejit.tree_unflatten(tree, leaves)
    assert isinstance(back, State) and back.step == 3
    out = tracejit.jit(lambda s: State(s.step + 1, s.moments * 2))(State(3, np.ones(2)))
    assert out.step == 4 and isinstance(out.step, int)
