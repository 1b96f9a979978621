"""float16 and bfloat16 arithmetic against NumPy and ml_dtypes, on the
reference and cpu backends and the CUDA simulator. Kernels compute these
dtypes in float32 and round after every operation (tracejit/kernel/
halfs.py), as NumPy and ml_dtypes do, so +, -, *, /, sqrt, comparisons and
max/min agree bit for bit; transcendental functions to one unit in the last
place of the 16-bit result (the float32 functions differ). Products,
sums and means accumulate in float32. Gradients flow through casts to and
from 16-bit floats."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp

HALFS = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
ULP = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
BACKENDS = ("reference", "cpu", "cuda")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the simulator's inf/NaN


def values(dtype, n=12):
    """Any 16-bit pattern: normals, subnormals, zeros, infinities, NaN."""
    bits = hnp.arrays(np.uint16, n, elements=st.integers(0, 0xFFFF))
    return bits.map(lambda b: b.view(HALFS[dtype]))


def _exact_ops(xp, a, b):
    return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "neg": -a,
            "abs": xp.abs(a), "max": xp.maximum(a, b), "min": xp.minimum(a, b),
            "sqrt": xp.sqrt(xp.abs(a)), "floor": xp.floor(a), "ceil": xp.ceil(a),
            "where": xp.where(a < b, a, b), "chain": (a * b + a) * b - a, "lt": a < b,
            "eq": a == b, "scalar": a * 3 + 0.5, "to_f32": a.astype(np.float32)}


def _bits_equal(got, want, where):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (where, got.dtype, want.dtype)
    if want.dtype.kind == "b":
        np.testing.assert_array_equal(got, want, err_msg=where)
        return
    w32, g32 = want.astype(np.float32), got.astype(np.float32)
    nan = np.isnan(w32)
    assert (np.isnan(g32) == nan).all(), where
    np.testing.assert_array_equal(g32[~nan].view(np.uint32), w32[~nan].view(np.uint32),
                                  err_msg=where)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", HALFS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_arithmetic_is_bit_exact(dtype, backend, data):
    a, b = data.draw(values(dtype)), data.draw(values(dtype))
    with np.errstate(all="ignore"):
        want = _exact_ops(np, a, b)
    got = tracejit.jit(lambda a, b: _exact_ops(tnp, a, b), backend=backend)(a, b)
    for k in want:
        _bits_equal(got[k], want[k], k)


def _math_ops(xp, a):
    return {"exp": xp.exp(a), "log": xp.log(xp.abs(a)), "tanh": xp.tanh(a), "sin": xp.sin(a),
            "logistic": 1 / (1 + xp.exp(-a))}


@pytest.mark.parametrize("backend", ("cpu", "cuda"))
@pytest.mark.parametrize("dtype", HALFS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_math_within_one_ulp(dtype, backend, data):
    a = data.draw(hnp.arrays(np.float32, 12, elements=st.floats(-12, 12, width=32)))
    a = a.astype(HALFS[dtype])
    with np.errstate(all="ignore"):
        want = _math_ops(np, a)
    got = tracejit.jit(lambda a: _math_ops(tnp, a), backend=backend)(a)
    for k, w in want.items():
        g = np.asarray(got[k])
        assert g.dtype == w.dtype, k
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                   rtol=1.01 * ULP[dtype], atol=1e-7, err_msg=k)


@pytest.mark.parametrize("backend", ("reference", "cpu"))
@pytest.mark.parametrize("dtype", HALFS)
def test_products_and_sums_accumulate_in_float32(dtype, backend):
    n = 4096   # a 16-bit accumulator of ones stops at 2048 (float16) or 256 (bfloat16)
    x = np.ones((2, n), HALFS[dtype])
    f = tracejit.jit(lambda x: (x @ x.T, tnp.sum(x, axis=1), tnp.mean(x), tnp.einsum("ij,kj->ik", x, x)),
                     backend=backend)
    for r in f(x):
        r = np.asarray(r)
        assert r.dtype == HALFS[dtype]
    p, s, m, e = (np.asarray(r).astype(np.float64) for r in f(x))
    assert (p == n).all() and (s == n).all() and m == 1.0 and (e == n).all()


@pytest.mark.parametrize("backend", ("reference", "cpu"))
@pytest.mark.parametrize("dtype", HALFS)
def test_reductions_and_softmax(dtype, backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 33)).astype(HALFS[dtype])
    f = tracejit.jit(lambda x: (tnp.max(x, axis=1), tnp.argmax(x, axis=1),
                                tnp.exp(x - tnp.max(x, axis=1, keepdims=True)) /
                                tnp.sum(tnp.exp(x - tnp.max(x, axis=1, keepdims=True)), axis=1,
                                        keepdims=True)), backend=backend)
    mx, am, sm = f(x)
    np.testing.assert_array_equal(np.asarray(mx), np.max(x, axis=1))
    np.testing.assert_array_equal(np.asarray(am), np.argmax(x, axis=1))
    x32 = x.astype(np.float32)
    ref = np.exp(x32 - x32.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.asarray(sm).dtype == HALFS[dtype]
    np.testing.assert_allclose(np.asarray(sm).astype(np.float32), ref, rtol=6 * ULP[dtype],
                               atol=1e-3)


@pytest.mark.parametrize("backend", ("reference", "cpu"))
@pytest.mark.parametrize("dtype", HALFS)
def test_gradient_through_casts(dtype, backend):
    """grad of a float32 loss of float32 parameters computed in 16 bits:
    the gradient is float32 and is the 16-bit computation's."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(8).astype(np.float32)
    x = rng.standard_normal((16, 8)).astype(np.float32)

    def loss(w, x):
        h = tnp.tanh(x.astype(dtype) @ w.astype(dtype))
        return tnp.mean(tnp.square(h.astype(np.float32)))

    def loss32(w, x):
        return tnp.mean(tnp.square(tnp.tanh(x @ w)))
    g = tracejit.jit(tracejit.grad(loss), backend=backend)(w, x)
    g32 = tracejit.grad(loss32)(w, x)
    assert np.asarray(g).dtype == np.float32
    np.testing.assert_allclose(np.asarray(g), np.asarray(g32), rtol=0, atol=20 * ULP[dtype])
    # the gradient of a 16-bit parameter is 16-bit
    gh = tracejit.jit(tracejit.grad(lambda v: tnp.sum(v * v).astype(np.float32)),
                      backend=backend)(w.astype(dtype))
    assert np.asarray(gh).dtype == HALFS[dtype]
    np.testing.assert_array_equal(np.asarray(gh), (2 * w.astype(dtype)).astype(HALFS[dtype]))
