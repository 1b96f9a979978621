"""checkpoint (remat): same derivatives, fewer stored intermediates."""
import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit.testing import check_grads

RNG = np.random.RandomState(2)


def _block(h, ws):
    for w in ws:
        h = tnp.tanh(h @ w)
    return h


def _loss(block, n_blocks=4, per_block=4):
    def loss(ws, x):
        h = x
        for i in range(0, n_blocks * per_block, per_block):
            h = block(h, ws[i:i + per_block])
        return tnp.sum(h ** 2)
    return loss


def test_checkpointed_gradients_equal_plain_ones():
    ws = [RNG.randn(5, 5) * 0.5 for _ in range(4)]
    x = RNG.randn(3, 5)
    plain = _loss(_block, 2, 2)
    ck = _loss(tracejit.checkpoint(_block), 2, 2)
    want = tracejit.grad(plain)(ws, x)
    for got in (tracejit.grad(ck)(ws, x), tracejit.jit(tracejit.grad(ck), backend="cpu")(ws, x),
                tracejit.grad(_loss(tracejit.remat(_block), 2, 2))(ws, x)):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # forward mode, values and second order
    assert np.isclose(ck(ws, x), plain(ws, x))
    check_grads(ck, (ws, x), order=2)


def test_closed_over_values_get_their_cotangents():
    w = RNG.randn(4, 4) * 0.5

    def loss(w, x):
        f = tracejit.checkpoint(lambda h: tnp.sin(h @ w) * 2.0)   # closes over w
        return tnp.sum(f(f(x)))
    x = RNG.randn(2, 4)
    gw, gx = tracejit.grad(loss, argnums=(0, 1))(w, x)
    plain = lambda w, x: tnp.sum(tnp.sin(tnp.sin(x @ w) * 2.0 @ w) * 2.0)
    rw, rx = tracejit.grad(plain, argnums=(0, 1))(w, x)
    np.testing.assert_allclose(gw, rw, rtol=1e-10)
    np.testing.assert_allclose(gx, rx, rtol=1e-10)


def test_checkpoint_composes_with_vmap_and_integer_arguments():
    def f(w, x, k):
        return tnp.sum(tnp.tanh(x * w) ** k)
    ck = tracejit.checkpoint(f)
    w, xs = RNG.randn(3), RNG.randn(4, 3)
    got = tracejit.vmap(tracejit.grad(ck), in_axes=(None, 0, None))(w, xs, 3)
    want = tracejit.vmap(tracejit.grad(f), in_axes=(None, 0, None))(w, xs, 3)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_checkpoint_is_the_function_outside_differentiation():
    x = RNG.randn(3)
    assert np.allclose(tracejit.checkpoint(tnp.sin)(x), np.sin(x))
    fn = tracejit.make_ir(tracejit.checkpoint(tnp.sin))(x)
    assert [i.prim for i in fn.body] == ["sin"]


def test_checkpoint_saves_memory():
    """16 tanh layers of a [1024, 128] batch in 4 checkpointed blocks: the
    backward pass keeps 4 block inputs and one block's activations instead
    of all 16 activations (memory_estimate of the compiled gradient)."""
    ws = [np.zeros((128, 128), np.float32) for _ in range(16)]
    x = np.zeros((1024, 128), np.float32)
    plain = tracejit.memory_estimate(tracejit.grad(_loss(_block)), ws, x)
    ck = tracejit.memory_estimate(tracejit.grad(_loss(tracejit.checkpoint(_block))), ws, x)
    act = 1024 * 128 * 4   # one activation: 512 KiB
    assert plain.intermediates_at_peak >= 16 * act
    assert ck.intermediates_at_peak <= 11 * act
    assert ck.peak < 0.7 * plain.peak
