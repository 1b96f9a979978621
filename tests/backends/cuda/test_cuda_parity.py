"""The cuda backend computes what the reference interpreter computes.

Runs under Numba's CUDA simulator (tests/conftest.py switches it on) or on a
GPU. The simulator runs one Python thread per CUDA thread, so each test
jits one function applying many primitives at once, on tiny fixed shapes,
with few hypothesis examples; kernels compile once per process (the cache
memoizes identical kernels), so examples after the first are cheap.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit import lax
from tracejit.backends import cuda
from tracejit.nn import functional as F
from tracejit.primitives import PRIMITIVES, linalg_lapack
from tracejit.primitives import elementwise as ew
from tracejit.transforms.fusion import fuse, kernel_count

SETTINGS = settings(max_examples=4, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RTOL = {"float32": 2e-6, "float64": 1e-13}
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0]


def floats(dtype, lo=-1e3, hi=1e3, special=True):
    width = 32 if dtype == "float32" else 64
    finite = st.floats(lo, hi, width=width)
    return st.one_of(st.sampled_from(SPECIAL), finite) if special else finite


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
    """(cuda result, reference result) as lists of arrays."""
    got = tracejit.jit(fun, backend="cuda", **jit_kw)(*args)
    want = tracejit.jit(fun, backend="reference", **jit_kw)(*args)
    return tracejit.tree_leaves(got), tracejit.tree_leaves(want)


def check(got, want, rtol=None, atol=0.0):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, tracejit.Array), type(g)
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        if g.dtype.kind == "f":
            tol = RTOL[g.dtype.name] if rtol is None else rtol
            np.testing.assert_allclose(g, w, rtol=tol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


def _apply(names, *xs):
    return [PRIMITIVES[n](*xs) for n in names]


# --- elementwise ---------------------------------------------------------------------

UNARY_FLOAT = ["neg", "exp", "log", "log1p", "expm1", "tanh", "logistic", "sqrt", "rsqrt",
               "sin", "cos", "sinh", "erf", "abs", "sign", "floor", "ceil", "round", "is_finite"]
BINARY_FLOAT = ["add", "sub", "mul", "div", "rem", "pow", "max", "min",
                "eq", "ne", "lt", "le", "gt", "ge"]
UNARY_INT = ["neg", "abs", "sign", "not"]
BINARY_INT = ["add", "sub", "mul", "div", "rem", "max", "min", "and", "or", "xor",
              "eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@SETTINGS
@given(data=st.data())
def test_float_elementwise(dtype, data):
    x = data.draw(arrays(dtype, (9,)))
    y = data.draw(arrays(dtype, (9,)))
    got, want = both(lambda x, y: _apply(UNARY_FLOAT, x) + _apply(BINARY_FLOAT, x, y), x, y)
    check(got, want, rtol=RTOL[dtype] * 8, atol=1e-30)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_special_values(dtype):
    """NaN, inf, signed zeros and domain edges propagate as in NumPy (every
    pair of the values, so both operand orders)."""
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e30, -1e-30,
                     100.0], dtype)
    x, y = (a.reshape(-1) for a in np.meshgrid(vals, vals))
    got, want = both(lambda x, y: _apply(UNARY_FLOAT, x) + _apply(BINARY_FLOAT, x, y)
                     + [x.max(), tnp.argmax(x), x.min()], x, y)
    check(got, want, rtol=RTOL[dtype] * 8, atol=1e-30)


@pytest.mark.parametrize("dtype", ["int32", "uint32"])
def test_int_edge_values(dtype):
    """Wrapping, division by 0 and -1, the minimum's negation."""
    info = np.iinfo(dtype)
    vals = np.array(sorted(v for v in {int(info.min), int(info.min) + 1, -7, -1, 0, 1, 3,
                                       int(info.max)} if info.min <= v <= info.max), dtype)
    x, y = (a.reshape(-1) for a in np.meshgrid(vals, vals))
    got, want = both(lambda x, y: _apply(UNARY_INT, x) + _apply(BINARY_INT, x, y), x, y)
    check(got, want)


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
def test_bool_select_convert_broadcast(data):
    p = data.draw(arrays("bool", (3, 3)))
    q = data.draw(arrays("bool", (3, 3)))
    x = data.draw(arrays("float32", (3, 3)))
    y = data.draw(arrays("float32", (3,)))
    i = data.draw(arrays("int32", (3, 3)))
    fin = data.draw(arrays("float64", (3, 3), st.floats(-1e6, 1e6)))

    def f(p, q, x, y, i, fin):
        bools = _apply(["and", "or", "xor", "eq", "ne", "lt", "ge", "max", "min"], p, q)
        return bools + [ew.not_(p), ew.select(p, x, y[None, :] + x), ew.select(q, i, -i),
                        x * y, x[:, :1] - y, tnp.where(p, 1.0, y)] + [
            ew.convert(v, dtype=d) for v in (p, i, fin, x)
            for d in ("bool", "int32", "int64", "uint32", "float32", "float64")
            if not (v is x and d not in ("bool", "float64"))
            and not (v is fin and d == "uint32")]
    got, want = both(f, p, q, x, y, i, fin)
    check(got, want)


# --- reductions -----------------------------------------------------------------------

AXES = [(0,), (1,), (2,), (-1,), (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@SETTINGS
@given(data=st.data())
def test_reductions(dtype, data):
    x = data.draw(arrays(dtype, (3, 4, 5)))

    def f(x):
        out = []
        for axes in AXES:
            for name in ("sum", "max", "min"):
                out.append(getattr(tnp, name)(x, axis=axes))
        for axis in (0, 2):
            out.append(PRIMITIVES["argmax"](x, axis=axis, index_dtype="int32"))
            out.append(PRIMITIVES["argmin"](x, axis=axis, index_dtype="int64"))
        return out
    got, want = both(f, x)
    check(got, want, rtol=1e-5, atol=1e-3)


def test_reductions_of_empty_and_unit_dims():
    x = np.arange(6, dtype=np.float32).reshape(2, 1, 3)
    e = np.zeros((2, 0), np.float32)

    def f(x, e):
        return [x.sum(axis=1), x.max(axis=(0, 1)), tnp.prod(x, axis=2), e.sum(axis=1),
                e.max(axis=0), e.sum(), tnp.argmax(x, 1), x.mean(axis=-1, keepdims=True)]
    got, want = both(f, x, e)
    check(got, want, rtol=1e-6)


def test_bool_and_nan_reductions():
    b = np.array([[True, False, False], [False, False, False]])
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 2.0, -np.inf, 1.0]], np.float64)

    def f(b, x):
        return [tnp.any(b, axis=1), tnp.all(b, axis=0), x.max(axis=1), x.min(axis=0),
                tnp.argmax(x, 1), tnp.argmin(x, 1), x.sum(axis=1)]
    got, want = both(f, b, x)
    check(got, want)


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
def test_gather_scatter_and_sort(x, labels, upd):
    def f(x, labels, upd):
        logp = F.log_softmax(x, axis=1)
        picked = logp[tnp.arange(6), labels]
        hist = tnp.zeros(5, "float32").at[labels[:3]].add(upd)
        order = PRIMITIVES["argsort"](x, axis=1, index_dtype="int32")   # host fallback
        return picked, hist, order, PRIMITIVES["scatter_add"](
            x, labels[:3] - 2, tnp.ones((6, 3), "float32") * upd, axis=1)
    got, want = both(f, x, labels, upd)
    check(got, want, rtol=1e-5)


# --- softmax and cross-entropy: single kernels ----------------------------------------

def _kernels(fun, *args):
    return kernel_count(fuse(tracejit.make_ir(fun)(*args)))


def test_softmax_and_cross_entropy_are_single_kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32) * 4
    labels = rng.integers(0, 5, 6).astype(np.int32)

    def softmax(x):
        return F.softmax(x, axis=1)

    def xent(x, labels):
        return F.sparse_softmax_cross_entropy_with_logits(labels, x)
    assert _kernels(softmax, x) == 1
    assert _kernels(xent, x, labels) == 1
    got, want = both(lambda x, y: [softmax(x), xent(x, y), F.log_softmax(x)], x, labels)
    check(got, want, rtol=1e-5, atol=1e-6)


# --- windows, library calls, gradients -------------------------------------------------

def test_pooling_and_its_gradient():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)

    def loss(x):
        p = lax.reduce_window(x, "max", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0)))
        a = lax.reduce_window(x, "sum", (1, 2, 2, 1), (1, 2, 2, 1), ((0, 0),) * 4)
        return tnp.sum(p * p) + tnp.mean(a)

    got, want = both(tracejit.value_and_grad(loss), x)
    check(got, want, rtol=1e-4, atol=1e-5)


def test_matmul_and_conv_through_the_library():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 4, 5)).astype(np.float32)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)

    def f(a, b, x, w):
        return [a @ b + 1, tnp.dot(a[0, :, 0], a[1, :, 1]),
                lax.conv_general(x, w, (1, 1), ((1, 1), (1, 1)))]
    got, want = both(f, a, b, x, w)
    check(got, want, rtol=1e-5, atol=1e-5)


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

    x = np.random.default_rng(3).standard_normal((3, 2)).astype(np.float32)
    for v in (x, -x):
        got, want = both(f, v, 3)
        check(got, want, rtol=1e-5)


def test_scan_gradient():
    """Reverse-mode scan: sub-plans updating their carries in place, and the
    per-step gradient accumulation."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((2, 6)).astype(np.float32) * 0.5
    u = rng.standard_normal((3, 6)).astype(np.float32) * 0.5
    xs = rng.standard_normal((3, 2, 2)).astype(np.float32)

    def loss(w, u, xs):
        def cell(h, x):
            z = x @ w + h @ u
            h = F.sigmoid(z[:, :3]) * tnp.tanh(z[:, 3:])
            return h, h
        h, hs = tracejit.scan(cell, tnp.zeros((2, 3), "float32"), xs)
        return tnp.sum(hs * hs) + tnp.sum(h)
    got, want = both(tracejit.value_and_grad(loss, argnums=(0, 1)), w, u, xs)
    check(got, want, rtol=1e-5, atol=1e-6)


def test_random_bits_are_the_reference_stream():
    def f(key):
        k1, k2 = tracejit.random.split(key)
        return (PRIMITIVES["random_bits"](key, shape=(3, 7)), tracejit.random.uniform(k1, (4, 5)),
                tracejit.random.normal(k2, (6,)))
    got, want = both(f, tracejit.random.key(42))
    np.testing.assert_array_equal(np.asarray(got[0]), want[0])   # bitwise
    check(got, want, rtol=1e-6)


# --- a training step ---------------------------------------------------------------------

def test_mlp_step_with_grad_and_donation():
    rng = np.random.default_rng(4)
    params = [{"w": rng.standard_normal((6, 5)).astype(np.float32) * 0.3,
               "b": np.zeros(5, np.float32)},
              {"w": rng.standard_normal((5, 3)).astype(np.float32) * 0.3,
               "b": np.zeros(3, np.float32)}]
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = rng.integers(0, 3, 4).astype(np.int32)

    def loss(params, x, y):
        h = tnp.maximum(x @ params[0]["w"] + params[0]["b"], 0)
        logits = h @ params[1]["w"] + params[1]["b"]
        return F.sparse_softmax_cross_entropy_with_logits(y, logits).mean()

    def step(params, x, y):
        value, grads = tracejit.value_and_grad(loss)(params, x, y)
        return tracejit.tree_map(lambda p, g: p - 0.1 * g, params, grads), value

    jitted = tracejit.jit(step, backend="cuda", donate_argnums=0)
    ref = tracejit.jit(step, backend="reference")
    p = tracejit.device_put(params)
    new, value = jitted(p, x, y)
    want, want_value = ref(params, x, y)
    check(tracejit.tree_leaves(new) + [value], tracejit.tree_leaves(want) + [want_value],
          rtol=1e-5, atol=1e-6)
    new2, _ = jitted(new, x, y)   # the first call's outputs, donated back
    want2, _ = ref(want, x, y)
    check(tracejit.tree_leaves(new2), tracejit.tree_leaves(want2), rtol=1e-5, atol=1e-6)
    # the updated parameters were written into the donated device buffers
    for before, after in [(p, new), (new, new2)]:
        same = [a.device_array() is b.device_array()
                for a, b in zip(tracejit.tree_leaves(before), tracejit.tree_leaves(after))]
        assert all(same), same


def test_fallback_list():
    """Every primitive has a kernel, a library or a sub-plan lowering except
    these, which run their NumPy implementation on the host: argsort, the
    matrix decompositions and solves (LAPACK through NumPy and SciPy), and
    custom_vjp_call and custom_jvp_call, which autodiff removes before a
    backend sees a Function, call, which simplify inlines, and dimension_size (a shape read; a plan over
    symbolic sizes takes it as an argument instead, tracejit/symbolic.py)."""
    fallback = sorted(p for p in PRIMITIVES if cuda.lowering(p).startswith("NumPy"))
    assert fallback == sorted(["argsort", "call", "custom_jvp_call", "custom_vjp_call",
                               "dimension_size", *linalg_lapack.NAMES])
