"""The user API of differentiation: vjp, jvp, grad, value_and_grad (pytrees,
argnums, has_aux, errors), higher-order derivatives, the zero-cotangent
NaN policy, stop_gradient and custom_vjp, eagerly and under jit."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit import NonDifferentiableError, grad, jit, jvp, value_and_grad, vjp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ad_check import check_grads


def _ref(f):
    return jit(f, backend="reference")


def _prims(fn):
    """All primitive names in a Function, sub-Functions included."""
    names = set()
    for ins in fn.body:
        names.add(ins.prim)
        for sub in ins.subfunctions().values():
            names |= _prims(sub)
    return names


# --- grad / value_and_grad ------------------------------------------------------------
def _loss(params, x, y):
    h = tnp.tanh(x @ params["w"] + params["b"])
    return tnp.mean((h - y) ** 2)


def _data():
    rng = np.random.RandomState(0)
    params = {"w": rng.randn(3, 2), "b": rng.randn(2)}
    return params, rng.randn(5, 3), rng.randn(5, 2)


def test_grad_of_dict_params_matches_finite_differences():
    params, x, y = _data()
    g = grad(_loss)(params, x, y)
    assert set(g) == {"w", "b"} and g["w"].shape == (3, 2) and g["b"].shape == (2,)
    check_grads(lambda w, b: _loss({"w": w, "b": b}, x, y), [params["w"], params["b"]])
    # same numbers eagerly and compiled by the reference backend
    gj = _ref(grad(_loss))(params, x, y)
    for k in g:
        np.testing.assert_allclose(gj[k], g[k], rtol=1e-12)


def test_value_and_grad_argnums_and_aux():
    params, x, y = _data()

    def loss_aux(params, x, y):
        loss = _loss(params, x, y)
        return loss, {"loss_times_2": loss * 2}
    (value, aux), (gp, gx) = value_and_grad(loss_aux, argnums=(0, 1), has_aux=True)(params, x, y)
    np.testing.assert_allclose(value, _loss(params, x, y))
    np.testing.assert_allclose(aux["loss_times_2"], 2 * value)
    assert gx.shape == x.shape and set(gp) == {"w", "b"}
    g, aux2 = grad(loss_aux, has_aux=True)(params, x, y)
    np.testing.assert_allclose(g["w"], gp["w"])
    np.testing.assert_allclose(aux2["loss_times_2"], aux["loss_times_2"])
    # under jit too
    (v_j, _), (gp_j, gx_j) = _ref(value_and_grad(loss_aux, argnums=(0, 1), has_aux=True))(
        params, x, y)
    np.testing.assert_allclose(gx_j, gx, rtol=1e-12)
    np.testing.assert_allclose(v_j, value, rtol=1e-12)


def test_grad_negative_argnums_and_kwargs():
    f = lambda a, b, scale=1.0: tnp.sum(a * b) * scale
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    np.testing.assert_allclose(grad(f, argnums=-1)(a, b, scale=2.0), 2 * a)


def test_grad_errors():
    with pytest.raises(NonDifferentiableError, match=r"argument 1 at 'n'.*int64"):
        grad(lambda x, d: x * d["n"], argnums=(0, 1))(1.0, {"n": np.array(3)})
    with pytest.raises(NonDifferentiableError, match="argument 0"):
        grad(lambda i: i * 2.0)(3)
    with pytest.raises(tracejit.ShapeError, match="scalar"):
        grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(tracejit.DTypeError, match="float"):
        grad(lambda x: (x > 0).astype("int64"))(np.array(1.0))
    with pytest.raises(ValueError, match="argnums"):
        grad(lambda x: x, argnums=3)(1.0)


def test_integer_arguments_are_held_fixed():
    """Non-differentiated integer arguments (a step counter, indices) are fine."""
    f = lambda x, idx: tnp.sum(x[idx] ** 2)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(grad(f)(x, np.array([2, 2, 0])), [2.0, 0.0, 12.0])
    out, vjp_fn = vjp(f, x, np.array([1]))
    gx, gi = vjp_fn(np.array(1.0))
    np.testing.assert_allclose(gx, [0.0, 4.0, 0.0])
    assert gi.dtype == np.int64 and not gi.any()


def test_grad_of_unused_input_is_zero_and_constant_output():
    g = grad(lambda x, y: tnp.sum(y * 3.0), argnums=(0, 1))(np.ones(2), np.ones(3))
    np.testing.assert_array_equal(g[0], np.zeros(2))
    np.testing.assert_array_equal(g[1], np.full(3, 3.0))
    assert grad(lambda x: 2.0)(1.0) == 0.0


def test_python_scalar_and_float32_inputs():
    assert grad(lambda x: x * x * 3.0)(2.0) == 12.0
    g = grad(lambda x: tnp.sum(tnp.sin(x)))(np.ones(3, np.float32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.cos(1.0), rtol=1e-6)


# --- vjp / jvp ------------------------------------------------------------------------
def test_vjp_pytree_outputs_and_errors():
    x = np.array([0.5, -1.0])
    out, vjp_fn = vjp(lambda x: {"a": tnp.sin(x), "b": (x * 2, tnp.sum(x))}, x)
    (g,) = vjp_fn({"a": np.ones(2), "b": (np.ones(2), np.array(1.0))})
    np.testing.assert_allclose(g, np.cos(x) + 2 + 1)
    with pytest.raises(tracejit.ShapeError, match="structure"):
        vjp_fn(np.ones(2))
    with pytest.raises(tracejit.ShapeError, match="shape"):
        vjp_fn({"a": np.ones(3), "b": (np.ones(2), np.array(1.0))})


def test_jvp_and_vjp_agree_on_a_network():
    params, x, y = _data()
    f = lambda w, b: tnp.tanh(x @ w + b)
    check_grads(f, [params["w"], params["b"]], seed=4)
    with pytest.raises(tracejit.ShapeError, match="structure"):
        jvp(f, (params["w"], params["b"]), (params["w"],))


# --- higher order ---------------------------------------------------------------------
@pytest.mark.parametrize("f, d2", [
    (tnp.sin, lambda x: -np.sin(x)),
    (lambda x: x ** 3, lambda x: 6 * x),
    (tnp.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    (tracejit.lax.logistic,
     lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    (lambda x: tnp.exp(2 * x) / x, lambda x: np.exp(2 * x) * (4 / x - 4 / x ** 2 + 2 / x ** 3)),
])
@settings(max_examples=10, deadline=None)
@given(x=st.floats(0.3, 2.0))
def test_second_derivatives(f, d2, x):
    got = grad(grad(f))(x)
    np.testing.assert_allclose(got, d2(x), rtol=1e-9)
    np.testing.assert_allclose(_ref(grad(grad(f)))(x), d2(x), rtol=1e-9)


def test_third_derivative():
    np.testing.assert_allclose(grad(grad(grad(tnp.sin)))(0.7), -np.cos(0.7), rtol=1e-12)


def test_hessian_vector_products():
    rng = np.random.RandomState(5)
    A = rng.randn(4, 4)
    A = A + A.T
    x, v = rng.randn(4), rng.randn(4)

    def f(x):   # Hessian: A + diag(6 x) + outer(cos-term)
        return 0.5 * x @ A @ x + tnp.sum(x ** 3) + tnp.sin(tnp.sum(x))
    hess = A + np.diag(6 * x) - np.sin(np.sum(x)) * np.ones((4, 4))
    # forward over reverse
    _, hvp = jvp(grad(f), (x,), (v,))
    np.testing.assert_allclose(hvp, hess @ v, rtol=1e-10)
    # reverse over reverse
    hvp2 = grad(lambda x: tnp.sum(grad(f)(x) * v))(x)
    np.testing.assert_allclose(hvp2, hess @ v, rtol=1e-10)
    # reverse over a vjp, compiled
    hvp3 = _ref(grad(lambda x: tnp.sum(vjp(f, x)[1](np.array(1.0))[0] * v)))(x)
    np.testing.assert_allclose(hvp3, hess @ v, rtol=1e-10)


def test_ir_of_grad_verifies_and_grows_once():
    f = lambda x: tnp.sum(tnp.tanh(x) * x)
    x = np.ones(3)
    fwd = tracejit.make_ir(f)(x)
    g = tracejit.make_ir(grad(f))(x)
    gg = tracejit.make_ir(grad(lambda x: tnp.sum(grad(f)(x))))(x)
    for fn in (fwd, g, gg):
        tracejit.ir.verify(fn)
    assert fwd.num_instructions() < g.num_instructions() < gg.num_instructions()


# --- the zero-cotangent policy ---------------------------------------------------------
def test_where_guarded_sqrt_and_log_have_no_nan():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 4.0])
    g = grad(lambda x: tnp.sum(tnp.where(x > 0, tnp.sqrt(x), 0.0)))(x)
    np.testing.assert_array_equal(g[:3], 0.0)
    np.testing.assert_allclose(g[3:], 0.5 / np.sqrt(x[3:]))
    g = grad(lambda x: tnp.sum(tnp.where(x > 0, tnp.log(x), x)))(x)
    np.testing.assert_allclose(g, np.where(x > 0, 1 / np.where(x > 0, x, 1), 1.0))
    for f in (lambda x: tnp.where(x > 0, tnp.sqrt(x), 0.0),
              lambda x: tnp.where(x > 0, tnp.log(x), x)):
        for at in (0.0, -1.0):
            assert np.isfinite(grad(f)(at))
            assert np.isfinite(_ref(grad(f))(at))
            assert np.isfinite(jvp(f, (at,), (1.0,))[1])


def test_policy_through_chains_and_second_order():
    x = np.array([-1.0, 0.0, 2.0])
    cases = [
        lambda x: tnp.where(x > 0, x * tnp.log(x), 0.0),           # 0 * -inf in mul
        lambda x: tnp.where(x > 0, tnp.sin(tnp.log(x)), 0.0),       # NaN value untaken
        lambda x: tnp.where(x > 0, x ** 0.5 + 1 / x, 1.0),           # pow and div
        lambda x: tnp.where(x < 1, tnp.exp(1000 * x), 0.0),          # inf untaken
        lambda x: tnp.where(x > 0, tnp.log1p(x) + tracejit.lax.rsqrt(x), 0.0),
    ]
    for f in cases:
        g = grad(lambda x: tnp.sum(f(x)))(x)
        assert np.isfinite(g).all(), g
        h = grad(lambda x: tnp.sum(grad(lambda y: tnp.sum(f(y)))(x)))(x)
        assert np.isfinite(h[[0, 2]]).all(), h


def test_genuine_infinite_derivative_is_not_hidden():
    assert np.isinf(grad(tnp.sqrt)(0.0))


# --- stop_gradient ----------------------------------------------------------------------
def test_stop_gradient():
    f = lambda x: x * tracejit.stop_gradient(x * 3.0)
    assert grad(f)(2.0) == 6.0
    assert _ref(grad(f))(2.0) == 6.0
    assert jvp(f, (2.0,), (1.0,))[1] == 6.0
    tree = tracejit.stop_gradient({"a": np.ones(2), "n": 3})   # identity outside
    assert tree["n"] == 3
    g = grad(lambda p: tnp.sum(tracejit.stop_gradient(p)["a"] * p["a"]))({"a": np.arange(2.0)})
    np.testing.assert_array_equal(g["a"], [0.0, 1.0])


def test_markers_never_reach_compiled_ir():
    @tracejit.custom_vjp
    def clip_grad(x):
        return x

    clip_grad.defvjp(lambda x: (x, None), lambda _, g: (tnp.clip(g, -1.0, 1.0),))

    def f(x):
        return tnp.sum(clip_grad(x) * tracejit.stop_gradient(x) * 5.0)
    x = np.array([0.1, 2.0])
    np.testing.assert_allclose(grad(f)(x), [0.5, 1.0])
    for fn in (tracejit.make_ir(grad(f))(x), tracejit.make_ir(f)(x)):
        assert not {"stop_gradient", "custom_vjp_call"} & _prims(fn)


# --- custom_vjp -------------------------------------------------------------------------
@tracejit.custom_vjp
def logsumexp(x):
    m = tnp.max(x)
    return m + tnp.log(tnp.sum(tnp.exp(x - m)))


def _lse_fwd(x):
    out = logsumexp(x)
    return out, (x, out)


def _lse_bwd(res, g):
    x, out = res
    return (g * tnp.exp(x - out),)


logsumexp.defvjp(_lse_fwd, _lse_bwd)


def test_custom_vjp_logsumexp():
    x = np.array([1000.0, 1000.0, -5.0])   # exp overflows without the max shift
    g = grad(logsumexp)(x)
    e = np.exp(x - x.max())
    np.testing.assert_allclose(g, e / e.sum())
    np.testing.assert_allclose(_ref(grad(logsumexp))(x), g)
    np.testing.assert_allclose(logsumexp(x), 1000 + np.log(2 + np.exp(-1005.0)))
    check_grads(logsumexp, [np.array([0.3, -1.2, 2.0])])   # jvp differentiates fun
    # second order differentiates bwd: Hessian of lse is diag(p) - p p^T
    y = np.array([0.5, -0.2, 1.0])
    p = np.exp(y - np.log(np.sum(np.exp(y))))
    v = np.array([1.0, 2.0, -1.0])
    hv = grad(lambda y: tnp.sum(grad(logsumexp)(y) * v))(y)
    np.testing.assert_allclose(hv, (np.diag(p) - np.outer(p, p)) @ v, rtol=1e-10)


def test_custom_vjp_gradient_clipping_pytrees_and_none():
    @tracejit.custom_vjp
    def clip_gradient(lo, hi, x):
        return x

    def fwd(lo, hi, x):
        return x, (lo, hi)

    def bwd(res, g):
        lo, hi = res
        return None, None, {k: tnp.clip(v, lo, hi) for k, v in g.items()}
    clip_gradient.defvjp(fwd, bwd)

    def f(p):
        q = clip_gradient(-1.0, 1.0, p)
        return tnp.sum(q["a"] * 10.0) + tnp.sum(q["b"] ** 2)
    p = {"a": np.ones(2), "b": np.array([0.25, 3.0])}
    g = grad(f)(p)
    np.testing.assert_allclose(g["a"], [1.0, 1.0])
    np.testing.assert_allclose(g["b"], [0.5, 1.0])
    gj = _ref(grad(f))(p)
    np.testing.assert_allclose(gj["b"], g["b"])
    assert f(p) == clip_gradient.fun(-1.0, 1.0, p)["a"].sum() * 10 + 0.0625 + 9


def test_custom_vjp_errors():
    @tracejit.custom_vjp
    def f(x):
        return x * 2

    with pytest.raises(TypeError, match="defvjp"):
        f(1.0)
    f.defvjp(lambda x: (x * 2, None), lambda r, g: g * 2)   # not a tuple
    with pytest.raises(tracejit.ShapeError, match="one cotangent per argument"):
        grad(f)(1.0)

    def outer(w):
        @tracejit.custom_vjp
        def k(x):
            return x * w
        k.defvjp(lambda x: (x * w, None), lambda r, g: (g * w,))
        return k(2.0)
    # closing over a differentiated value is refused instead of silently wrong
    with pytest.raises(NonDifferentiableError, match="closes over"):
        grad(outer)(3.0)
    assert outer(3.0) == 6.0


def test_docs_examples_run():
    """Every ```python block of docs/autodiff.md runs (they assert their claims)."""
    import pathlib
    import re
    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "autodiff.md"
    blocks = re.findall(r"^```python\n(.*?)^```$", doc.read_text(), flags=re.M | re.S)
    assert len(blocks) >= 3
    env = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), env)


def test_higher_order_derivatives_honour_stop_gradient_in_custom_rules():
    """The second derivative differentiates the custom bwd as written: its
    stop_gradient holds (d/dx 3*sg(x)*x = 3*x0, not 6*x), and a custom_vjp
    function called inside it keeps its own rule."""
    @tracejit.custom_vjp
    def cube(x):
        return x ** 3

    cube.defvjp(lambda x: (x ** 3, x),
                lambda x, ct: (3 * tracejit.stop_gradient(x) * x * ct,))

    @tracejit.custom_vjp
    def double(x):
        return 2 * x

    double.defvjp(lambda x: (2 * x, None), lambda _, ct: (5 * ct,))   # a deliberately wrong rule

    @tracejit.custom_vjp
    def square(x):
        return x * x

    square.defvjp(lambda x: (x * x, x), lambda x, ct: (double(x) * ct,))

    g = tracejit.grad(cube)
    assert float(g(2.0)) == 12.0
    assert float(tracejit.grad(g)(2.0)) == 6.0
    assert float(tracejit.jit(tracejit.grad(g))(2.0)) == 6.0
    assert float(tracejit.grad(tracejit.grad(square))(3.0)) == 5.0   # double's own rule
