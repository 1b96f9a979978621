"""frexp and nextafter against NumPy: hypothesis floats of every float
dtype (zeros of both signs, subnormals, the largest values, powers of two,
infinities, NaN), eager and jitted on the reference and cpu backends;
frexp's mantissa is differentiable."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit.testing import check_grads

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # eager overflow to inf

DTYPES = {"float64": np.dtype(np.float64), "float32": np.dtype(np.float32),
          "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


def special(dt):
    info = ml_dtypes.finfo(dt)
    v = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -0.75, float(info.max), -float(info.max),
         float(info.tiny), float(info.smallest_subnormal), -float(info.smallest_subnormal),
         float(info.tiny) / 2, np.inf, -np.inf, np.nan]
    return np.array(v).astype(dt)


def values(dt, n=17):
    """Any bit pattern of ``dt`` (normals, subnormals, zeros, inf, NaN)."""
    ints = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
    bits = hnp.arrays(ints, n, elements=st.integers(0, 2 ** (8 * dt.itemsize) - 1))
    return st.one_of(bits.map(lambda b: b.view(dt)), st.just(special(dt)))


def runs(f, *args):
    yield "eager", f(*args)
    for backend in ("reference", "cpu"):
        yield backend, tracejit.jit(f, backend=backend)(*args)


def same(got, want, where):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, where
    g, w = got.astype(np.float64), want.astype(np.float64)
    assert (np.isnan(g) == np.isnan(w)).all(), where
    ok = ~np.isnan(w)
    np.testing.assert_array_equal(g[ok], w[ok], err_msg=where)
    np.testing.assert_array_equal(np.signbit(g[ok]), np.signbit(w[ok]), err_msg=where)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_frexp(dtype, data):
    x = data.draw(values(DTYPES[dtype]))
    with np.errstate(all="ignore"):
        m, e = np.frexp(x.astype(np.float32) if dtype == "bfloat16" else x)
    if dtype == "bfloat16":   # NumPy has no bfloat16 frexp: float32's, exact
        m = m.astype(x.dtype)
    for where, (gm, ge) in runs(tnp.frexp, x):
        same(gm, m, where)
        finite = np.isfinite(x.astype(np.float64))
        np.testing.assert_array_equal(np.asarray(ge)[finite], e[finite], err_msg=where)
        assert np.asarray(ge).dtype == np.int32


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_nextafter(dtype, data):
    dt = DTYPES[dtype]
    x = data.draw(values(dt))
    y = data.draw(st.one_of(values(dt), st.just(np.zeros(x.size, dt)),
                            st.just(np.full(x.size, np.inf).astype(dt)), st.just(x)))
    with np.errstate(all="ignore"):
        want = np.nextafter(x, y)
    for where, got in runs(tnp.nextafter, x, y):
        same(got, want, where)


def test_frexp_gradient_and_ldexp_roundtrip():
    x = np.array([0.3, -5.0, 123.4, 1e-3])
    check_grads(lambda v: tnp.frexp(v)[0], (x,), order=2)
    m, e = tracejit.jit(tnp.frexp, backend="cpu")(x)
    np.testing.assert_array_equal(np.asarray(tnp.ldexp(np.asarray(m), np.asarray(e))), x)
