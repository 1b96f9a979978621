"""vmap: every primitive's batching rule against a Python loop over the
batch (the reference interpreter, eagerly), for every combination of
batched and unbatched operands; composition with jit, grad, scan and
itself; the cpu backend on compiled batched programs."""
import itertools

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.primitives import PRIMITIVES
from tracejit.primitives import conv as C
from tracejit.primitives import elementwise as E
from tracejit.primitives import linalg as L
from tracejit.primitives import random as RND
from tracejit.primitives import reduce as R
from tracejit.primitives import shape as S
from tracejit.testing import check_grads
from tracejit.transforms.batching import batch_eval
from tracejit.transforms.fusion import fuse

B = 3
RNG = np.random.RandomState(0)


def _pos(*s):
    return RNG.uniform(0.5, 2.0, s)


def _i(*s, lo=-5, hi=5):
    return RNG.randint(lo, hi, s).astype(np.int64)


def _stack(outs):
    return tracejit.tree_map(lambda *xs: np.stack(xs), *outs)


def loop(f, args, axes, size=B):
    """``f`` run per example, stacked: the oracle of ``vmap(f, axes)``."""
    outs = [f(*[a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, axes)])
            for i in range(size)]
    return _stack(outs)


def batch_args(per_example, axes):
    """One example's arguments -> a batch of B different examples, with the
    batch at each argument's axis (None: the example as it is)."""
    out = []
    for a, ax in zip(per_example, axes):
        a = np.asarray(a)
        if ax is None:
            out.append(a)
            continue
        rows = [a]
        for _ in range(B - 1):
            if a.dtype.kind == "f":
                rows.append(a * RNG.uniform(0.5, 1.5, a.shape))
            elif a.dtype.kind == "b":
                rows.append(RNG.rand(*a.shape) > 0.5)
            else:
                rows.append(np.roll(a, 1 + len(rows)))
        out.append(np.stack(rows, axis=ax))
    return out


def assert_tree_close(a, b, rtol=1e-10, atol=1e-12):
    la, ta = tracejit.tree_flatten(a)
    lb, tb = tracejit.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def check_all_axes(f, per_example, axes_choices=(None, 0)):
    """vmap(f) against the loop for every mix of batched/unbatched arguments."""
    n = len(per_example)
    for axes in itertools.product(axes_choices, repeat=n):
        if all(a is None for a in axes):
            continue
        args = batch_args(per_example, axes)
        assert_tree_close(tracejit.vmap(f, in_axes=axes)(*args), loop(f, args, axes))


# --- one case per primitive: (function of the operands, one example's operands) ----
def _key():
    return tracejit.random.key(3)


def _prim(name):
    return lambda *args: PRIMITIVES[name](*args)


CASES = {
    **{n: _prim(n) for n in E.UNARY + E.BINARY},
    "select": lambda p, x, y: E.select(p, x, y),
    "convert": lambda x: E.convert(x, dtype="int32"),
    "broadcast_in_dim": lambda x: S.broadcast_in_dim(x, shape=(2, 3, 4), broadcast_dimensions=(1, 2)),
    "reshape": lambda x: S.reshape(x, new_shape=(3, 2)),
    "transpose": lambda x: S.transpose(x, permutation=(1, 0)),
    "slice": lambda x: S.slice(x, start=(0, 1), limit=(2, 3), strides=(1, 2)),
    "pad": lambda x, v: S.pad(x, v, config=((1, 0, 1), (-1, 2, 0))),
    "concatenate": lambda x, y: S.concatenate(x, y, axis=1),
    "rev": lambda x: S.rev(x, dimensions=(1,)),
    "gather": lambda x, i: S.gather(x, i, axis=1),
    "scatter_add": lambda x, i, u: S.scatter_add(x, i, u, axis=1),
    "reduce_sum": lambda x: R.reduce_sum(x, axes=(1,)),
    "reduce_prod": lambda x: R.reduce_prod(x, axes=(0, 1)),
    "dimension_size": lambda x: x * S.dimension_size(x, axes=(1,), dtype="float64"),
    "reduce_max": lambda x: R.reduce_max(x, axes=(0,)),
    "reduce_min": lambda x: R.reduce_min(x, axes=(1,)),
    "argmax": lambda x: R.argmax(x, axis=1, index_dtype="int32"),
    "argmin": lambda x: R.argmin(x, axis=0, index_dtype="int64"),
    "dot_general": lambda x, y: L.dot_general(x, y, dimension_numbers=(((2,), (1,)), ((0,), (0,)))),
    "conv_general": lambda x, w: C.conv_general(
        x, w, window_strides=(2, 1), padding=((1, 1), (0, 1)), lhs_dilation=(1, 1),
        rhs_dilation=(1, 2), feature_group_count=2),
    "reduce_window": lambda x: C.reduce_window(x, computation="max", window_dimensions=(1, 2, 2),
                                               window_strides=(1, 1, 2), padding=((0, 0), (1, 0), (0, 1))),
    "select_and_scatter_add": lambda s, x: C.select_and_scatter_add(
        s, x, window_dimensions=(2, 2), window_strides=(1, 1), padding=((0, 0), (0, 0))),
    "random_bits": lambda k: RND.random_bits(k, shape=(2, 3)),
    "argsort": lambda x: RND.argsort(x, axis=1, index_dtype="int32"),
    "cond": lambda p, x, y: tracejit.cond(p, lambda a, b: tnp.sin(a) * b, lambda a, b: a - b, x, y),
    "while": lambda n, x: tracejit.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5),
                                              (0, x))[1],
    "scan": lambda c, xs, w: tracejit.scan(lambda c, x: (c * w + x, c.sum()), c, xs),
}

ARGS = {
    **{n: [_pos(2, 3)] for n in E.UNARY if n not in ("not", "is_finite")},
    "is_finite": [np.array([1.0, np.inf, np.nan])],
    "not": [np.array([True, False, True])],
    **{n: [RNG.randn(2, 3), _pos(2, 3)] for n in E.BINARY},
    "pow": [_pos(2, 3), RNG.randn(2, 3)],
    "and": [_i(4), _i(4)], "or": [_i(4), _i(4)], "xor": [_i(4), _i(4)], "gcd": [_i(4), _i(4)],
    "select": [RNG.rand(2, 3) > 0.5, RNG.randn(2, 3), RNG.randn(2, 3)],
    "convert": [RNG.randn(2, 3) * 4],
    "broadcast_in_dim": [RNG.randn(3, 1)],
    "reshape": [RNG.randn(2, 3)], "transpose": [RNG.randn(2, 3)],
    "slice": [RNG.randn(3, 4)],
    "pad": [RNG.randn(2, 3), np.array(0.5)],
    "concatenate": [RNG.randn(2, 3), RNG.randn(2, 1)],
    "rev": [RNG.randn(2, 3)],
    "gather": [RNG.randn(2, 4, 3), np.array([[0, -1], [7, 2]])],   # negative and out of range
    "scatter_add": [RNG.randn(2, 4, 3), np.array([0, -1, 3, 0, 9]), RNG.randn(2, 5, 3)],
    "reduce_sum": [RNG.randn(2, 3)], "reduce_prod": [RNG.randn(2, 3)],
    "dimension_size": [RNG.randn(2, 3)],
    "reduce_max": [RNG.randn(2, 3)], "reduce_min": [RNG.randn(2, 3)],
    "argmax": [RNG.randn(2, 3)], "argmin": [RNG.randn(2, 3)],
    "dot_general": [RNG.randn(2, 3, 4), RNG.randn(2, 4, 5)],
    "conv_general": [RNG.randn(2, 5, 5, 4), RNG.randn(3, 2, 2, 6)],
    "reduce_window": [RNG.randn(2, 4, 5)],
    "select_and_scatter_add": [RNG.randn(3, 4), RNG.randn(4, 5)],
    "random_bits": [None],   # keys: see _case_args
    "argsort": [RNG.randn(2, 5)],
    "cond": [np.array(True), RNG.randn(3), RNG.randn(3)],
    "while": [np.array(2), RNG.randn(3)],
    "scan": [RNG.randn(3), RNG.randn(4, 3), RNG.randn(3)],
}

# The LAPACK family (primitives/linalg_lapack.py) on well-conditioned matrices.
_SQUARE = RNG.randn(3, 3) + 4 * np.eye(3)
CASES.update({n: _prim(n) for n in ("cholesky", "solve", "slogdet", "eigh", "qr", "svd")})
CASES["triangular_solve"] = lambda a, b: PRIMITIVES["triangular_solve"](
    a, b, lower=True, transpose_a=True)
ARGS.update({"cholesky": [_SQUARE @ _SQUARE.T], "eigh": [_SQUARE + _SQUARE.T],
             "solve": [_SQUARE, RNG.randn(3, 2)], "slogdet": [_SQUARE],
             "triangular_solve": [np.tril(_SQUARE), RNG.randn(3, 2)],
             "qr": [RNG.randn(4, 3)], "svd": [RNG.randn(3, 4)]})

# Primitives that take no operands cannot carry a batch (their results are
# the same for every example), and the markers are only recorded under
# differentiation: they are tested separately below.
NULLARY = {"constant", "iota"}
# tested below; custom_jvp_call in test_jacobians.py, call in test_subfunction.py
SEPARATE = {"custom_vjp_call", "custom_jvp_call", "stop_gradient", "fusion", "call"}


def test_every_primitive_has_a_batching_rule():
    missing = [n for n, p in PRIMITIVES.items() if p.batch is None and n not in NULLARY]
    assert not missing, f"primitives without a batching rule: {missing}"
    for n in NULLARY:   # they really take no operands
        assert PRIMITIVES[n].shape_rule.__code__.co_argcount == 0


def test_every_batching_rule_is_tested():
    untested = set(PRIMITIVES) - set(CASES) - NULLARY - SEPARATE
    assert not untested, f"batching rules without a test case: {sorted(untested)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_batching_rule(name):
    args = ARGS[name]
    if name == "random_bits":
        keys = tracejit.random.split(_key(), B)
        f = CASES[name]
        assert_tree_close(tracejit.vmap(f)(keys), loop(f, [keys], [0]))
        return
    check_all_axes(CASES[name], args)


@pytest.mark.parametrize("name", ["gather", "scatter_add", "dot_general", "conv_general", "pad"])
def test_batching_rule_other_axes(name):
    """The batch at the last axis of every argument (moved to the front)."""
    args = ARGS[name]
    axes = tuple(np.ndim(a) for a in args)   # a new trailing axis
    stacked = batch_args(args, axes)
    f = CASES[name]
    assert_tree_close(tracejit.vmap(f, in_axes=axes)(*stacked), loop(f, stacked, axes))
    out_axes = 1
    got = tracejit.vmap(f, in_axes=axes, out_axes=out_axes)(*stacked)
    np.testing.assert_allclose(np.moveaxis(got, out_axes, 0), loop(f, stacked, axes))


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_scatter_axis0_and_more_index_dims(axis):
    x = RNG.randn(4, 5)
    idx = np.array([[1, 0, 3], [-2, 9, 2]])
    upd_shape = (2, 3, 5) if axis == 0 else (4, 2, 3)
    check_all_axes(lambda x, i: S.gather(x, i, axis=axis), [x, idx])
    check_all_axes(lambda x, i, u: S.scatter_add(x, i, u, axis=axis),
                   [x, idx, RNG.randn(*upd_shape)])


def test_conv_groups_one_and_depthwise():
    check_all_axes(lambda x, w: C.conv_general(x, w, window_strides=(1,), padding=((1, 1),),
                                               lhs_dilation=(2,), rhs_dilation=(1,),
                                               feature_group_count=1),
                   [RNG.randn(2, 5, 3), RNG.randn(3, 3, 4)])
    check_all_axes(lambda x, w: C.conv_general(x, w, window_strides=(1, 1),
                                               padding=((0, 0), (0, 0)), lhs_dilation=(1, 1),
                                               rhs_dilation=(1, 1), feature_group_count=3),
                   [RNG.randn(1, 3, 3, 3), RNG.randn(2, 2, 1, 3)])


def test_dot_general_one_side_batched_with_batch_dims():
    check_all_axes(lambda x, y: L.dot_general(x, y, dimension_numbers=(((1,), (0,)), ((), ()))),
                   [RNG.randn(2, 3), RNG.randn(3, 4)])
    check_all_axes(lambda x, y: L.dot_general(x, y, dimension_numbers=(((0,), (2,)), ((2,), (0,)))),
                   [RNG.randn(3, 2, 4), RNG.randn(4, 5, 3)])


# --- control flow with a batched predicate ----------------------------------------------
def test_cond_with_batched_predicate_selects_per_example():
    f = lambda x: tracejit.cond(x.sum() > 0, lambda a: a * 2.0, lambda a: -a, x)
    xs = RNG.randn(6, 3)
    assert_tree_close(tracejit.vmap(f)(xs), loop(f, [xs], [0], 6))


def test_while_with_batched_predicate_runs_each_example_its_own_trip_count():
    def collatz_steps(n):
        def body(c):
            k, s = c
            return tnp.where(k % 2 == 0, k // 2, 3 * k + 1), s + 1
        return tracejit.while_loop(lambda c: c[0] != 1, body, (n, 0))[1]
    ns = np.array([1, 6, 7, 27])
    np.testing.assert_array_equal(tracejit.vmap(collatz_steps)(ns), [0, 8, 16, 111])
    jf = tracejit.jit(tracejit.vmap(collatz_steps), backend="cpu")
    np.testing.assert_array_equal(jf(ns), [0, 8, 16, 111])


def test_scan_carry_becomes_batched_in_the_body():
    # the carry starts unbatched (zeros) and becomes batched through xs
    f = lambda xs: tracejit.scan(lambda c, x: (c + x, c * x), np.zeros(2), xs)
    xs = RNG.randn(B, 4, 2)
    assert_tree_close(tracejit.vmap(f)(xs), loop(f, [xs], [0]))
    assert_tree_close(tracejit.vmap(f, in_axes=1)(xs.transpose(1, 0, 2)), loop(f, [xs], [0]))


# --- pytrees, None, out_axes, errors ----------------------------------------------------
def test_pytrees_and_none_in_in_axes():
    def f(p, batch):
        return {"y": tnp.tanh(batch["x"] @ p["w"] + p["b"]), "s": batch["s"] * 2}
    p = {"w": RNG.randn(3, 2), "b": RNG.randn(2)}
    batch = {"x": RNG.randn(5, 3), "s": np.float64(1.5)}
    out = tracejit.vmap(f, in_axes=(None, {"x": 0, "s": None}))(p, batch)
    assert out["y"].shape == (5, 2) and out["s"].shape == (5,)
    ref = loop(lambda x: f(p, {"x": x, "s": batch["s"]}), [batch["x"]], [0], 5)
    assert_tree_close(out, ref)


def test_out_axes_none_and_axis_size():
    f = lambda x, w: (x * w, w.sum())
    xs, w = RNG.randn(4, 3), RNG.randn(3)
    y, s = tracejit.vmap(f, in_axes=(0, None), out_axes=(0, None))(xs, w)
    np.testing.assert_allclose(y, xs * w)
    np.testing.assert_allclose(s, w.sum())
    out = tracejit.vmap(lambda w: w * 2, in_axes=None, axis_size=3)(w)
    np.testing.assert_allclose(out, np.stack([w * 2] * 3))
    with pytest.raises(ValueError, match="depends on the batch"):
        tracejit.vmap(f, in_axes=(0, None), out_axes=None)(xs, w)
    with pytest.raises(ValueError, match="axis_size"):
        tracejit.vmap(f, in_axes=None)(xs, w)
    with pytest.raises(tracejit.ShapeError, match="batch sizes differ"):
        tracejit.vmap(f)(xs, RNG.randn(5, 3))


def test_nested_vmap_is_an_outer_product():
    f = lambda x, y: tnp.sum(x * y)
    xs, ys = RNG.randn(4, 3), RNG.randn(5, 3)
    out = tracejit.vmap(tracejit.vmap(f, in_axes=(None, 0)), in_axes=(0, None))(xs, ys)
    np.testing.assert_allclose(out, xs @ ys.T)


# --- composition with grad, jit, custom_vjp, stop_gradient --------------------------------
def _loss(w, x, y):
    h = tnp.tanh(x @ w["a"]) @ w["b"]
    return tnp.sum((h - y) ** 2)


def _params():
    return {"a": RNG.randn(3, 4) * 0.5, "b": RNG.randn(4, 2) * 0.5}


def test_per_example_gradients_match_a_loop():
    w, xs, ys = _params(), RNG.randn(5, 3), RNG.randn(5, 2)
    per_ex = tracejit.vmap(tracejit.grad(_loss), in_axes=(None, 0, 0))
    ref = loop(lambda x, y: tracejit.grad(_loss)(w, x, y), [xs, ys], [0, 0], 5)
    assert_tree_close(per_ex(w, xs, ys), ref)
    # the sum of the per-example gradients is the batch gradient
    total = tracejit.grad(lambda w: sum(_loss(w, x, y) for x, y in zip(xs, ys)))(w)
    assert_tree_close(tracejit.tree_map(lambda g: g.sum(0), per_ex(w, xs, ys)), total,
                      rtol=1e-9, atol=1e-9)


def test_per_example_gradients_compiled_on_cpu():
    w, xs, ys = _params(), RNG.randn(5, 3), RNG.randn(5, 2)
    per_ex = tracejit.vmap(tracejit.grad(_loss), in_axes=(None, 0, 0))
    got = tracejit.jit(per_ex, backend="cpu")(w, xs, ys)
    assert_tree_close(got, per_ex(w, xs, ys), rtol=1e-9, atol=1e-9)


def test_grad_of_vmap_and_second_order():
    w, xs, ys = _params(), RNG.randn(4, 3), RNG.randn(4, 2)

    def batch_loss(w, xs, ys):
        return tnp.mean(tracejit.vmap(_loss, in_axes=(None, 0, 0))(w, xs, ys))
    check_grads(batch_loss, (w, xs, ys), order=2)
    g = tracejit.grad(batch_loss)(w, xs, ys)
    ref = tracejit.grad(lambda w: sum(_loss(w, x, y) for x, y in zip(xs, ys)) / 4)(w)
    assert_tree_close(g, ref, rtol=1e-9, atol=1e-9)


def test_check_grads_of_batched_control_flow():
    def f(w, xs):
        def body(c, x):
            c = tracejit.cond(x.sum() > 0, lambda c: tnp.tanh(c * w + x), lambda c: c * 0.5, c)
            return c, c.sum()
        return tracejit.scan(body, tnp.zeros(3), xs)[1]
    w, xs = RNG.randn(3), RNG.randn(4, 5, 3)
    check_grads(lambda w, xs: tnp.sum(tracejit.vmap(f, in_axes=(None, 0))(w, xs) ** 2),
                (w, xs), order=2)


def test_custom_vjp_under_vmap():
    @tracejit.custom_vjp
    def clip_grad(x):
        return x

    clip_grad.defvjp(lambda x: (x, None), lambda _, g: (tnp.clip(g, -1.0, 1.0),))

    def f(w, x):
        return tnp.sum(clip_grad(x * w) * 10.0)
    w, xs = RNG.randn(3), RNG.randn(4, 3)
    g = tracejit.vmap(tracejit.grad(f), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(g, xs * 1.0)          # each example: clipped ct 1 times x
    g = tracejit.grad(lambda w: tnp.sum(tracejit.vmap(f, in_axes=(None, 0))(w, xs)))(w)
    np.testing.assert_allclose(g, xs.sum(0))         # w is shared: cotangents summed


def test_stop_gradient_under_vmap():
    f = lambda x: tnp.sum(x * tracejit.stop_gradient(x))
    xs = RNG.randn(4, 3)
    g = tracejit.grad(lambda xs: tnp.sum(tracejit.vmap(f)(xs)))(xs)
    np.testing.assert_allclose(g, xs)


def test_fusion_instructions_batch_as_their_body():
    fn = tracejit.make_ir(lambda x, y: tnp.exp(x) * y + tnp.sum(x))(np.ones(3), np.ones(3))
    fused = fuse(fn)
    assert any(i.prim == "fusion" for i in fused.body)
    xs, y = RNG.randn(B, 3), RNG.randn(3)
    out, flags = batch_eval(fused, [xs, y], [True, False])
    ref = np.stack([np.exp(x) * y + np.sum(x) for x in xs])
    np.testing.assert_allclose(out[0], ref)
    assert flags == [True]


def test_vmap_of_random_draws_with_batched_keys():
    keys = tracejit.random.split(tracejit.random.key(0), 4)
    draw = tracejit.vmap(lambda k: tracejit.random.normal(k, (3,)))
    got = draw(keys)
    np.testing.assert_allclose(got, np.stack([tracejit.random.normal(k, (3,)) for k in keys]))
    np.testing.assert_allclose(tracejit.jit(draw, backend="cpu")(keys), got, rtol=1e-6)


def test_vmap_inside_jit_and_jit_inside_vmap_agree():
    f = lambda x, w: tnp.tanh(x @ w).sum()
    xs, w = RNG.randn(4, 3), RNG.randn(3, 2)
    ref = loop(f, [xs, w], [0, None], 4)
    np.testing.assert_allclose(tracejit.jit(tracejit.vmap(f, in_axes=(0, None)))(xs, w), ref)
    np.testing.assert_allclose(tracejit.vmap(tracejit.jit(f), in_axes=(0, None))(xs, w), ref)
    np.testing.assert_allclose(
        tracejit.jit(tracejit.vmap(f, in_axes=(0, None)), backend="reference")(xs, w), ref)


# --- hypothesis: vmap of tracejit.numpy functions, drawn shapes and batch axes -----------
from hypothesis import given, settings, strategies as st  # noqa: E402

TNP_UNARY = {
    "exp": tnp.exp, "tanh": tnp.tanh, "sin": tnp.sin, "abs": tnp.abs, "square": tnp.square,
    "sqrt_abs": lambda x: tnp.sqrt(tnp.abs(x)), "log1p_abs": lambda x: tnp.log1p(tnp.abs(x)),
    "sum": lambda x: tnp.sum(x), "sum_last": lambda x: tnp.sum(x, axis=-1, keepdims=True),
    "mean0": lambda x: tnp.mean(x, axis=0), "max": lambda x: tnp.max(x, axis=-1),
    "var": lambda x: tnp.var(x, axis=0), "argmax": lambda x: tnp.argmax(x, axis=-1),
    "cumsum": lambda x: tnp.cumsum(x, axis=0), "sort": lambda x: tnp.sort(x, axis=-1),
    "transpose": lambda x: tnp.transpose(x), "ravel": tnp.ravel, "flip": lambda x: tnp.flip(x, 0),
    "roll": lambda x: tnp.roll(x, 1, axis=0), "expand": lambda x: tnp.expand_dims(x, 0),
    "slice": lambda x: x[1:], "step": lambda x: x[::-2], "index": lambda x: x[-1],
    "fancy": lambda x: x[np.array([0, -1, 0])], "diff": lambda x: tnp.diff(x, axis=0),
    "pad": lambda x: tnp.pad(x, 1), "tile": lambda x: tnp.tile(x, 2),
    "concat": lambda x: tnp.concatenate([x, x * 2], axis=0),
    "stack": lambda x: tnp.stack([x, -x], axis=-1), "clip": lambda x: tnp.clip(x, -0.5, 0.5),
    "softmax": lambda x: tnp.exp(x) / tnp.sum(tnp.exp(x), axis=-1, keepdims=True),
    "outer": lambda x: tnp.outer(x, x), "where": lambda x: tnp.where(x > 0, x, x * 0.1),
}
TNP_BINARY = {
    "add": tnp.add, "multiply": tnp.multiply, "maximum": tnp.maximum, "less": tnp.less,
    "atan_like": lambda x, y: x / (1 + y * y), "power": lambda x, y: tnp.abs(x) ** y,
    "where": lambda x, y: tnp.where(x > y, x, y), "logaddexp": tnp.logaddexp,
}

shapes_1 = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(sorted(TNP_UNARY)), shape=shapes_1, data=st.data())
def test_vmap_of_tnp_unary(name, shape, data):
    f = TNP_UNARY[name]
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    size = data.draw(st.integers(1, 3))
    xs = np.random.RandomState(data.draw(st.integers(0, 99))).randn(
        *np.insert(np.array(shape), axis % (len(shape) + 1), size))
    assert_tree_close(tracejit.vmap(f, in_axes=axis)(xs),
                      loop(f, [xs], [axis % xs.ndim], size))


@settings(max_examples=6, deadline=None)
@given(name=st.sampled_from(sorted(TNP_BINARY)), shape=shapes_1, data=st.data())
def test_vmap_of_tnp_binary_with_broadcasting(name, shape, data):
    f = TNP_BINARY[name]
    rng = np.random.RandomState(data.draw(st.integers(0, 99)))
    y_shape = shape[data.draw(st.integers(0, len(shape))):]   # a broadcasting suffix
    ax = data.draw(st.sampled_from([(0, 0), (0, None), (None, 0), (-1, 0)]))
    x = rng.randn(*shape)
    y = rng.randn(*y_shape)
    args = batch_args([x, y], ax)
    axes = tuple(None if a is None else a % np.ndim(arg) for a, arg in zip(ax, args))
    assert_tree_close(tracejit.vmap(f, in_axes=ax)(*args), loop(f, args, axes))


@pytest.mark.parametrize("name", ["softmax", "fancy", "cumsum", "sort", "where", "var"])
def test_vmap_of_tnp_compiled_on_cpu(name):
    """The batched programs of the reference tests, compiled by the cpu backend."""
    f = TNP_UNARY[name]
    xs = RNG.randn(3, 4, 5)
    got = tracejit.jit(tracejit.vmap(f, in_axes=1), backend="cpu")(xs)
    assert_tree_close(got, loop(f, [xs], [1], 4), rtol=1e-9, atol=1e-12)
