"""Structured control flow: cond, while_loop, fori_loop and scan agree with
the unrolled Python loop (eagerly and compiled by the reference backend),
stay one instruction however long the loop, and differentiate like the
unrolled version (reverse mode through scan, cond and static fori_loop;
forward mode through all of them)."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit import cond, fori_loop, grad, jit, jvp, scan, while_loop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ad_check import check_grads

RNG = np.random.RandomState(0)
W = RNG.randn(4, 4) * 0.5
U = RNG.randn(3, 4) * 0.5


def _ref(f):
    return jit(f, backend="reference")


def _both(f, *args):
    """f eagerly and compiled by the reference backend (which must agree)."""
    eager = f(*args)
    compiled = _ref(f)(*args)
    for a, b in zip(tracejit.tree_leaves(eager), tracejit.tree_leaves(compiled)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    return eager


def _cell(h, x):
    return tnp.tanh(h @ W + x @ U)


def rnn_scan(h0, xs):
    def step(h, x):
        h = _cell(h, x)
        return h, tnp.sum(h * h)
    h, ys = scan(step, h0, xs)
    return tnp.sum(h) + tnp.sum(ys * np.arange(1.0, xs.shape[0] + 1))


def rnn_unrolled(h0, xs):
    h, total = h0, 0.0
    for i in range(xs.shape[0]):
        h = _cell(h, xs[i])
        total = total + tnp.sum(h * h) * (i + 1.0)
    return tnp.sum(h) + total


# --- scan --------------------------------------------------------------------------------
@settings(max_examples=8, deadline=None)
@given(length=st.integers(0, 6), seed=st.integers(0, 1000))
def test_scan_rnn_values_and_gradients(length, seed):
    rng = np.random.RandomState(seed)
    h0, xs = rng.randn(4), rng.randn(length, 3)
    np.testing.assert_allclose(_both(rnn_scan, h0, xs), rnn_unrolled(h0, xs), rtol=1e-12)
    g_scan = _both(grad(rnn_scan, argnums=(0, 1)), h0, xs)
    g_unrolled = grad(rnn_unrolled, argnums=(0, 1))(h0, xs)
    for a, b in zip(g_scan, g_unrolled):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    check_grads(rnn_scan, [h0, xs], seed)


def test_scan_gradient_through_closed_over_weights():
    xs = RNG.randn(5, 4)

    def f(w, xs):
        def step(c, x):
            c = tnp.sin(c * w + x)
            return c, c[0]
        c, ys = scan(step, np.zeros(4), xs)
        return tnp.sum(c) + tnp.sum(ys ** 2)

    def unrolled(w, xs):
        c, tot = np.zeros(4), 0.0
        for x in xs:
            c = tnp.sin(c * w + x)
            tot = tot + c[0] ** 2
        return tnp.sum(c) + tot
    w = RNG.randn(4)
    np.testing.assert_allclose(grad(f)(w, xs), grad(unrolled)(w, xs), rtol=1e-10)
    check_grads(f, [w, xs])


def test_scan_ir_size_does_not_depend_on_length():
    h0 = np.zeros(4)
    sizes = set()
    for n in (10, 100):
        xs = np.ones((n, 3))
        for f in (rnn_scan, grad(rnn_scan, argnums=(0, 1))):
            fn = tracejit.make_ir(f)(h0, xs)
            tracejit.ir.verify(fn)
            sizes.add((f is rnn_scan, fn.num_instructions()))
    assert len(sizes) == 2, sizes
    # and the unrolled version does grow
    assert tracejit.make_ir(rnn_unrolled)(h0, np.ones((10, 3))).num_instructions() < \
        tracejit.make_ir(rnn_unrolled)(h0, np.ones((20, 3))).num_instructions()


def test_scan_reverse_pytrees_none_ys_and_no_xs():
    xs = {"a": np.arange(4.0), "b": np.arange(8.0).reshape(4, 2)}

    def step(carry, x):
        s, n = carry
        s = s * 0.5 + x["a"] + tnp.sum(x["b"])
        return (s, n + 1), {"s": s, "pair": (x["b"] * s, None)}
    for reverse in (False, True):
        (s, n), ys = _both(lambda xs: scan(step, (0.0, 0), xs, reverse=reverse), xs)
        order = range(3, -1, -1) if reverse else range(4)
        ref_s, ref_ys = 0.0, {}
        for i in order:
            ref_s = ref_s * 0.5 + xs["a"][i] + xs["b"][i].sum()
            ref_ys[i] = ref_s
        assert n == 4 and np.isclose(s, ref_s)
        np.testing.assert_allclose(ys["s"], [ref_ys[i] for i in range(4)])
        np.testing.assert_allclose(ys["pair"][0], xs["b"] * ys["s"][:, None])
        assert ys["pair"][1] is None
    c, ys = scan(lambda c, _: (c * 2.0, None), 1.0, None, length=5)
    assert c == 32.0 and ys is None
    g = grad(lambda a: scan(lambda c, x: (c * a + x, None), 1.0, np.ones(3), reverse=True)[0])(2.0)
    assert np.isclose(g, 3 * 4 + 2 * 2 + 1)   # d/da (a^3 + a^2 + a + 1)


def test_scan_weak_carry_follows_body_dtype():
    xs = np.ones(3, np.float32)
    c, ys = _both(lambda xs: scan(lambda c, x: (c + x, c), 0.0, xs), xs)
    assert c.dtype == np.float32 and ys.dtype == np.float32
    assert c == 3.0


def test_scan_errors():
    with pytest.raises(tracejit.ShapeError, match="carry"):
        scan(lambda c, x: ((c, c), None), 0.0, np.ones(3))
    with pytest.raises(tracejit.DTypeError, match="dtype"):
        scan(lambda c, x: (c.astype("float32"), None), np.zeros(2), np.ones(3))
    with pytest.raises(tracejit.ShapeError, match="length"):
        scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(tracejit.ShapeError, match="disagree"):
        scan(lambda c, x: (c, None), 0.0, np.ones(3), length=4)
    with pytest.raises(tracejit.ShapeError, match="pair"):
        scan(lambda c, x: c, 0.0, np.ones(3))


def test_scan_second_order_and_jvp():
    xs = RNG.randn(4)

    def f(a):
        return scan(lambda c, x: (tnp.sin(c * a) + x, c * c), 0.3, xs)[1].sum()

    def unrolled(a):
        c, tot = 0.3, 0.0
        for x in xs:
            tot = tot + c * c
            c = tnp.sin(c * a) + x
        return tot
    a = 1.3
    np.testing.assert_allclose(grad(grad(f))(a), grad(grad(unrolled))(a), rtol=1e-9)
    np.testing.assert_allclose(jvp(f, (a,), (1.0,))[1], grad(unrolled)(a), rtol=1e-10)
    np.testing.assert_allclose(_ref(grad(grad(f)))(a), grad(grad(unrolled))(a), rtol=1e-9)


def test_nested_scan_with_cond_gradient():
    xs = RNG.randn(3, 2)

    def f(w):
        def outer(c, row):
            def inner(d, x):
                d = cond(x > 0, lambda d: d * w + x, lambda d: d - w * x, d)
                return d, None
            d, _ = scan(inner, c, row)
            return d, d
        c, ys = scan(outer, 1.0, xs)
        return c + tnp.sum(ys)

    def unrolled(w):
        c, tot = 1.0, 0.0
        for row in xs:
            for x in row:
                c = c * w + x if x > 0 else c - w * x
            tot = tot + c
        return c + tot
    w = 0.7
    np.testing.assert_allclose(f(w), unrolled(w), rtol=1e-12)
    np.testing.assert_allclose(grad(f)(w), grad(unrolled)(w), rtol=1e-10)
    check_grads(f, [w])


def test_markers_inside_scan_body():
    @tracejit.custom_vjp
    def scale_grad(x):
        return x

    scale_grad.defvjp(lambda x: (x, None), lambda _, g: (g * 10.0,))

    def f(a):
        def step(c, x):
            return c + scale_grad(x * a) + tracejit.stop_gradient(x * a), None
        return scan(step, 0.0, np.arange(3.0))[0]
    assert f(2.0) == 12.0
    assert grad(f)(2.0) == 30.0    # only the custom path, scaled by 10
    assert _ref(grad(f))(2.0) == 30.0
    assert jvp(f, (2.0,), (1.0,))[1] == 3.0   # forward mode differentiates the primal


# --- cond -----------------------------------------------------------------------------------
def test_cond_values_gradients_and_closures():
    w = np.array([1.0, -2.0])

    def f(x, p):
        return cond(p > 0, lambda x: tnp.sin(x) * w, lambda x: x ** 2, x)
    x = np.array([0.4, 1.1])
    for p in (1.0, -1.0):
        want = np.sin(x) * w if p > 0 else x ** 2
        np.testing.assert_allclose(_both(f, x, p), want)
        g = _both(grad(lambda x: tnp.sum(f(x, p))), x)
        np.testing.assert_allclose(g, np.cos(x) * w if p > 0 else 2 * x)
        check_grads(lambda x: f(x, p), [x])
    # gradient w.r.t. a value only one branch closes over
    gw = grad(lambda w: tnp.sum(cond(True, lambda x: x * w, lambda x: x, x)))(w)
    np.testing.assert_allclose(gw, x)
    gw = grad(lambda w: tnp.sum(cond(False, lambda x: x * w, lambda x: x, x)))(w)
    np.testing.assert_allclose(gw, 0.0)


def test_cond_pytrees_weak_results_and_errors():
    out = _both(lambda x: cond(x[0] > 0, lambda a: {"s": a * 2, "c": 1.0},
                               lambda a: {"s": -a, "c": a[1]}, x), np.array([1.0, 5.0]))
    np.testing.assert_allclose(out["s"], [2.0, 10.0])
    assert out["c"] == 1.0
    assert cond(0, lambda: 1.0, lambda: 2.0) == 2.0   # int predicate: nonzero is true
    with pytest.raises(tracejit.ShapeError, match="different"):
        cond(True, lambda x: x, lambda x: (x, x), 1.0)
    with pytest.raises(tracejit.ShapeError, match="shape"):
        cond(True, lambda x: x, lambda x: x[:1], np.ones(2))
    with pytest.raises(tracejit.ShapeError, match="scalar"):
        cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)


def test_cond_guarded_branch_has_no_nan_gradient():
    f = lambda x: cond(x > 0, lambda x: tnp.sqrt(x), lambda x: x * 0.0, x)
    assert grad(f)(-1.0) == 0.0
    assert np.isclose(grad(f)(4.0), 0.25)


# --- while_loop and fori_loop ------------------------------------------------------------
def test_while_loop_values_and_forward_mode():
    def f(x):
        return while_loop(lambda c: c[1] < 100.0, lambda c: (c[0] + 1, c[1] * x), (0, 1.0))
    n, v = _both(f, 3.0)
    assert n == 5 and v == 243.0
    _, (_, dv) = jvp(f, (3.0,), (1.0,))
    assert np.isclose(dv, 5 * 3.0 ** 4)
    with pytest.raises(tracejit.NonDifferentiableError, match="while_loop"):
        grad(lambda x: f(x)[1])(3.0)
    with pytest.raises(tracejit.DTypeError, match="bool"):
        while_loop(lambda c: c + 1.0, lambda c: c, 0.0)


def test_fori_loop_static_is_scan_and_differentiable():
    def body(i, v):
        return v * 0.9 + tnp.sin(v) * i
    f = lambda v: fori_loop(1, 6, body, v)

    def unrolled(v):
        for i in range(1, 6):
            v = body(i, v)
        return v
    v = np.array([0.3, -0.7])
    np.testing.assert_allclose(_both(f, v), unrolled(v), rtol=1e-12)
    np.testing.assert_allclose(grad(lambda v: tnp.sum(f(v)))(v),
                               grad(lambda v: tnp.sum(unrolled(v)))(v), rtol=1e-10)
    fn = tracejit.make_ir(f)(v)
    assert [ins.prim for ins in fn.body if ins.prim != "constant"] == ["scan"]
    # an int counter does not widen float32 values
    out = fori_loop(0, 3, lambda i, v: v + i * 0.5, np.zeros(2, np.float32))
    assert out.dtype == np.float32 and np.allclose(out, 1.5)
    assert fori_loop(5, 2, body, 1.0) == 1.0   # empty range


def test_fori_loop_traced_bounds_is_while():
    f = lambda n, v: fori_loop(0, n, lambda i, v: v + i, v)
    assert _both(f, 5, 0.0) == 10.0
    fn = tracejit.make_ir(f)(5, 0.0)
    assert "while" in [ins.prim for ins in fn.body]
    tracejit.ir.verify(fn)
    _, dv = jvp(lambda v: f(5, v), (1.0,), (1.0,))
    assert dv == 1.0


def test_control_ir_prints_with_named_subfunctions():
    def f(x):
        y = cond(x[0] > 0, lambda x: x * 2, lambda x: x, x)
        z = while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] + 1.0), (0, x))[1]
        return scan(lambda c, v: (c + v, c), 0.0, y + z)
    text = str(tracejit.make_ir(f)(np.ones(3)))
    for name in ("true_fun = func", "false_fun = func", "cond_fun = func", "body = func"):
        assert name in text
    for g in (lambda x: jvp(f, (x,), (x,)),
              grad(lambda x: tnp.sum(scan(lambda c, v: (c * v, c), 1.0,
                                          cond(x[0] > 0, lambda x: x * 2, tnp.sin, x))[1]))):
        fn = tracejit.make_ir(g)(np.ones(3))
        tracejit.ir.verify(fn)
        assert str(tracejit.ir.parse(str(fn))) == str(fn)
