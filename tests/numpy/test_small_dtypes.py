"""The small integer dtypes (int8, int16, uint8, uint16) and the 16-bit
floats (float16, bfloat16) as jit inputs and outputs, in creation
functions, casts and NumPy's promotion, against NumPy and ml_dtypes, on the
reference and cpu backends and, for elementwise kernels, the CUDA
simulator. Integer arithmetic wraps as in NumPy (uint8 200 + 100 == 44).
The 16-bit float arithmetic itself: test_half_dtypes.py."""
import itertools

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit.ir.types import DTYPES

SMALL_INTS = ("int8", "int16", "uint8", "uint16")
HALFS = ("float16", "bfloat16")
BACKENDS = ("reference", "cpu", "cuda")
# the CUDA simulator runs kernels on NumPy scalars, which warn where integers wrap
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def npdtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def ints(dtype, n=8):
    info = np.iinfo(dtype)
    return hnp.arrays(dtype, n, elements=st.integers(int(info.min), int(info.max)))


def _int_ops(xp, a, b):
    nz = xp.where(b == 0, xp.ones_like(b), b)
    return {"add": a + b, "sub": a - b, "mul": a * b, "floordiv": a // nz, "mod": a % nz,
            "max": xp.maximum(a, b), "min": xp.minimum(a, b), "and": a & b, "or": a | b,
            "xor": a ^ b, "not": ~a, "neg": -a, "abs": xp.abs(a), "lt": a < b, "eq": a == b,
            "scalar": a + 3, "to_f32": a.astype(np.float32), "square": a * a,
            "sum": xp.sum(a), "max_r": xp.max(a), "argmin": xp.argmin(a)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", SMALL_INTS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_integer_arithmetic_wraps_as_numpy(dtype, backend, data):
    a, b = data.draw(ints(dtype)), data.draw(ints(dtype))
    with np.errstate(all="ignore"):
        want = _int_ops(np, a, b)
    got = tracejit.jit(lambda a, b: _int_ops(tnp, a, b), backend=backend)(a, b)
    for k, w in want.items():
        g = np.asarray(got[k])
        if k == "sum":   # NumPy: int64 for signed, uint64 for unsigned (tracejit: uint32)
            w = w.astype("uint32" if dtype.startswith("u") else "int64")
        assert g.dtype == w.dtype, (k, g.dtype, w.dtype)
        np.testing.assert_array_equal(g, w, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_uint8_wraps(backend):
    f = tracejit.jit(lambda a, b: (a + b, a - b, a * b), backend=backend)
    s, d, p = f(np.array([200], np.uint8), np.array([100], np.uint8))
    assert np.asarray(s)[0] == 44 and np.asarray(d)[0] == 100 and np.asarray(p)[0] == 32
    assert np.asarray(s).dtype == np.uint8


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_promotion_is_numpys(a, b):
    """Every pair of dtypes promotes as np.promote_types (with ml_dtypes:
    bfloat16 with float16 gives float32, as in JAX)."""
    want = np.promote_types(npdtype(a), npdtype(b))
    x, y = np.ones(2, npdtype(a)), np.ones(2, npdtype(b))
    assert tnp.result_type(x, y) == want
    got = tracejit.jit(lambda x, y: x + y if a != "bool" or b != "bool" else x | y,
                       backend="reference")(x, y)
    assert np.asarray(got).dtype == want


@pytest.mark.parametrize("dtype", SMALL_INTS + HALFS)
def test_python_scalars_are_weak(dtype):
    x = np.ones(3, npdtype(dtype))
    f = tracejit.jit(lambda x: (x + 1, x * 2, x - True), backend="reference")
    assert all(np.asarray(r).dtype == npdtype(dtype) for r in f(x))
    g = tracejit.jit(lambda x: x * 0.5, backend="reference")(x)
    assert np.asarray(g).dtype == (npdtype(dtype) if dtype in HALFS else np.float64)


@pytest.mark.parametrize("backend", ("reference", "cpu"))
@pytest.mark.parametrize("dtype", SMALL_INTS + HALFS)
def test_creation_and_dtype_arguments(dtype, backend):
    dt = npdtype(dtype)

    def f(x):
        return (tnp.zeros((2, 3), dtype), tnp.ones(4, dtype=dt), tnp.full((2,), 7, dtype),
                tnp.arange(5, dtype=dtype), tnp.asarray([1, 2, 3], dtype=dt),
                tnp.zeros_like(x), tnp.astype(tnp.arange(3), dtype), x.astype(dtype),
                tnp.eye(2, dtype=dtype))
    x = np.arange(6).astype(dt).reshape(2, 3)
    want = (np.zeros((2, 3), dt), np.ones(4, dt), np.full((2,), 7, dt), np.arange(5).astype(dt),
            np.asarray([1, 2, 3], dt), np.zeros_like(x), np.arange(3).astype(dt), x,
            np.eye(2, dtype=dt))
    for eager in (True, False):
        got = f(x) if eager else tracejit.jit(f, backend=backend)(x)
        for g, w in zip(got, want):
            g = np.asarray(g)
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g.astype(np.float64), w.astype(np.float64))


@pytest.mark.parametrize("backend", ("reference", "cpu"))
@pytest.mark.parametrize("dtype", SMALL_INTS + HALFS)
def test_inputs_and_outputs_pass_through(dtype, backend):
    x = np.arange(12).astype(npdtype(dtype)).reshape(3, 4)
    f = tracejit.jit(lambda x: (x, x.T, x.reshape(-1)[::2], x[1]), backend=backend)
    for g, w in zip(f(x), (x, x.T, x.reshape(-1)[::2], x[1])):
        g = np.asarray(g)
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.view(np.uint8), np.ascontiguousarray(w).view(np.uint8))


CAST_SOURCES = ("float64", "float32", "int64", "int32", "uint8", "int8", "int16", "uint16",
                "float16", "bfloat16", "bool")


@pytest.mark.parametrize("backend", ("reference", "cpu"))
@pytest.mark.parametrize("target", SMALL_INTS + HALFS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_casts_agree_with_numpy(target, backend, data):
    """Casts into and out of the small dtypes, of values inside the target's
    range (NumPy leaves out-of-range float -> int casts undefined)."""
    lo, hi = (-100, 100) if target == "int8" else (0, 200) if target == "uint8" else (-3e4, 3e4) \
        if target in ("int16", "float16", "bfloat16") else (0, 6e4)
    xs = data.draw(hnp.arrays(np.float64, 6, elements=st.floats(lo, hi, allow_subnormal=False)))
    if target in SMALL_INTS:
        xs = np.trunc(xs)
    srcs = {s: xs.astype(npdtype(s)) for s in CAST_SOURCES
            if s in ("float64", "float32", "float16", "bfloat16", "bool") or
            np.can_cast(target, s) or s in ("int64",)}
    f = tracejit.jit(lambda d: {s: tnp.astype(v, target) for s, v in d.items()}, backend=backend)
    g = tracejit.jit(lambda d: {s: tnp.astype(tnp.astype(v, target), s) for s, v in d.items()},
                     backend=backend)
    got, back = f(srcs), g(srcs)
    with np.errstate(all="ignore"):
        for s, v in srcs.items():
            want = v.astype(npdtype(target))
            assert np.asarray(got[s]).dtype == want.dtype
            np.testing.assert_array_equal(np.asarray(got[s]).view(np.uint8), want.view(np.uint8),
                                          err_msg=s)
            np.testing.assert_array_equal(np.asarray(back[s]), want.astype(v.dtype), err_msg=s)


def test_reductions_pick_numpys_or_jaxs_dtype():
    """sum of bool and signed ints: int64 (NumPy); of unsigned ints: uint32
    (JAX; NumPy: uint64, which tracejit lacks); of 16-bit floats: the same
    dtype, accumulated in float32."""
    x8 = np.full(1000, 200, np.uint8)
    s = tracejit.jit(tnp.sum, backend="cpu")(x8)
    assert np.asarray(s).dtype == np.uint32 and int(s) == 200_000
    s = tracejit.jit(tnp.sum, backend="cpu")(np.full(1000, -100, np.int8))
    assert np.asarray(s).dtype == np.int64 and int(s) == -100_000
    m = tracejit.jit(tnp.mean, backend="cpu")(x8)
    assert np.asarray(m).dtype == np.float64 and float(m) == 200.0
    h = np.full(4096, 1.0, np.float16)   # a float16 accumulator would stop at 2048
    for backend in ("reference", "cpu"):
        s = tracejit.jit(tnp.sum, backend=backend)(h)
        assert np.asarray(s).dtype == np.float16 and float(s) == 4096.0
        b = tracejit.jit(tnp.mean, backend=backend)(h.astype(ml_dtypes.bfloat16))
        assert np.asarray(b).dtype == ml_dtypes.bfloat16 and float(b) == 1.0


def test_unsupported_dtypes_are_refused_clearly():
    with pytest.raises(TypeError, match="not supported"):
        tracejit.jit(lambda x: x)(np.ones(2, np.complex64))


def test_bfloat16_is_a_float_to_tnp():
    """NumPy sees ml_dtypes' bfloat16 as kind 'V'; tracejit.numpy's float
    helpers treat it as the float it is (as jax.numpy)."""
    bf = tnp.bfloat16
    assert tnp.integer is np.integer and tnp.floating is np.floating   # not shadowed by modules
    assert tnp.issubdtype(bf, tnp.floating) and not tnp.issubdtype(bf, tnp.integer)
    assert tnp.issubdtype(np.float16, np.floating) and not tnp.issubdtype(np.int8, np.floating)
    assert float(tnp.finfo(bf).eps) == 2.0 ** -7
    x = np.array([1.5, np.nan, -2.0, 4.0], bf)
    for backend in ("reference", "cpu"):
        mx, mn, nz, md = tracejit.jit(lambda x: (tnp.nanmax(x), tnp.nanmin(x), tnp.nan_to_num(x),
                                                 tnp.fmod(x, 1.25)), backend=backend)(x)
        assert float(mx) == 4.0 and float(mn) == -2.0 and np.asarray(mx).dtype == bf
        np.testing.assert_array_equal(np.asarray(nz).astype(np.float32), [1.5, 0, -2, 4])
        np.testing.assert_array_equal(np.asarray(md).astype(np.float32),
                                      np.fmod(x.astype(np.float32), 1.25).astype(bf).astype(np.float32))
