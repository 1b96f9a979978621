"""jacfwd, jacrev, hessian, linearize and custom_jvp: against finite
differences (tracejit.testing) and NumPy closed forms, each mode against the
other, and against JAX where it is installed."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.testing import check_grads, numerical_grad

RNG = np.random.RandomState(1)


def _f(x, y):
    return {"a": tnp.sin(x) * y[0], "b": tnp.sum(x ** 2) * tnp.tanh(y)}


def _fd_jacobian(f, x, eps=1e-6):
    """Central differences, column by column: shape out + in."""
    x = np.asarray(x, np.float64)
    cols = []
    for i in range(x.size):
        d = np.zeros(x.size)
        d[i] = eps
        d = d.reshape(x.shape)
        cols.append((np.asarray(f(x + d)) - np.asarray(f(x - d))) / (2 * eps))
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + x.shape)


@pytest.mark.parametrize("jac", [tracejit.jacfwd, tracejit.jacrev])
def test_jacobian_against_finite_differences(jac):
    x, y = RNG.randn(3), RNG.randn(2)
    j = jac(_f, argnums=(0, 1))(x, y)
    assert j["a"][0].shape == (3, 3) and j["a"][1].shape == (3, 2)
    assert j["b"][0].shape == (2, 3) and j["b"][1].shape == (2, 2)
    np.testing.assert_allclose(j["a"][0], _fd_jacobian(lambda x: _f(x, y)["a"], x), atol=1e-8)
    np.testing.assert_allclose(j["b"][1], _fd_jacobian(lambda y: _f(x, y)["b"], y), atol=1e-8)
    np.testing.assert_allclose(jac(_f)(x, y)["b"], _fd_jacobian(lambda x: _f(x, y)["b"], x),
                               atol=1e-8)


def test_jacfwd_equals_jacrev_on_matrices_and_pytrees():
    def f(p, x):
        return tnp.tanh(x @ p["w"] + p["b"])
    p = {"w": RNG.randn(3, 2), "b": RNG.randn(2)}
    x = RNG.randn(4, 3)
    jf, jr = tracejit.jacfwd(f)(p, x), tracejit.jacrev(f)(p, x)
    assert jf["w"].shape == (4, 2, 3, 2) and jf["b"].shape == (4, 2, 2)
    for k in p:
        np.testing.assert_allclose(jf[k], jr[k], rtol=1e-12, atol=1e-12)
    # scalar in, scalar out
    assert np.isclose(tracejit.jacrev(tnp.sin)(0.3), np.cos(0.3))
    assert np.isclose(tracejit.jacfwd(tnp.sin)(0.3), np.cos(0.3))


def test_jacobians_with_aux_and_inside_jit():
    def f(x):
        return tnp.exp(x), {"n": tnp.sum(x)}
    x = RNG.randn(3)
    for jac in (tracejit.jacfwd, tracejit.jacrev):
        j, aux = jac(f, has_aux=True)(x)
        np.testing.assert_allclose(j, np.diag(np.exp(x)), rtol=1e-12)
        np.testing.assert_allclose(aux["n"], x.sum())
        np.testing.assert_allclose(tracejit.jit(jac(lambda x: f(x)[0]), backend="cpu")(x),
                                   np.diag(np.exp(x)), rtol=1e-12)


def test_hessian():
    a = RNG.randn(3, 3)
    f = lambda x: tnp.sum(tnp.tanh(x @ a) ** 2) + tnp.sum(x ** 3)
    x = RNG.randn(3)
    h = tracejit.hessian(f)(x)
    fd = _fd_jacobian(lambda x: np.asarray(tracejit.grad(f)(x)), x)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, h.T, atol=1e-12)
    np.testing.assert_allclose(tracejit.jit(tracejit.hessian(f))(x), h, rtol=1e-10)


def test_linearize():
    f = lambda x, y: tnp.sin(x) * y
    x, y = RNG.randn(3), RNG.randn(3)
    out, f_jvp = tracejit.linearize(f, x, y)
    np.testing.assert_allclose(out, np.sin(x) * y)
    tx, ty = RNG.randn(3), RNG.randn(3)
    np.testing.assert_allclose(f_jvp(tx, ty), np.cos(x) * y * tx + np.sin(x) * ty)
    np.testing.assert_allclose(tracejit.jit(f_jvp)(tx, ty), f_jvp(tx, ty))


def test_jacobian_of_integer_argument_raises():
    with pytest.raises(tracejit.NonDifferentiableError, match="float"):
        tracejit.jacfwd(lambda x: x * 2)(np.arange(3))


# --- custom_jvp ------------------------------------------------------------------------
@tracejit.custom_jvp
def logsumexp(x):
    return tnp.log(tnp.sum(tnp.exp(x)))


@logsumexp.defjvp
def _logsumexp_jvp(primals, tangents):
    x, = primals
    t, = tangents
    y = logsumexp(x)
    return y, tnp.sum(tnp.exp(x - y) * t)


@tracejit.custom_jvp
def doubled(x, k):
    """The identity in value, with a (deliberately) doubled derivative; k an int."""
    return x * 1.0


doubled.defjvp(lambda p, t: (doubled(*p), 2.0 * t[0]))


def test_custom_jvp_forward_and_reverse_use_the_rule():
    x = RNG.randn(4)
    sm = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(tracejit.grad(logsumexp)(x), sm)
    np.testing.assert_allclose(tracejit.jvp(logsumexp, (x,), (np.ones(4),))[1], 1.0)
    np.testing.assert_allclose(tracejit.jit(tracejit.grad(logsumexp), backend="cpu")(x), sm)
    np.testing.assert_allclose(tracejit.hessian(logsumexp)(x), np.diag(sm) - np.outer(sm, sm),
                               atol=1e-12)
    # the rule, not the function's own derivative, is used in both modes
    g = tracejit.grad(lambda x: tnp.sum(doubled(x, 3)))(np.ones(2))
    np.testing.assert_allclose(g, [2.0, 2.0])
    np.testing.assert_allclose(tracejit.jacfwd(doubled)(np.ones(2), 3), 2 * np.eye(2))
    np.testing.assert_allclose(tracejit.jacrev(doubled)(np.ones(2), 3), 2 * np.eye(2))


def test_custom_jvp_check_grads_to_order_2():
    check_grads(logsumexp, (RNG.randn(5),), order=2)
    check_grads(lambda x: tnp.sum(tnp.tanh(x) * logsumexp(x * x)), (RNG.randn(3),), order=2)


def test_custom_jvp_under_vmap():
    xs = RNG.randn(3, 4)
    g = tracejit.vmap(tracejit.grad(logsumexp))(xs)
    np.testing.assert_allclose(g, np.exp(xs) / np.exp(xs).sum(1, keepdims=True))
    g = tracejit.grad(lambda xs: tnp.sum(tracejit.vmap(doubled, in_axes=(0, None))(xs, 1)))(xs)
    np.testing.assert_allclose(g, 2 * np.ones_like(xs))


def test_custom_jvp_closing_over_a_differentiated_value_raises():
    def f(w, x):
        @tracejit.custom_jvp
        def scaled(x):
            return x * w
        scaled.defjvp(lambda p, t: (scaled(p[0]), t[0] * w))
        return tnp.sum(scaled(x))
    with pytest.raises(tracejit.NonDifferentiableError, match="closes over"):
        tracejit.grad(f)(np.ones(2), np.ones(2))
    # not differentiated with respect to w: fine
    np.testing.assert_allclose(tracejit.grad(f, argnums=1)(np.full(2, 3.0), np.ones(2)), 3.0)


def test_custom_jvp_rule_errors_are_clear():
    @tracejit.custom_jvp
    def f(x):
        return x
    f.defjvp(lambda p, t: p[0])
    with pytest.raises(tracejit.ShapeError, match="pair"):
        tracejit.grad(lambda x: tnp.sum(f(x)))(np.ones(2))
    with pytest.raises(TypeError, match="defjvp"):
        tracejit.custom_jvp(lambda x: x)(1.0)


def test_custom_jvp_is_plain_outside_differentiation():
    x = RNG.randn(3)
    np.testing.assert_allclose(logsumexp(x), np.log(np.exp(x).sum()))
    fn = tracejit.make_ir(logsumexp)(x)
    assert all(i.prim != "custom_jvp_call" for i in fn.body)
    grad_ir = tracejit.make_ir(tracejit.grad(logsumexp))(x)
    assert all(i.prim != "custom_jvp_call" for i in grad_ir.body)


# --- against JAX, where installed -------------------------------------------------------
def test_against_jax():
    jax = pytest.importorskip("jax")
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        _compare_with_jax(jax)
    finally:
        jax.config.update("jax_enable_x64", old)


def _compare_with_jax(jax):
    jnp = jax.numpy
    a = RNG.randn(3, 3)

    def make(np_):
        return lambda x: np_.sum(np_.tanh(x @ a) ** 2) * np_.sin(x)
    x = RNG.randn(3)
    np.testing.assert_allclose(tracejit.jacfwd(make(tnp))(x), jax.jacfwd(make(jnp))(x),
                               rtol=1e-10)
    np.testing.assert_allclose(tracejit.jacrev(make(tnp))(x), jax.jacrev(make(jnp))(x),
                               rtol=1e-10)
    h = lambda np_: lambda x: np_.sum(np_.tanh(x @ a) ** 3)
    np.testing.assert_allclose(tracejit.hessian(h(tnp))(x), jax.hessian(h(jnp))(x), rtol=1e-10)
    per_ex = tracejit.vmap(tracejit.grad(lambda w, x: tnp.sum(tnp.tanh(x @ w))),
                           in_axes=(None, 0))
    per_ex_j = jax.vmap(jax.grad(lambda w, x: jnp.sum(jnp.tanh(x @ w))), in_axes=(None, 0))
    xs = RNG.randn(5, 3)
    np.testing.assert_allclose(per_ex(a, xs), per_ex_j(a, xs), rtol=1e-10)


def test_numerical_grad_agrees_with_jacrev_rows():
    f = lambda x: tnp.sum(tnp.exp(x) * x)
    x = RNG.randn(4)
    np.testing.assert_allclose(tracejit.jacrev(f)(x), numerical_grad(f, x), rtol=1e-6)


def test_linearize_is_partially_evaluated():
    # the linear map holds cos(x) as a residual: no sin or cos left to run
    calls = []

    def f(x, y):
        calls.append(1)
        return {"a": tnp.sin(x) * y, "b": tnp.exp(y).sum()}
    x, y = RNG.randn(4), RNG.randn(4)
    out, f_jvp = tracejit.linearize(f, x, y)
    assert len(calls) == 1
    fn = tracejit.make_ir(f_jvp)(x, y)
    prims = {i.prim for i in fn.body}
    assert not prims & {"sin", "cos", "exp"}, prims
    tangents = [(RNG.randn(4), RNG.randn(4)) for _ in range(3)]
    got = [f_jvp(tx, ty) for tx, ty in tangents]
    jitted = tracejit.jit(f_jvp)
    got_jit = [jitted(tx, ty) for tx, ty in tangents]
    assert len(calls) == 1   # f_jvp never re-runs f
    for (tx, ty), g, gj in zip(tangents, got, got_jit):
        want = tracejit.jvp(f, (x, y), (tx, ty))[1]
        for k in want:
            np.testing.assert_allclose(g[k], want[k], rtol=1e-12)
            np.testing.assert_allclose(gj[k], want[k], rtol=1e-12)


def test_linearize_pytrees_integers_and_errors():
    def f(p, n):
        return tnp.tanh(p["w"] * n) + p["b"]
    p = {"w": RNG.randn(3).astype(np.float32), "b": np.float32(0.5)}
    n = np.arange(3)
    out, f_jvp = tracejit.linearize(f, p, n)
    np.testing.assert_allclose(out, np.tanh(p["w"] * n) + 0.5, rtol=1e-6)
    t = {"w": np.ones(3, np.float32), "b": np.float32(2.0)}
    np.testing.assert_allclose(f_jvp(t, n), n * (1 - np.tanh(p["w"] * n) ** 2) + 2, rtol=1e-5)
    with pytest.raises(tracejit.ShapeError, match="tangent 0 has shape"):
        f_jvp({"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)}, n)
    with pytest.raises(tracejit.ShapeError, match="structure"):
        f_jvp(t)


def test_linearize_under_jit():
    def g(x):
        y, f_jvp = tracejit.linearize(tnp.sin, x)
        return y, f_jvp(tnp.ones_like(x))
    x = RNG.randn(5)
    y, t = tracejit.jit(g)(x)
    np.testing.assert_allclose(y, np.sin(x))
    np.testing.assert_allclose(t, np.cos(x))
