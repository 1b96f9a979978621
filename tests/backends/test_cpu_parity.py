"""The cpu backend computes what the reference interpreter computes.

Numba compile time dominates, so each test jits one function that applies
many primitives at once (a multi-output kernel per iteration space) on
fixed small shapes, and hypothesis draws the values: NaN and inf included,
which must propagate as they do in NumPy. Float32 agrees within a few ulp
(vmath's exp/log/tanh... and fused multiply-adds), float64 more tightly,
integers and booleans exactly.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit import lax
from tracejit.nn import functional as F
from tracejit.backends import cpu
from tracejit.primitives import PRIMITIVES, linalg_lapack
from tracejit.primitives import elementwise as ew

SETTINGS = settings(max_examples=25, deadline=None)
RTOL = {"float32": 2e-6, "float64": 1e-13}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def floats(dtype, lo=-1e3, hi=1e3, special=True):
    width = 32 if dtype == "float32" else 64
    finite = st.floats(lo, hi, width=width)
    return st.one_of(finite, st.sampled_from(SPECIAL)) if special else finite


def arrays(dtype, shape, elements=None):
    if elements is None:
        if dtype in ("float32", "float64"):
            elements = floats(dtype)
        elif dtype == "bool":
            elements = st.booleans()
        else:
            info = np.iinfo(dtype)
            elements = st.one_of(st.integers(-5, 5).filter(lambda v: v >= info.min),
                                 st.integers(int(info.min), int(info.max)))
    return hnp.arrays(dtype, shape, elements=elements)


def both(fun, *args, **jit_kw):
    """(cpu result, reference result) as lists of arrays."""
    got = tracejit.jit(fun, backend="cpu", **jit_kw)(*args)
    want = tracejit.jit(fun, backend="reference", **jit_kw)(*args)
    return tracejit.tree_leaves(got), tracejit.tree_leaves(want)


def check(got, want, rtol=None, atol=0.0):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        if g.dtype.kind == "f":
            tol = RTOL[g.dtype.name] if rtol is None else rtol
            np.testing.assert_allclose(g, w, rtol=tol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


# --- elementwise ---------------------------------------------------------------------

UNARY_FLOAT = ["neg", "exp", "log", "log1p", "expm1", "tanh", "logistic", "sqrt", "rsqrt",
               "sin", "cos", "sinh", "erf", "abs", "sign", "floor", "ceil", "round", "is_finite"]
BINARY_FLOAT = ["add", "sub", "mul", "div", "rem", "pow", "atan2", "max", "min",
                "eq", "ne", "lt", "le", "gt", "ge"]
UNARY_INT = ["neg", "abs", "sign", "not"]
BINARY_INT = ["add", "sub", "mul", "div", "rem", "max", "min", "and", "or", "xor",
              "eq", "ne", "lt", "le", "gt", "ge"]


def _apply(names, *xs):
    return [PRIMITIVES[n](*xs) for n in names]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@SETTINGS
@given(data=st.data())
def test_float_elementwise(dtype, data):
    x = data.draw(arrays(dtype, (9,)))
    y = data.draw(arrays(dtype, (9,)))
    got, want = both(lambda x, y: _apply(UNARY_FLOAT, x) + _apply(BINARY_FLOAT, x, y), x, y)
    # pow and rem lose relative precision near cancellation; compare them separately
    check(got, want, rtol=RTOL[dtype] * 8, atol=1e-30)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint32"])
@SETTINGS
@given(data=st.data())
def test_int_elementwise(dtype, data):
    x = data.draw(arrays(dtype, (9,)))
    y = data.draw(arrays(dtype, (9,)))
    e = data.draw(arrays(dtype, (9,), st.integers(0, 5)))
    got, want = both(lambda x, y, e: _apply(UNARY_INT, x) + _apply(BINARY_INT, x, y)
                     + [ew.pow(x, e)], x, y, e)
    check(got, want)


@SETTINGS
@given(data=st.data())
def test_bool_select_convert(data):
    p = data.draw(arrays("bool", (9,)))
    q = data.draw(arrays("bool", (9,)))
    x = data.draw(arrays("float32", (9,)))
    y = data.draw(arrays("float32", (9,)))
    i = data.draw(arrays("int32", (9,)))
    fin = data.draw(arrays("float64", (9,), st.floats(-1e6, 1e6)))

    def f(p, q, x, y, i, fin):
        bools = _apply(["and", "or", "xor", "eq", "ne", "lt", "ge", "max", "min"], p, q)
        return bools + [ew.not_(p), ew.select(p, x, y), ew.select(q, i, -i)] + [
            ew.convert(v, dtype=d) for v in (p, i, fin, x)
            for d in ("bool", "int32", "int64", "uint32", "float32", "float64")
            if not (v is x and d not in ("bool", "float64"))
            and not (v is fin and d == "uint32")]
    got, want = both(f, p, q, x, y, i, fin)
    check(got, want)


# --- reductions -----------------------------------------------------------------------

AXES = [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)]


def _reductions(x, axes_list):
    out = []
    for axes in axes_list:
        for name in ("reduce_sum", "reduce_max", "reduce_min"):
            out.append(PRIMITIVES[name](x, axes=axes))
    for axis in range(3):
        out.append(PRIMITIVES["argmax"](x, axis=axis, index_dtype="int32"))
        out.append(PRIMITIVES["argmin"](x, axis=axis, index_dtype="int64"))
    return out


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@SETTINGS
@given(data=st.data())
def test_reductions(dtype, data):
    x = data.draw(arrays(dtype, (3, 4, 5)))
    got, want = both(lambda x: _reductions(x, AXES), x)
    check(got, want, rtol=1e-5, atol=1e-3)


@SETTINGS
@given(x=arrays("float64", (3, 4, 5), st.floats(-2, 2)))
def test_products_float64(x):
    got, want = both(lambda x: [PRIMITIVES["reduce_prod"](x, axes=a) for a in AXES[:3]]
                     + _reductions(x, [(1,)]), x)
    check(got, want, rtol=1e-12)


# --- shapes and indexing --------------------------------------------------------------

@SETTINGS
@given(x=arrays("float32", (4, 6)), idx=arrays("int32", (5,), st.integers(-9, 9)))
def test_index_maps(x, idx):
    def f(x, idx):
        return [
            tnp.transpose(x) * 2,
            tnp.reshape(x, (2, 12)) + 1,
            tnp.reshape(x, (3, 8)) - 1,
            x[1:4:2, ::-1] * 3,
            PRIMITIVES["pad"](x, np.float32(0.5), config=((1, 2, 1), (-1, 0, 0))),
            tnp.concatenate([x, x * 2, x[:, :1]], axis=1),
            tnp.broadcast_to(x[:, None, :], (4, 3, 6)) + tnp.arange(3.0, dtype="float32")[:, None],
            PRIMITIVES["gather"](x, idx, axis=1),
            tnp.arange(6, dtype="float32") * x,
            x.sum(axis=0) + tnp.flip(x, 0).max(axis=0),
        ]
    got, want = both(f, x, idx)
    check(got, want)


@SETTINGS
@given(x=arrays("float32", (6, 5)), labels=arrays("int32", (6,), st.integers(0, 4)),
       upd=arrays("float32", (3,), st.floats(-10, 10)))
def test_gather_scatter(x, labels, upd):
    def f(x, labels, upd):
        logp = F.log_softmax(x, axis=1)
        picked = logp[tnp.arange(6), labels]
        hist = tnp.zeros(5, "float32").at[labels[:3]].add(upd)
        return picked, hist, PRIMITIVES["scatter_add"](x, labels[:3] - 2, tnp.ones((6, 3), "float32")
                                                       * upd, axis=1)
    got, want = both(f, x, labels, upd)
    check(got, want, rtol=1e-5)


# --- library calls --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_dot_general(dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(-5, 5, (2, 3, 4)).astype(dtype)
    b = rng.integers(-5, 5, (2, 4, 5)).astype(dtype)
    m = rng.integers(-5, 5, (4, 3)).astype(dtype)

    def f(a, b, m):
        return [
            lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))),     # batched
            lax.dot_general(a[0], m, (((0,), (1,)), ((), ()))),      # both transposed
            lax.dot_general(m, a[1], (((0,), (1,)), ((), ()))),      # rhs transposed
            a[0] @ b[1],
            tnp.dot(m[:, 0], m[:, 1]),
            tnp.einsum("bij,bjk->bik", a, b) + 1,
        ]
    got, want = both(f, a, b, m)
    check(got, want, rtol=1e-5 if dtype == "float32" else None)


@pytest.mark.parametrize("case", [
    dict(window_strides=(2, 1), padding=((1, 2), (0, 1)), lhs_dilation=(1, 1),
         rhs_dilation=(1, 2), feature_group_count=1),
    dict(window_strides=(1, 1), padding=((2, 2), (1, 1)), lhs_dilation=(2, 1),
         rhs_dilation=(1, 1), feature_group_count=2),
    dict(window_strides=(1, 1), padding=((0, 0), (0, 0)), lhs_dilation=(1, 1),
         rhs_dilation=(1, 1), feature_group_count=1),
])
def test_conv_general(case):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 6, 4)).astype(np.float32)
    k = 1 if case["padding"] == ((0, 0), (0, 0)) else 3
    w = rng.standard_normal((k, k, 4 // case["feature_group_count"], 6)).astype(np.float32)
    got, want = both(lambda x, w: lax.conv_general(x, w, **case), x, w)
    check(got, want, rtol=1e-4, atol=1e-5)


def test_pooling_and_conv_gradients():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)

    def loss(w, x):
        y = lax.conv_general(x, w, (1, 1), ((1, 1), (1, 1)))
        y = tnp.maximum(y, 0)
        p = lax.reduce_window(y, "max", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0)))
        a = lax.reduce_window(y, "sum", (1, 2, 2, 1), (1, 2, 2, 1), ((0, 0),) * 4)
        return tnp.sum(p * p) + tnp.mean(a)

    got, want = both(tracejit.value_and_grad(loss, argnums=(0, 1)), w, x)
    check(got, want, rtol=1e-4, atol=1e-4)


# --- control flow and random bits ----------------------------------------------------

def test_control_flow():
    def f(x, n):
        y = tracejit.cond(x.sum() > 0, lambda v: v * 2, lambda v: v - 1, x)
        i, z = tracejit.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 1.5), (0, y))

        def body(carry, xi):
            carry = tnp.tanh(carry + xi)
            return carry, carry * 2
        c, ys = tracejit.scan(body, x[0], x)
        return y, z, i, c, ys

    x = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    for v in (x, -x):
        got, want = both(f, v, 4)
        check(got, want, rtol=1e-5)


def test_scan_gradient():
    """Reverse-mode scan: a loop of compiled sub-plans updating their carries
    in place, and the per-step gradient accumulation."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((3, 12)).astype(np.float32) * 0.5
    u = rng.standard_normal((4, 12)).astype(np.float32) * 0.5
    xs = rng.standard_normal((6, 2, 3)).astype(np.float32)

    def loss(w, u, xs):
        def cell(carry, x):
            h, c = carry
            z = x @ w + h @ u
            c = F.sigmoid(z[:, :4]) * c + tnp.tanh(z[:, 4:8])
            h = F.sigmoid(z[:, 8:]) * tnp.tanh(c)
            return (h, c), h
        zero = tnp.zeros((2, 4), "float32")
        (h, c), hs = tracejit.scan(cell, (zero, zero), xs)
        return tnp.sum(hs * hs) + tnp.sum(c)
    got, want = both(tracejit.value_and_grad(loss, argnums=(0, 1)), w, u, xs)
    check(got, want, rtol=1e-5, atol=1e-6)


def test_random_bits():
    def f(key):
        k1, k2 = tracejit.random.split(key)
        return (PRIMITIVES["random_bits"](key, shape=(3, 7)), tracejit.random.uniform(k1, (4, 5)),
                tracejit.random.normal(k2, (6,)))
    got, want = both(f, tracejit.random.key(42))
    check(got, want, rtol=1e-6)


# --- tnp and the training ops -----------------------------------------------------------

@SETTINGS
@given(x=arrays("float32", (4, 5), st.floats(-20, 20)))
def test_numpy_functions(x):


    def f(x):
        return [F.softmax(x), F.log_softmax(x), F.logsumexp(x, axis=0), tnp.mean(x, 0),
                tnp.var(x, 1), tnp.std(x), tnp.cumsum(x, 1), tnp.where(x > 0, x, 0.1 * x),
                tnp.clip(x, -1, 2), PRIMITIVES["argsort"](x, axis=1, index_dtype="int32"),
                tnp.take_along_axis(x, tnp.argmax(x, 1)[:, None], 1), F.sigmoid(x), F.softplus(x),
                F.elu(x), tnp.abs(x),
                tnp.square(x).sum(), tnp.tril(x), x.max(axis=1, keepdims=True) - x]
    got, want = both(f, x)
    check(got, want, rtol=2e-5, atol=1e-5)


def test_mlp_step_and_donation():
    rng = np.random.default_rng(4)
    params = [{"w": rng.standard_normal((12, 8)).astype(np.float32) * 0.3,
               "b": np.zeros(8, np.float32)},
              {"w": rng.standard_normal((8, 3)).astype(np.float32) * 0.3,
               "b": np.zeros(3, np.float32)}]
    x = rng.standard_normal((16, 12)).astype(np.float32)
    y = rng.integers(0, 3, 16).astype(np.int32)

    def loss(params, x, y):
        h = tnp.maximum(x @ params[0]["w"] + params[0]["b"], 0)
        logits = h @ params[1]["w"] + params[1]["b"]
        return F.sparse_softmax_cross_entropy_with_logits(y, logits).mean()

    def step(params, x, y):
        value, grads = tracejit.value_and_grad(loss)(params, x, y)
        return tracejit.tree_map(lambda p, g: p - 0.1 * g, params, grads), value

    got, want = both(step, params, x, y)
    check(got, want, rtol=1e-5, atol=1e-6)

    jitted = tracejit.jit(step, backend="cpu", donate_argnums=0)
    ref = tracejit.jit(step, backend="reference")
    p = tracejit.tree_map(np.copy, params)
    new, _ = jitted(p, x, y)
    new2, _ = jitted(new, x, y)   # the first call's outputs, donated back
    want2, _ = ref(ref(params, x, y)[0], x, y)
    check(tracejit.tree_leaves(new2), tracejit.tree_leaves(want2), rtol=1e-5, atol=1e-6)
    # the updated parameters were written into the donated buffers
    for before, after in [(p, new), (new, new2)]:
        same = [a is b for a, b in zip(tracejit.tree_leaves(before), tracejit.tree_leaves(after))]
        assert all(same), same


def test_unusual_arguments():
    """Zero-size, read-only, non-contiguous and 0-d arguments, and calls
    from two threads at once."""
    import threading

    def f(x, y, s):
        return tnp.exp(x) * s, x.sum(axis=0) + y, tnp.zeros((0, 3), "float32") + y[:0, None]
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    ro = np.broadcast_to(np.float32(2), (4,))   # read-only, stride 0
    for args in [(x, ro, np.float32(0.5)), (x.T.copy().T, np.ones(4, np.float32), 2.0),
                 (np.zeros((0, 4), np.float32), np.ones(4, np.float32), 1.0)]:
        got, want = both(f, *args)
        check(got, want)
    g = tracejit.jit(f, backend="cpu")
    want = tracejit.tree_leaves(g(x, ro, 0.5))
    errors = []

    def worker():
        for _ in range(20):
            try:
                check(tracejit.tree_leaves(g(x, ro, 0.5)), want)
            except Exception as e:   # reported below
                errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_fallback_list_is_short():
    """Every primitive has a compiled lowering except these, which run their
    NumPy implementation from the plan: argsort (a sort: NumPy's is the
    tuned one), the matrix decompositions and solves (LAPACK through NumPy and
    SciPy, as NumPy itself), the differentiation markers, which autodiff
    removes before any backend sees a Function, call (simplify inlines it),
    and dimension_size (a shape
    read; a plan over symbolic sizes takes it as an argument instead,
    tracejit/symbolic.py)."""
    fallback = sorted(p for p in PRIMITIVES if cpu.lowering(p).startswith("NumPy"))
    assert fallback == sorted(["argsort", "call", "custom_jvp_call", "custom_vjp_call",
                               "stop_gradient",
                               "dimension_size", *linalg_lapack.NAMES])
