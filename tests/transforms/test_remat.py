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


POLICIES = tracejit.checkpoint_policies


def test_policies_give_the_plain_gradients():
    ws = [RNG.randn(3, 3) * 0.5 for _ in range(4)]
    x = RNG.randn(2, 3)
    want = tracejit.grad(_loss(_block, 2, 2))(ws, x)

    def named_block(h, ws):
        for i, w in enumerate(ws):
            h = tnp.tanh(tnp.matmul(h, w, name=f"z{i}"))
        return h
    for policy in [POLICIES.everything_saveable, POLICIES.nothing_saveable,
                   POLICIES.dots_saveable, POLICIES.dots_with_no_batch_dims_saveable,
                   POLICIES.save_only_these_names("z0"),
                   POLICIES.save_anything_except_these_names("z1")]:
        block = tracejit.checkpoint(named_block, policy=policy)
        for g, w in zip(tracejit.grad(_loss(block, 2, 2))(ws, x), want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
        check_grads(_loss(block, 2, 2), (ws, x), order=1)
    deco = tracejit.checkpoint(policy=POLICIES.dots_saveable)(_block)
    np.testing.assert_allclose(tracejit.jit(tracejit.grad(_loss(deco, 2, 2)))(ws, x)[0], want[0],
                               rtol=1e-12)


def _prims(fn, out=None):
    out = [] if out is None else out
    for ins in fn.body:
        out.append(ins.prim)
        for sub in ins.subfunctions().values():
            _prims(sub, out)
    return out


def test_dots_saveable_recomputes_only_the_elementwise_work():
    ws = [RNG.randn(3, 3) for _ in range(4)]
    x = RNG.randn(2, 3)
    counts = {}
    for label, policy in [("none", None), ("dots", POLICIES.dots_saveable),
                          ("all", POLICIES.everything_saveable)]:
        block = tracejit.checkpoint(_block, policy=policy)
        fn = tracejit.stages.simplify(tracejit.make_ir(tracejit.grad(_loss(block, 2, 2)))(ws, x))
        prims = _prims(fn)
        counts[label] = (prims.count("dot_general"), prims.count("tanh"))
    assert counts["dots"][0] < counts["none"][0]
    assert counts["dots"][0] == counts["all"][0]
    assert counts["dots"][1] > counts["all"][1]   # tanh is recomputed, not saved


def test_policy_memory():
    """Saving the products costs memory (16 pre-activations kept) that
    recomputing everything does not; saving everything keeps about what
    plain reverse mode keeps (the values the backward pass reads only)."""
    ws = [np.zeros((128, 128), np.float32) for _ in range(16)]
    x = np.zeros((1024, 128), np.float32)
    peaks = {}
    for label, policy in [("nothing", None), ("dots", POLICIES.dots_saveable),
                          ("everything", POLICIES.everything_saveable)]:
        block = tracejit.checkpoint(_block, policy=policy)
        peaks[label] = tracejit.memory_estimate(tracejit.grad(_loss(block)), ws, x).peak
    plain = tracejit.memory_estimate(tracejit.grad(_loss(_block)), ws, x).peak
    act = 1024 * 128 * 4
    assert peaks["dots"] >= peaks["nothing"] + 12 * act
    assert plain <= peaks["everything"] <= plain + 4 * act
