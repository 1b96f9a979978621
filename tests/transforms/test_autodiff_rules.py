"""Every differentiable primitive's VJP and JVP rules against central finite
differences in float64 (and against each other), on hypothesis-drawn
shapes, attributes and values chosen away from kinks."""
import itertools
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit.primitives import PRIMITIVES, linalg_lapack
from tracejit.primitives import conv as C, elementwise as E, linalg as L, reduce as R, shape as S

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ad_check import check_grads

SETTINGS = settings(max_examples=12, deadline=None)
shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2 ** 16)


def _away(rng, shape, lo=0.1, hi=2.0):
    """Values with |x| in [lo, hi], random signs."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _distinct(rng, shape, gap=0.1):
    """Distinct values at least ``gap`` apart (no ties for max/min)."""
    n = int(np.prod(shape, dtype=np.int64))
    vals = (rng.permutation(n) - n / 2) * gap + rng.uniform(0, gap / 10, size=n)
    return vals.reshape(shape)


# --- elementwise ----------------------------------------------------------------------
UNARY_DOMAIN = {
    "neg": lambda r, s: r.uniform(-2, 2, s), "exp": lambda r, s: r.uniform(-2, 2, s),
    "log": lambda r, s: r.uniform(0.1, 3, s), "log1p": lambda r, s: r.uniform(-0.8, 3, s),
    "expm1": lambda r, s: r.uniform(-2, 2, s), "tanh": lambda r, s: r.uniform(-2, 2, s),
    "logistic": lambda r, s: r.uniform(-4, 4, s), "sqrt": lambda r, s: r.uniform(0.1, 3, s),
    "rsqrt": lambda r, s: r.uniform(0.2, 3, s), "sin": lambda r, s: r.uniform(-4, 4, s),
    "cos": lambda r, s: r.uniform(-4, 4, s), "sinh": lambda r, s: r.uniform(-3, 3, s),
    "erf": lambda r, s: r.uniform(-2, 2, s),
    "abs": _away, "sign": _away,
    # piecewise constant: keep away from the integers and half-integers
    "floor": lambda r, s: r.randint(-3, 3, s) + r.uniform(0.1, 0.4, s),
    "ceil": lambda r, s: r.randint(-3, 3, s) + r.uniform(0.1, 0.4, s),
    "round": lambda r, s: r.randint(-3, 3, s) + r.uniform(0.1, 0.4, s),
}


@pytest.mark.parametrize("name", sorted(UNARY_DOMAIN))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary(name, shape, seed):
    rng = np.random.RandomState(seed)
    prim = PRIMITIVES[name]
    check_grads(lambda x: prim(x), [UNARY_DOMAIN[name](rng, shape)], seed)


def _rem_args(r, s):
    y = _away(r, s, 0.5, 2.0)
    return [(r.randint(-3, 3, s) + r.uniform(0.1, 0.9, s)) * y, y]


def _max_args(r, s):
    x = r.uniform(-2, 2, s)
    return [x, x + _away(r, s, 0.1, 1.0)]


BINARY_DOMAIN = {
    "add": lambda r, s: [r.randn(*s), r.randn(*s)],
    "sub": lambda r, s: [r.randn(*s), r.randn(*s)],
    "mul": lambda r, s: [r.randn(*s), r.randn(*s)],
    "div": lambda r, s: [r.randn(*s), _away(r, s, 0.5, 2.0)],
    "rem": _rem_args,
    "pow": lambda r, s: [r.uniform(0.2, 2, s), r.uniform(-2, 2, s)],
    "atan2": lambda r, s: [r.randn(*s), r.uniform(0.5, 2, s)],   # x > 0: away from the cut
    "max": _max_args, "min": _max_args,
    "guard": lambda r, s: [_away(r, s, 0.5, 2.0), r.randn(*s)],
}


def test_guard_is_zero_where_the_cotangent_is_zero():
    g = np.array([0.0, 0.0, -0.0, 2.0, 1.0])
    v = np.array([np.nan, np.inf, 3.0, np.inf, np.nan])
    for backend in ("reference", "cpu"):
        out = tracejit.jit(lambda g, v: PRIMITIVES["guard"](g, v), backend=backend)(g, v)
        np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, np.inf, np.nan])


def test_second_derivative_through_a_zero_cotangent():
    """d/dg of guard(g, g * d) at g == 0 is d (the select form gave 0)."""
    def f(g, x):
        return tnp.sum(tracejit.vjp(tnp.tanh, x)[1](g)[0])
    x = np.array([0.3, -1.2])
    dg = tracejit.grad(f)(np.zeros(2), x)
    np.testing.assert_allclose(dg, 1 - np.tanh(x) ** 2, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(BINARY_DOMAIN))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_binary(name, shape, seed):
    rng = np.random.RandomState(seed)
    prim = PRIMITIVES[name]
    check_grads(lambda x, y: prim(x, y), BINARY_DOMAIN[name](rng, shape), seed)


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_select(shape, seed):
    rng = np.random.RandomState(seed)
    pred = rng.rand(*shape) > 0.5
    check_grads(lambda x, y: E.select(pred, x, y), [rng.randn(*shape), rng.randn(*shape)], seed)


def test_convert():
    x = np.array([0.5, -1.25, 3.0])
    check_grads(lambda x: E.convert(x, dtype="float64"), [x])
    g = tracejit.grad(lambda x: tnp.sum(E.convert(x, dtype="float32") * 2))(x)
    assert g.dtype == np.float64 and np.allclose(g, 2.0)
    # integer conversions carry no gradient
    g = tracejit.grad(lambda x: tnp.sum(x * E.convert(E.convert(x, dtype="int64"),
                                                        dtype="float64")))(x)
    np.testing.assert_allclose(g, np.floor(x) * (x > 0) + np.ceil(x) * (x < 0))


def test_max_min_ties_split_equally():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 1.0, 4.0])
    gx, gy = tracejit.grad(lambda x, y: tnp.sum(tnp.maximum(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gy, [0.5, 0.0, 1.0])
    gx, gy = tracejit.grad(lambda x, y: tnp.sum(tnp.minimum(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gy, [0.5, 1.0, 0.0])


def test_abs_and_pow_conventions_at_zero():
    assert tracejit.grad(lambda x: tnp.abs(x))(0.0) == 0.0
    # d/dx x**0 = 0 at x = 0; d/dy 0**y = 0 (not NaN)
    gx, gy = tracejit.grad(lambda x, y: E.pow(x, y), argnums=(0, 1))(
        np.array(0.0), np.array(0.0))
    assert gx == 0.0 and gy == 0.0
    assert tracejit.grad(lambda x: E.pow(x, np.array(3.0)))(np.array(0.0)) == 0.0


# --- shape ------------------------------------------------------------------------------
@st.composite
def broadcast_cases(draw):
    out = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple))
    dims = tuple(sorted(draw(st.sets(st.integers(0, len(out) - 1)))))
    shape = tuple(draw(st.sampled_from([1, out[d]])) for d in dims)
    return shape, out, dims


@SETTINGS
@given(case=broadcast_cases(), seed=seeds)
def test_broadcast_in_dim(case, seed):
    shape, out, dims = case
    x = np.random.RandomState(seed).randn(*shape)
    check_grads(lambda x: S.broadcast_in_dim(x, shape=out, broadcast_dimensions=dims), [x], seed)


@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_reshape_transpose_rev(shape, seed, data):
    x = np.random.RandomState(seed).randn(*shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, max(len(shape) - 1, 0))))))\
        if shape else ()
    check_grads(lambda x: S.reshape(x, new_shape=(x.size,)), [x], seed)
    check_grads(lambda x: S.transpose(x, permutation=perm), [x], seed)
    check_grads(lambda x: S.rev(x, dimensions=dims), [x], seed)


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), seed=seeds,
       data=st.data())
def test_slice(shape, seed, data):
    start, limit, strides = [], [], []
    for n in shape:
        s = data.draw(st.integers(0, n))
        start.append(s)
        limit.append(data.draw(st.integers(s, n)))
        strides.append(data.draw(st.integers(1, 3)))
    x = np.random.RandomState(seed).randn(*shape)
    check_grads(lambda x: S.slice(x, start=tuple(start), limit=tuple(limit),
                                  strides=tuple(strides)), [x], seed)


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds,
       data=st.data())
def test_pad(shape, seed, data):
    config = []
    for n in shape:
        it = data.draw(st.integers(0, 2))
        size = n + (n - 1) * it
        lo = data.draw(st.integers(-(size - 1), 2))   # negative: cropping
        hi = data.draw(st.integers(-(size + lo - 1) if size + lo > 1 else 0, 2))
        config.append((lo, hi, it))
    rng = np.random.RandomState(seed)
    check_grads(lambda x, v: S.pad(x, v, config=tuple(config)),
                [rng.randn(*shape), np.array(rng.randn())], seed)


@SETTINGS
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), seed=seeds,
       data=st.data())
def test_concatenate(shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    rng = np.random.RandomState(seed)
    xs = [rng.randn(*(shape[:axis] + (n,) + shape[axis + 1:])) for n in sizes]
    check_grads(lambda *xs: S.concatenate(*xs, axis=axis), xs, seed)


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       idx_shape=st.lists(st.integers(1, 3), max_size=2).map(tuple), seed=seeds, data=st.data())
def test_gather_scatter_add(shape, idx_shape, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.RandomState(seed)
    n = shape[axis]
    idx = rng.randint(-n - 1, n + 1, size=idx_shape)   # negative and clamped indices, repeats
    x = rng.randn(*shape)
    check_grads(lambda x: S.gather(x, idx, axis=axis), [x], seed)
    upd = rng.randn(*(shape[:axis] + idx_shape + shape[axis + 1:]))
    check_grads(lambda x, u: S.scatter_add(x, idx, u, axis=axis), [x, upd], seed)


# --- reductions -------------------------------------------------------------------------
@SETTINGS
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), seed=seeds,
       data=st.data())
def test_reductions(shape, seed, data):
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)))))
    rng = np.random.RandomState(seed)
    check_grads(lambda x: R.reduce_sum(x, axes=axes), [rng.randn(*shape)], seed)
    check_grads(lambda x: R.reduce_max(x, axes=axes), [_distinct(rng, shape)], seed)
    check_grads(lambda x: R.reduce_min(x, axes=axes), [_distinct(rng, shape)], seed)
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    x.flat[rng.randint(x.size, size=data.draw(st.integers(0, 2)))] = 0.0   # exact zeros
    check_grads(lambda x: R.reduce_prod(x, axes=axes), [x], seed)


def test_reduce_max_ties_share():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]])
    g = tracejit.grad(lambda x: tnp.sum(tnp.max(x, axis=1) * np.array([1.0, 4.0])))(x)
    np.testing.assert_array_equal(g, [[0, 0.5, 0.5], [2.0, 0, 2.0]])


def test_reduce_prod_with_zeros_exact():
    g = tracejit.grad(lambda x: tnp.prod(x))(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 6.0, 0.0])
    g = tracejit.grad(lambda x: tnp.prod(x))(np.array([0.0, 0.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])


# --- contractions -------------------------------------------------------------------------
@st.composite
def dot_cases(draw):
    nb, nc, nl, nr = (draw(st.integers(0, 2)), draw(st.integers(0, 2)),
                      draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = st.integers(1, 3)
    b = [draw(size) for _ in range(nb)]
    c = [draw(size) for _ in range(nc)]
    lf = [draw(size) for _ in range(nl)]
    rf = [draw(size) for _ in range(nr)]
    # logical lhs dims: batch, contract, free; then a random placement
    lperm = draw(st.permutations(range(nb + nc + nl)))
    rperm = draw(st.permutations(range(nb + nc + nr)))
    lshape = [0] * len(lperm)
    rshape = [0] * len(rperm)
    for logical, pos in enumerate(lperm):
        lshape[pos] = (b + c + lf)[logical]
    for logical, pos in enumerate(rperm):
        rshape[pos] = (b + c + rf)[logical]
    lb, lc = tuple(lperm[:nb]), tuple(lperm[nb:nb + nc])
    rb, rc = tuple(rperm[:nb]), tuple(rperm[nb:nb + nc])
    return tuple(lshape), tuple(rshape), ((lc, rc), (lb, rb))


@settings(max_examples=40, deadline=None)
@given(case=dot_cases(), seed=seeds)
def test_dot_general(case, seed):
    lshape, rshape, dn = case
    rng = np.random.RandomState(seed)
    check_grads(lambda a, b: L.dot_general(a, b, dimension_numbers=dn),
                [rng.randn(*lshape), rng.randn(*rshape)], seed)


@st.composite
def conv_cases(draw):
    nd = draw(st.integers(1, 2))
    g = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    spatial, window, strides, padding, lhs_dil, rhs_dil = [], [], [], [], [], []
    for _ in range(nd):
        k = draw(st.integers(1, 3))
        rd = draw(st.integers(1, 2))
        ld = draw(st.integers(1, 2))
        s = draw(st.integers(1, 3))
        size = draw(st.integers(1, 5))
        lo, hi = draw(st.integers(-1, 2)), draw(st.integers(-1, 2))
        n_eff = (size - 1) * ld + 1 + lo + hi
        if n_eff < (k - 1) * rd + 1:
            hi += (k - 1) * rd + 1 - n_eff
        spatial.append(size), window.append(k), strides.append(s)
        padding.append((lo, hi)), lhs_dil.append(ld), rhs_dil.append(rd)
    return dict(lhs=(n, *spatial, g * cg), rhs=(*window, cg, g * og),
                attrs=dict(window_strides=tuple(strides), padding=tuple(padding),
                           lhs_dilation=tuple(lhs_dil), rhs_dilation=tuple(rhs_dil),
                           feature_group_count=g))


@settings(max_examples=60, deadline=None)
@given(case=conv_cases(), seed=seeds)
def test_conv_general(case, seed):
    rng = np.random.RandomState(seed)
    check_grads(lambda x, w: C.conv_general(x, w, **case["attrs"]),
                [rng.randn(*case["lhs"]), rng.randn(*case["rhs"])], seed)


@st.composite
def window_cases(draw):
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple))
    dims, strides, pads = [], [], []
    for n in shape:
        k = draw(st.integers(1, min(n + 1, 3)))
        dims.append(k)
        strides.append(draw(st.integers(1, 2)))
        lo = draw(st.integers(0, k - 1))
        hi = draw(st.integers(0, k - 1))
        if n + lo + hi < k:
            hi = k - n - lo
        pads.append((lo, hi))
    return shape, dict(window_dimensions=tuple(dims), window_strides=tuple(strides),
                       padding=tuple(pads))


@SETTINGS
@given(case=window_cases(), seed=seeds)
def test_reduce_window(case, seed):
    shape, window = case
    rng = np.random.RandomState(seed)
    check_grads(lambda x: C.reduce_window(x, computation="sum", **window),
                [rng.randn(*shape)], seed)
    # max: every window must see a real element (padding < window) and no ties
    check_grads(lambda x: C.reduce_window(x, computation="max", **window),
                [_distinct(rng, shape)], seed)


@SETTINGS
@given(case=window_cases(), seed=seeds)
def test_select_and_scatter_add(case, seed):
    shape, window = case
    rng = np.random.RandomState(seed)
    operand = _distinct(rng, shape)
    out_shape = PRIMITIVES["reduce_window"].shape_rule(
        tracejit.ir.TensorType(shape, "float64"), computation="max", **window).shape
    check_grads(lambda s: C.select_and_scatter_add(s, operand, **window),
                [rng.randn(*out_shape)], seed)


def test_max_pool_grad_of_grad():
    """Second derivatives through max pooling: the vjp of
    select_and_scatter_add (a gather of the argmax positions)."""
    x = _distinct(np.random.RandomState(3), (1, 4, 4, 1))
    window = dict(window_dimensions=(1, 2, 2, 1), window_strides=(1, 2, 2, 1),
                  padding=((0, 0),) * 4)

    def f(x):
        return tnp.sum(C.reduce_window(x, computation="max", **window) ** 3)
    check_grads(lambda x: tracejit.grad(f)(x), [x], modes=("rev", "fwd"))


# --- second order: the rules' own operations are differentiable ------------------------
@pytest.mark.parametrize("name", ["exp", "log", "tanh", "logistic", "sqrt", "rsqrt", "sin",
                                  "erf", "log1p"])
def test_unary_second_order(name):
    rng = np.random.RandomState(0)
    x = UNARY_DOMAIN[name](rng, (4,))
    prim = PRIMITIVES[name]
    check_grads(lambda x: tracejit.grad(lambda y: tnp.sum(prim(y)))(x), [x], rtol=1e-5)


@pytest.mark.parametrize("name", ["mul", "div", "pow", "max"])
def test_binary_second_order(name):
    rng = np.random.RandomState(1)
    args = BINARY_DOMAIN[name](rng, (3,))
    prim = PRIMITIVES[name]
    check_grads(lambda x, y: tracejit.grad(lambda a, b: tnp.sum(prim(a, b) ** 2),
                                           argnums=(0, 1))(x, y), args, rtol=1e-5)


def test_conv_and_dot_second_order():
    rng = np.random.RandomState(2)
    attrs = dict(window_strides=(2,), padding=((1, 0),), lhs_dilation=(1,),
                 rhs_dilation=(2,), feature_group_count=2)
    x, w = rng.randn(2, 5, 4), rng.randn(2, 2, 4)
    check_grads(lambda x, w: tracejit.grad(
        lambda a, b: tnp.sum(tnp.tanh(C.conv_general(a, b, **attrs))), argnums=(0, 1))(x, w),
        [x, w], rtol=1e-5)
    a, b = rng.randn(2, 3, 4), rng.randn(2, 4, 3)
    check_grads(lambda a, b: tracejit.grad(lambda p, q: tnp.sum(tnp.sin(p @ q)),
                                           argnums=(0, 1))(a, b), [a, b], rtol=1e-5)


# --- composite tracejit.numpy functions ----------------------------------------------------
def _softmax(x):
    e = tnp.exp(x - tnp.max(x, axis=-1, keepdims=True))
    return e / tnp.sum(e, axis=-1, keepdims=True)


TNP_CASES = {
    "softmax": (_softmax, lambda r: [r.randn(3, 4)]),
    "logaddexp": (tnp.logaddexp, lambda r: [r.randn(5), r.randn(5)]),
    "mean_var_std": (lambda x: (tnp.mean(x, 0), tnp.var(x, 1), tnp.std(x)),
                     lambda r: [r.randn(3, 4)]),
    "matmul": (tnp.matmul, lambda r: [r.randn(2, 3, 4), r.randn(4, 2)]),
    "einsum": (lambda a, b: tnp.einsum("ijk,kj->i", a, b), lambda r: [r.randn(2, 3, 4),
                                                                        r.randn(4, 3)]),
    "getitem": (lambda x: x[np.array([0, 2, 2]), 1:, ::-1], lambda r: [r.randn(3, 4, 2)]),
    "at_set_add": (tracejit.jit(lambda x, v: x.at[1:3].set(v).at[0].add(v[0] * 2),
                                backend="reference"),   # .at needs a tracer; jit inlines
                   lambda r: [r.randn(4, 3), r.randn(2, 3)]),
    "cumsum": (lambda x: tnp.cumsum(x, axis=1), lambda r: [r.randn(2, 5)]),
    "clip_where": (lambda x: tnp.where(x > 0, tnp.clip(x, -0.5, 0.7), x * x),
                   lambda r: _away(r, (6,), 0.05, 1.5) + 0.0),
    "stack_split_pad_tile": (
        lambda x: tnp.pad(tnp.tile(tnp.stack(tnp.split(x, 2, axis=1))[1], (2, 1)), 1),
        lambda r: [r.randn(3, 4)]),
    "take_along_axis": (lambda x: tnp.take_along_axis(x, np.array([[1, 0], [2, 2]]), 1),
                        lambda r: [r.randn(2, 3)]),
    "norm_like": (lambda x: tnp.sqrt(tnp.sum(x * x, axis=0)) / (1 + tnp.abs(x[0])),
                  lambda r: [_away(r, (3, 2), 0.2, 2.0)]),
}


@pytest.mark.parametrize("name", sorted(TNP_CASES))
def test_tnp_functions(name):
    f, make = TNP_CASES[name]
    args = make(np.random.RandomState(7))
    if isinstance(args, np.ndarray):
        args = [args]
    check_grads(f, args, seed=11)


def test_fusion_kernel_gradients_are_its_bodys():
    """A fused kernel (tracejit.transforms.fusion) differentiates as its body."""
    from tracejit.stages import simplify as optimize
    from tracejit.core import eval_function
    from tracejit.transforms.fusion import fuse

    def softmax_and_sum(x, y):
        e = tnp.exp(x - tnp.max(x, axis=1, keepdims=True))
        return e / tnp.sum(e, axis=1, keepdims=True) * y, tnp.sum(tnp.tanh(x) * y, axis=1)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    fused = fuse(optimize(tracejit.make_ir(softmax_and_sum)(x, y)))
    assert [ins.prim for ins in fused.body] == ["fusion"]
    check_grads(lambda x, y: eval_function(fused, [x, y]), [x, y], seed=12)


# --- the registry ----------------------------------------------------------------------
#: Differentiable primitives whose rules say "zero almost everywhere", or
#: whose outputs are bool (no cotangent can arrive).
ZERO_RULES = {"sign", "floor", "ceil", "round", "is_finite", "not", "and", "or", "xor",
              "eq", "ne", "lt", "le", "gt", "ge"}
#: Primitives with a dedicated test above (fusion included), and the structured
#: ones checked in test_control_flow.py and test_autodiff_api.py (custom_vjp_call),
#: test_jacobians.py (custom_jvp_call), test_subfunction.py (call).
DEDICATED = {"select", "convert", "broadcast_in_dim", "reshape", "transpose", "rev", "slice",
             "pad", "concatenate", "gather", "scatter_add", "reduce_sum", "reduce_max",
             "reduce_min", "reduce_prod", "dot_general", "conv_general", "reduce_window",
             "select_and_scatter_add", "cond", "scan", "while", "custom_vjp_call",
             "custom_jvp_call", "call", "fusion"} | set(linalg_lapack.NAMES)   # test_tnp_linalg_lapack.py


def test_every_differentiable_primitive_has_rules():
    missing_vjp = [n for n, p in PRIMITIVES.items() if p.differentiable and p.vjp is None]
    missing_jvp = [n for n, p in PRIMITIVES.items() if p.differentiable and p.jvp is None]
    assert not missing_vjp, f"differentiable primitives without a vjp rule: {missing_vjp}"
    assert not missing_jvp, f"differentiable primitives without a jvp rule: {missing_jvp}"


def test_every_differentiable_primitive_is_gradient_checked():
    checked = set(UNARY_DOMAIN) | set(BINARY_DOMAIN) | ZERO_RULES | DEDICATED
    unchecked = sorted(n for n, p in PRIMITIVES.items() if p.differentiable and n not in checked)
    assert not unchecked, f"add gradient checks for: {unchecked}"


def test_zero_rules_give_zero_gradients():
    x = np.array([0.3, -1.7, 2.5])
    for f in (tnp.sign, tnp.floor, tnp.ceil, tnp.round):
        np.testing.assert_array_equal(tracejit.grad(lambda x: tnp.sum(f(x) * x))(x), f(x))
    g = tracejit.grad(lambda x: tnp.sum(tnp.where(tnp.isfinite(x) & (x > 0), x, 0.0)))(x)
    np.testing.assert_array_equal(g, [1.0, 0.0, 1.0])


def test_pad_config_edges():
    # every combination of cropping and interior padding on a small vector
    x = np.arange(1.0, 5.0)
    for lo, hi, it in itertools.product([-2, 0, 1], [-1, 0, 2], [0, 1]):
        check_grads(lambda x, v: S.pad(x, v, config=((lo, hi, it),)), [x, np.array(0.5)])
