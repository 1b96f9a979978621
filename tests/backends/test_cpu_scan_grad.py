"""``jit(grad(f))`` of a function with ``tracejit.scan`` on the cpu backend:
the backward scan runs as a sub-plan and agrees with the reference backend
and with central finite differences (float64)."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba is not installed")

RNG = np.random.default_rng(0)


def rnn_loss(W, h0, xs):
    """h = tanh(h @ W + x_t) over the rows of xs; loss = sum(final h)."""
    def body(h, x):
        h = tnp.tanh(h @ W + x)
        return h, None
    h, _ = tracejit.scan(body, h0, xs)
    return tnp.sum(h)


def scalar_loss(w, xs):
    """A scalar carry over a 1-D xs (each x_t is 0-d), stacked scalar ys."""
    def body(c, x):
        c = tnp.tanh(c * w + x)
        return c, c * c
    c, ys = tracejit.scan(body, 0.5 * w, xs)
    return c + tnp.sum(ys)


def numerical_grad(f, args, argnum, h=1e-6):
    x = np.array(args[argnum], np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        for sign in (1, -1):
            shifted = x.copy()
            shifted[i] += sign * h
            a = list(args)
            a[argnum] = shifted
            g[i] += sign * float(f(*a)) / (2 * h)
    return g


CASES = {
    "rnn": (rnn_loss, lambda: (RNG.normal(size=(4, 4)) * 0.5, RNG.normal(size=(2, 4)),
                               RNG.normal(size=(6, 2, 4)))),
    "rnn 1-d state": (rnn_loss, lambda: (RNG.normal(size=(3, 3)) * 0.5, RNG.normal(size=3),
                                         RNG.normal(size=(5, 3)))),
    "scalar carry": (scalar_loss, lambda: (np.float64(0.7), RNG.normal(size=6))),
}


@pytest.mark.parametrize("case", CASES)
def test_jit_grad_of_scan(case):
    f, make_args = CASES[case]
    args = make_args()
    for argnum in range(len(args)):
        grad = tracejit.grad(f, argnums=argnum)
        got = tracejit.jit(grad, backend="cpu")(*args)
        want = tracejit.jit(grad, backend="reference")(*args)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, numerical_grad(f, args, argnum), rtol=1e-6, atol=1e-8)


def test_jit_value_and_grad_of_scan_in_float32():
    W, h0, xs = (a.astype(np.float32) for a in CASES["rnn"][1]())
    vg = tracejit.value_and_grad(rnn_loss, argnums=(0, 1, 2))
    (value, grads) = tracejit.jit(vg, backend="cpu")(W, h0, xs)
    (ref_value, ref_grads) = tracejit.jit(vg, backend="reference")(W, h0, xs)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)
