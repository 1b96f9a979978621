"""scan's VJP saves the residuals its backward body reads (partial
evaluation of the body) instead of recomputing each forward step."""
import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit.ir.core import Function, Instr, Var
from tracejit.ir.types import TensorType
from tracejit.primitives.control import sink_accumulated
from tracejit.stages import simplify as optimize
from tracejit.testing import check_grads

RNG = np.random.RandomState(3)


def _rnn_loss(w, u, xs):
    def cell(h, x):
        h = tnp.tanh(x @ u + h @ w)
        return h, h
    _, hs = tracejit.scan(cell, tnp.zeros((2, 4)), xs)
    return tnp.sum(hs ** 2)


def _scans(fn):
    return [i for i in fn.body if i.prim == "scan"]


def _count(fn, prim):
    return sum(i.prim == prim for i in fn.body)


def test_backward_scan_does_not_recompute_the_forward_step():
    w, u, xs = RNG.randn(4, 4) * 0.5, RNG.randn(3, 4), RNG.randn(5, 2, 3)
    fn = optimize(tracejit.make_ir(tracejit.grad(_rnn_loss, argnums=(0, 1)))(w, u, xs))
    fwd, bwd = _scans(fn)
    # x @ u is hoisted out of the loop: one product for all steps before the
    # forward scan, and u's gradient one product after the backward scan;
    # w's gradient too (sink_accumulated): one product after the loop
    assert _count(fn, "dot_general") == 3
    assert _count(fwd.attrs["body"], "dot_general") == 1
    # dh per step: no forward product again, no tanh recomputed, no dw
    assert _count(bwd.attrs["body"], "dot_general") == 1
    assert _count(bwd.attrs["body"], "tanh") == 0
    assert bwd.attrs["num_carry"] == 1   # dh only: dw is no longer accumulated
    # saved per step: the previous h and the new h (tanh's output), nothing else
    n_ys = len(fwd.results) - fwd.attrs["num_carry"]
    assert n_ys == 1 + 2


def test_hoisting_keeps_values_and_gradients():
    w, u, xs = RNG.randn(4, 4) * 0.5, RNG.randn(3, 4), RNG.randn(5, 2, 3)

    def unrolled(w, u, xs):
        h, total = np.zeros((2, 4)), 0.0
        for x in xs:
            h = tnp.tanh(x @ u + h @ w)
            total = total + tnp.sum(h ** 2)
        return total
    np.testing.assert_allclose(_rnn_loss(w, u, xs), unrolled(w, u, xs), rtol=1e-12)
    for a, b in zip(tracejit.grad(_rnn_loss, argnums=(0, 1))(w, u, xs),
                    tracejit.grad(unrolled, argnums=(0, 1))(w, u, xs)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    rev = lambda u, xs: tracejit.scan(lambda c, x: (c + tnp.sum(x @ u), x @ u), 0.0, xs,   # noqa: E731
                                      reverse=True)
    c, ys = rev(u, xs)
    np.testing.assert_allclose(ys, xs @ u)
    np.testing.assert_allclose(c, np.sum(xs @ u))


def test_gradients_with_saved_residuals_to_order_2_and_nested():
    w, u, xs = RNG.randn(4, 4) * 0.5, RNG.randn(3, 4), RNG.randn(5, 2, 3)
    check_grads(_rnn_loss, (w, u, xs), order=2)

    def nested(w, xs):   # a scan in a scan, a loop-invariant residual (w * 2)
        def outer(c, x):
            def inner(d, y):
                return tnp.sin(d * (w * 2.0) + y), d
            d, ds = tracejit.scan(inner, c, x)
            return d * c, tnp.sum(ds)
        return tracejit.scan(outer, tnp.ones(3), xs)
    check_grads(nested, (RNG.randn(3), RNG.randn(2, 4, 3) * 0.5), order=2)
    g = tracejit.jit(tracejit.grad(lambda w, xs: tnp.sum(nested(w, xs)[1])), backend="cpu")
    want = tracejit.grad(lambda w, xs: tnp.sum(nested(w, xs)[1]))
    a, b = RNG.randn(3), RNG.randn(2, 4, 3) * 0.5
    np.testing.assert_allclose(g(a, b), want(a, b), rtol=1e-10)


def test_accumulated_products_leave_the_loop_and_keep_gradients():
    """sink_accumulated: a const's cotangent accumulated as a product of a
    scanned input and a per-step value (w's here, through a transpose), or
    of two per-step values, is one product after the backward loop; one
    used elsewhere in the step (an affine carry update) stays."""
    w, v, xs = RNG.randn(4, 4) * 0.5, RNG.randn(4, 4) * 0.3, RNG.randn(6, 2, 4)

    def make_loss(reverse):
        def loss(w, v, xs):
            def cell(h, x):
                h = tnp.tanh(h @ w + (x * h) @ v.T + x)
                return h, h * x
            h, ys = tracejit.scan(cell, tnp.ones((2, 4)) * 0.1, xs, reverse=reverse)
            return tnp.sum(ys ** 2) + tnp.sum(h)
        return loss
    for reverse in (False, True):
        loss = make_loss(reverse)
        grad = tracejit.grad(loss, argnums=(0, 1))
        fn = optimize(tracejit.make_ir(grad)(w, v, xs))
        bwd = _scans(fn)[1]
        # per step only dh's two products; dw and dv are carried no more
        assert _count(bwd.attrs["body"], "dot_general") == 2, bwd.attrs["body"]
        assert bwd.attrs["num_carry"] == 1
        check_grads(lambda w, v: loss(w, v, xs), (w, v), order=1)
        for a, b in zip(tracejit.jit(grad, backend="cpu")(w, v, xs), grad(w, v, xs)):
            np.testing.assert_allclose(a, b, rtol=1e-10)
    check_grads(lambda w, v: make_loss(False)(w, v, xs), (w, v), order=2)

    # a carry that is read besides its update stays a carry
    t = TensorType((2, 2), "float64")
    c, x = Var(t), Var(t)
    d, s, r = Var(t), Var(t), Var(t)
    dot = Instr("dot_general", [x, x], {"dimension_numbers": (((1,), (0,)), ((), ()))}, [d])
    body = Function([c, x], [dot, Instr("add", [c, d], {}, [s]), Instr("mul", [c, s], {}, [r])],
                    [s, r], "b")
    assert sink_accumulated(body, 0, 1, [0]) == (body, [])
    body2 = Function([c, x], body.body[:2], [s, d], "b2")
    new, sunk = sink_accumulated(body2, 0, 1, [0])
    assert sunk == [(0, ("x", 0), ("x", 0), (((0, 2), (0, 1)), ((), ())), [])]
    assert new.params == [x] and new.results == [d] and len(new.body) == 1
