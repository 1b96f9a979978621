"""Buffer donation on the cpu backend (``jit(..., donate_argnums=...)``):
donated buffers are reused for results, and no result is ever written over
a value that is still to be read or returned. Each case is checked against
the reference interpreter and against the same jit without donation."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba is not installed")

RNG = np.random.default_rng(0)


def normal(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def copy(tree):
    return tracejit.tree_map(np.copy, tree)


def run_three_ways(fun, donate, make_args, calls=3):
    """Run ``fun`` ``calls`` times, feeding the first len(donate) results back
    as the donated arguments, with and without donation and on the reference
    backend; every result of every call must agree."""
    ways = {"donated": tracejit.jit(fun, backend="cpu", donate_argnums=donate),
            "plain": tracejit.jit(fun, backend="cpu"),
            "reference": tracejit.jit(fun, backend="reference")}
    args = make_args()
    state = {name: copy(args) for name in ways}
    for call in range(calls):
        outs = {}
        for name, f in ways.items():
            outs[name] = f(*state[name])
            fed = list(state[name])
            for k, i in enumerate(donate):
                fed[i] = outs[name][k]
            state[name] = tuple(fed)
        want = tracejit.tree_leaves(outs["reference"])
        for name in ("donated", "plain"):
            got = tracejit.tree_leaves(outs[name])
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6,
                                           err_msg=f"{name}, call {call}")


def loss(params, x):
    h = tnp.tanh(x @ params["W"] + params["c"])
    return tnp.sum(h * h)


def adam_step(b, m, v, x):
    value, g = tracejit.value_and_grad(loss)(b, x)
    m = {k: 0.9 * m[k] + 0.1 * g[k] for k in b}
    v = {k: 0.999 * v[k] + 0.001 * g[k] * g[k] for k in b}
    b = {k: b[k] - 0.01 * m[k] / (tnp.sqrt(v[k]) + 1e-8) for k in b}
    return b, m, v, g, value


def adam_args():
    b = {"W": normal(6, 4), "c": normal(4)}
    zeros = {k: np.zeros_like(a) for k, a in b.items()}
    return b, zeros, copy(zeros), normal(3, 6)


def test_adam_step_returning_the_gradient():
    """The gradient is a result too: it was written over the first moment's
    donated buffer, which the new first moment still had to read."""
    run_three_ways(adam_step, (0, 1, 2), adam_args, calls=4)


def test_donated_buffers_are_reused():
    step = tracejit.jit(adam_step, backend="cpu", donate_argnums=(0, 1, 2))
    b, m, v, x = adam_args()
    step(b, m, v, x)   # compile; these copies are reused below
    b, m, v, x = adam_args()
    donated = {id(a) for a in tracejit.tree_leaves((b, m, v))}
    outs = step(b, m, v, x)
    reused = [id(a) in donated for a in tracejit.tree_leaves(outs[:3])]
    assert sum(reused) >= 4, reused


def test_results_of_one_shape_in_other_orders():
    def f(a, b, c):
        return c * 2.0, a + b, tnp.exp(b), a - c
    run_three_ways(f, (0, 1, 2), lambda: (normal(5, 3), normal(5, 3), normal(5, 3)))

    def g(a, b):
        return b, a, a * b   # swapped, then a product
    run_three_ways(g, (0, 1), lambda: (normal(4), normal(4)))


def test_a_result_that_is_a_donated_input_unchanged():
    def f(a, b):
        return a, b + a, tnp.sum(a)
    run_three_ways(f, (0, 1), lambda: (normal(6), normal(6)))

    def g(a, b):
        return b * 3.0, a, a   # the same input twice among the results
    run_three_ways(g, (0, 1), lambda: (normal(2, 3), normal(2, 3)))


@pytest.mark.parametrize("donate", [(0,), (0, 1)])
def test_the_same_array_passed_twice(donate):
    def f(a, b):
        return a * 2.0, a + b, b - 1.0

    step = tracejit.jit(f, backend="cpu", donate_argnums=donate)
    x = normal(7, 3)
    kept = x.copy()
    want = [kept * 2.0, kept + kept, kept - 1.0]
    got = step(x, x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    # a view of a donated argument passed as the other one
    y = normal(4, 6)
    kept = y.copy()
    got = tracejit.jit(lambda a, b: (a + 1.0, b.sum()), backend="cpu",
                       donate_argnums=0)(y, y[1:3].reshape(2, 6))
    np.testing.assert_allclose(got[0], kept + 1.0, rtol=1e-6)
    np.testing.assert_allclose(got[1], kept[1:3].sum(), rtol=1e-5)


def test_results_that_are_views_of_donated_buffers():
    def f(a, b):
        return a.reshape(12), (b * 2.0).reshape(3, 4), a + b, b.reshape(2, 6)
    run_three_ways(f, (0, 1), lambda: (normal(4, 3), normal(4, 3)), calls=1)

    def g(a, b):
        return b.reshape(4, 3) + 1.0, (a * 2.0).reshape(12)
    run_three_ways(g, (0, 1), lambda: (normal(4, 3), normal(12)))


def check_inputs_untouched(fun, *args):
    """``fun`` on the cpu backend equals the reference and leaves its
    (not donated) arguments as they were."""
    kept = copy(args)
    got = tracejit.jit(fun, backend="cpu")(*args)
    for a, k in zip(args, kept):
        np.testing.assert_array_equal(a, k)
    want = tracejit.jit(fun, backend="reference")(*kept)
    for g, w in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("p", [True, False])
def test_a_branch_that_returns_its_operand(p):
    """cond's identity branch hands back its operand: the result written
    in place over the cond's result must not be written over the operand."""
    def f(p, a):
        y = tracejit.cond(p, lambda t: t, lambda t: -t, a)
        return y * 2.0

    def g(p, a):
        y = tracejit.cond(p, lambda t: t.reshape(2, 4), lambda t: -t.reshape(2, 4), a)
        return y * 2.0
    check_inputs_untouched(f, np.bool_(p), normal(8))
    check_inputs_untouched(g, np.bool_(p), normal(8))


def test_a_loop_body_that_returns_a_constant_or_an_x_as_its_carry():
    """A body's carries are donated to its next iteration: a carry that is
    a value the body closes over, or a slice of xs, must be a copy."""
    def const_carry(a, xs):
        return tracejit.scan(lambda c, x: (a, tnp.exp(c) * x), a * 1.0, xs)

    def x_carry(a, xs):
        return tracejit.scan(lambda c, x: (x, c + 1.0), a, xs)
    check_inputs_untouched(const_carry, normal(4), normal(3, 4))
    check_inputs_untouched(x_carry, normal(4), normal(3, 4))
