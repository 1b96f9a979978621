"""The fusion pass: how many kernels the common patterns become, and that a
fused Function computes what the unfused one does (on hypothesis-drawn
programs, interpreting each kernel's body with the reference interpreter,
so no compilation is needed)."""
import numpy as np
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit.nn import functional as F
from tracejit.stages import simplify as optimize
from tracejit.core import eval_function
from tracejit.transforms.fusion import fuse


def fused(fun, *args):
    return fuse(optimize(tracejit.make_ir(fun)(*args)))


def kinds(fn):
    return [ins.attrs["kind"] if ins.prim == "fusion" else ins.prim for ins in fn.body]


def eval_fused(fn, args):
    """Run a fused Function: kernels by interpreting their bodies."""
    env = dict(zip(fn.params, args))
    for ins in fn.body:
        ops = [env[v] for v in ins.operands]
        if ins.prim == "fusion":
            outs = eval_function(ins.attrs["body"], ops)
        else:
            outs = eval_function(type(fn)(ins.operands, [ins], ins.results), ops)
        env.update(zip(ins.results, outs))
    return [env[v] for v in fn.results]


X = np.zeros((8, 5), np.float32)
LABELS = np.zeros(8, np.int32)


def test_elementwise_chain_is_one_kernel():
    def chain(x, y):
        return tnp.tanh(x * 0.7 - 0.3) * F.sigmoid(x) + 0.5 * x * x - tnp.exp(-y) / (1 + tnp.abs(x))
    fn = fused(chain, X, X[0])
    assert kinds(fn) == ["loop"]
    assert len(fn.body[0].attrs["body"].body) >= 8


def test_row_softmax_is_one_kernel():
    assert kinds(fused(lambda x: F.softmax(x, axis=1), X)) == ["reduction"]


def test_cross_entropy_is_one_kernel():
    def per_example(x, labels):
        return -F.log_softmax(x)[tnp.arange(8), labels]
    fn = fused(per_example, X, LABELS)
    assert kinds(fn) == ["reduction"]
    # the mean over the batch adds one small kernel over the 8 per-row values
    fn = fused(lambda x, l: per_example(x, l).mean(), X, LABELS)
    assert kinds(fn) == ["reduction", "reduction"]
    assert fn.body[1].attrs["body"].params[0].shape in ((8, 5), (8,))


def test_the_four_cross_entropy_forms_fuse_alike():
    """Issue 16: advanced indexing, take_along_axis, one-hot and the nn op
    give the same number of kernels forward and backward (the gather's
    gradient is a one-hot select, not a scatter), and the same values."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 8).astype(np.int32)
    forms = {
        "index": lambda x, y: -tnp.mean(F.log_softmax(x)[tnp.arange(8), y]),
        "take_along_axis": lambda x, y: -tnp.mean(
            tnp.take_along_axis(F.log_softmax(x), y[:, None], axis=1)),
        "one_hot": lambda x, y: -tnp.mean(tnp.sum(F.log_softmax(x) * F.one_hot(y, 5), axis=1)),
        "nn": lambda x, y: tnp.mean(F.sparse_softmax_cross_entropy_with_logits(y, x)),
    }
    results = {}
    for name, f in forms.items():
        fn = fused(tracejit.value_and_grad(f), x, labels)
        assert "scatter_add" not in kinds(fn), name
        assert len(kinds(fn)) <= 2, (name, kinds(fn))
        results[name] = eval_fused(fn, [x, labels])
    for name, (v, g) in results.items():
        np.testing.assert_allclose(v, results["index"][0], rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(g, results["index"][1], atol=1e-7, err_msg=name)


def test_mean_and_variance_are_one_kernel():
    fn = fused(lambda x: (x.mean(axis=0), x.var(axis=0)), X)
    assert kinds(fn) == ["reduction"]
    assert len(fn.body[0].results) == 2


def test_adam_update_is_one_kernel_per_parameter():
    def adam(p, g, m, v, t):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mhat = m / (1 - 0.9 ** t)
        vhat = v / (1 - 0.999 ** t)
        return p - 1e-3 * mhat / (tnp.sqrt(vhat) + 1e-8), m, v
    params = [np.zeros((8, 5), np.float32), np.zeros(5, np.float32)]
    fn = fused(lambda ps, gs, ms, vs, t: [adam(*a, t) for a in zip(ps, gs, ms, vs)],
               params, params, params, params, 3.0)
    assert kinds(fn) == ["loop", "loop"]
    assert all(len(ins.results) == 3 for ins in fn.body)


def test_dense_layer_epilogue():
    w, b = np.zeros((5, 3), np.float32), np.zeros(3, np.float32)
    fn = fused(lambda x: tnp.maximum(x @ w + b, 0), X)
    assert kinds(fn) == ["dot_general", "loop"]


def test_fused_function_prints_its_kernels():
    text = str(fused(lambda x: F.softmax(x, axis=1), X))
    assert "fusion[kind='reduction']" in text and "reduce_max" in text and "body = func" in text


# --- drawn programs --------------------------------------------------------------------

UNARY = [tnp.exp, tnp.tanh, tnp.negative, tnp.abs, F.sigmoid, lambda v: v * v,
         lambda v: tnp.log(tnp.abs(v) + 1)]
BINARY = [tnp.add, tnp.subtract, tnp.multiply, tnp.maximum, lambda a, b: a / (1 + b * b)]


@st.composite
def programs(draw):
    """A list of steps over values of shape (4, 6), (4, 1), (1, 6) or (6,):
    unary/binary elementwise ops (broadcasting), reductions with keepdims,
    transposes and slices."""
    steps = []
    for _ in range(draw(st.integers(2, 9))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "reshape"]))
        steps.append((kind, draw(st.integers(0, 1000)), draw(st.integers(0, 1000))))
    return steps


def run_program(steps, x, y):
    vals = [x, y]
    for kind, a, b in steps:
        u, w = vals[a % len(vals)], vals[b % len(vals)]
        if kind == "unary":
            vals.append(UNARY[b % len(UNARY)](u))
        elif kind == "binary":
            vals.append(BINARY[a % len(BINARY)](u, w))
        elif kind == "reduce" and tnp.ndim(u) > 0:
            red = [tnp.sum, tnp.max, tnp.mean][b % 3]
            axis = b % 2 if tnp.ndim(u) == 2 else 0
            vals.append(red(u, axis=axis, keepdims=tnp.ndim(u) == 2))
        elif kind == "reshape":
            # shape-preserving index maps: a roll (slices + concatenate), a flip
            vals.append(tnp.concatenate([u[..., 4:], u[..., :4]], -1) * 2
                        if tnp.shape(u)[-1:] == (6,) else tnp.flip(u, 0) if tnp.ndim(u) else u)
        else:
            vals.append(u + 1)
    return vals[-3:]


@settings(max_examples=60, deadline=None)
@given(steps=programs(), seed=st.integers(0, 2**16))
def test_fused_equals_unfused(steps, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = rng.standard_normal((6,)).astype(np.float32)
    fn = optimize(tracejit.make_ir(lambda x, y: run_program(steps, x, y))(x, y))
    want = eval_function(fn, [x, y])
    got = eval_fused(fuse(fn), [x, y])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6, equal_nan=True)


@settings(max_examples=6, deadline=None)
@given(steps=programs(), seed=st.integers(0, 2**16))
def test_drawn_programs_on_cpu(steps, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = rng.standard_normal((6,)).astype(np.float32)
    f = lambda x, y: run_program(steps, x, y)
    got = tracejit.jit(f, backend="cpu")(x, y)
    want = tracejit.jit(f, backend="reference")(x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_full_output_of_another_rank_in_a_reduction_kernel():
    """A ``[1, n]`` output of a reduction kernel over ``[n]`` is written at
    every element (it was once taken for a per-row output and written at
    the last element only; found by test_drawn_programs_on_cpu)."""
    v = np.linspace(-1, 2, 6).astype(np.float32)
    m = np.arange(6, dtype=np.float32).reshape(1, 6)

    def f(v, m):
        top = tnp.max(v)
        return top + 1, m / (1 + top * top)
    fn = fused(f, v, m)
    assert kinds(fn) == ["reduction"]
    got = tracejit.jit(f, backend="cpu")(v, m)
    np.testing.assert_allclose(np.asarray(got[1]), m / (1 + 4.0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got[0]), 3.0, rtol=1e-6)
