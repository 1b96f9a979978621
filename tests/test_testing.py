"""tracejit.testing: numerical_grad and check_grads."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
import tracejit.testing
from tracejit.testing import check_grads, numerical_grad

rng = np.random.default_rng(1)


def _softmax(z):
    e = tnp.exp(z - tnp.max(z, axis=-1, keepdims=True))
    return e / tnp.sum(e, axis=-1, keepdims=True)


def test_numerical_grad_matches_known_gradients():
    x = rng.standard_normal((3, 2))
    g = numerical_grad(lambda x: tnp.sum(tnp.tanh(x)), x)
    np.testing.assert_allclose(g, 1 - np.tanh(x) ** 2, rtol=1e-8)
    params = {"w": rng.standard_normal(3).astype(np.float32), "b": np.float32(0.5)}
    gw, gy = numerical_grad(lambda p, y: tnp.sum(p["w"] * y) + p["b"] * 2.0, params,
                            np.arange(3.0), argnums=(0, 1))
    np.testing.assert_allclose(gw["w"], np.arange(3.0), atol=1e-6)
    assert gw["b"] == pytest.approx(2.0) and gw["w"].dtype == np.float64
    np.testing.assert_allclose(gy, params["w"], rtol=1e-6)
    with pytest.raises(TypeError, match="scalar"):
        numerical_grad(tnp.tanh, x)


def test_check_grads_passes_on_correct_functions():
    check_grads(tnp.tanh, (rng.standard_normal((2, 3)),))
    check_grads(tnp.tanh, (rng.standard_normal(4).astype(np.float32),))
    w = rng.standard_normal((4, 3)).astype(np.float32)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    check_grads(lambda x, w: _softmax(x @ w), (x, w))

    def loss(params, x, labels):   # labels are integers: held constant
        logits = tnp.tanh(x @ params["dense"]["kernel"] + params["dense"]["bias"])
        return -tnp.mean(tnp.sum(tnp.log(_softmax(logits)) * labels, axis=-1))
    params = {"dense": {"kernel": rng.standard_normal((4, 3)), "bias": np.zeros(3)}}
    labels = np.eye(3, dtype=np.int32)[[0, 2]]
    check_grads(loss, (params, rng.standard_normal((2, 4)), labels), modes="rev")


def test_check_grads_second_order():
    f = lambda x, y: tnp.sum(tnp.sin(x) * tnp.exp(y) + x ** 3)
    check_grads(f, (rng.standard_normal(3), rng.standard_normal(3)), order=2)


def _sin_with_bwd(scale):
    @tracejit.custom_vjp
    def f(x):
        return tnp.sin(x)

    def f_fwd(x):
        return tnp.sin(x), tnp.cos(x)

    def f_bwd(cos_x, ct):
        return (scale * cos_x * ct,)
    f.defvjp(f_fwd, f_bwd)
    return f


def test_check_grads_fails_on_a_wrong_custom_vjp():
    x = rng.standard_normal((2, 2))
    check_grads(_sin_with_bwd(1.0), (x,))      # the right one passes
    wrong = _sin_with_bwd(1.5)
    with pytest.raises(AssertionError, match=r"reverse mode .*argument 0.*mismatch"):
        check_grads(wrong, (x,))
    with pytest.raises(AssertionError, match=r"argument 1 'w'"):
        check_grads(lambda a, p: tnp.sum(a * wrong(p["w"])), (x, {"w": x}), modes=("rev",))


def test_check_grads_fails_on_a_wrong_second_derivative():
    # x - q(x) is a sawtooth below 2**-30 with derivative 1 (floor's is 0): f has the value
    # and (to ~1e-8) the first derivative of sum(x ** 3), but a second derivative 2 * 5 too
    # large.  A coarse step keeps the sawtooth out of the finite differences.
    q = lambda x: tnp.floor(x * 2.0 ** 30) / 2.0 ** 30
    f = lambda x: tnp.sum(x ** 3 + 5.0 * (x - q(x)) ** 2)
    x = np.random.default_rng(1).standard_normal(3)
    tol = dict(eps=1e-3, atol=1e-4, rtol=1e-4)
    check_grads(lambda x: tnp.sum(x ** 3), (x,), order=2, **tol)
    check_grads(f, (x,), order=1, **tol)
    with pytest.raises(AssertionError, match="order 2 reverse mode"):
        check_grads(f, (x,), order=2, modes="rev", **tol)
    with pytest.raises(AssertionError, match="order 2 forward mode"):
        check_grads(f, (x,), order=2, modes="fwd", **tol)


def test_check_grads_argument_errors():
    with pytest.raises(ValueError, match="modes"):
        check_grads(tnp.tanh, (np.ones(2),), modes=("sideways",))
    with pytest.raises(ValueError, match="floating-point"):
        check_grads(lambda i: i * 2, (np.arange(3),))
