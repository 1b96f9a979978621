"""gcd and lcm against NumPy: hypothesis values of every integer dtype
(zeros, negatives, extremes, broadcasting), eager and jitted on the
reference and cpu backends and the CUDA simulator."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tracejit
import tracejit.numpy as tnp
from tracejit.errors import DTypeError

DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
# the CUDA simulator runs kernels on NumPy scalars, which warn where lcm wraps
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def arrays(dtype, shape):
    info = np.iinfo(dtype)
    lo = int(info.min) + 1 if info.min < 0 else 0   # NumPy's gcd(MIN, 0) overflows abs
    small = st.integers(max(lo, -30), min(int(info.max), 30))
    return hnp.arrays(dtype, shape, elements=st.one_of(small, st.integers(lo, int(info.max))))


@pytest.mark.parametrize("backend", ("eager", "reference", "cpu", "cuda"))
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_gcd_lcm_match_numpy(dtype, backend, data):
    a = data.draw(arrays(dtype, (3, 4)))
    b = data.draw(arrays(dtype, (4,)))

    def f(xp, a, b):
        return xp.gcd(a, b), xp.lcm(a, b), xp.gcd(a, 6)
    with np.errstate(all="ignore"):
        want = f(np, a, b)
    got = f(tnp, a, b) if backend == "eager" else \
        tracejit.jit(lambda a, b: f(tnp, a, b), backend=backend)(a, b)
    for w, g in zip(want, got):
        g = np.asarray(g)
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_floats_are_refused():
    with pytest.raises(DTypeError, match="integer"):
        tnp.gcd(np.ones(2), np.ones(2))
    with pytest.raises(DTypeError, match="integer"):
        tracejit.jit(lambda x: tnp.lcm(x, 2))(np.ones(2, np.float32))


def test_through_numpy_dispatch():
    got = tracejit.jit(lambda a: np.gcd(a, np.int64(12)) + np.lcm(a, 4))(np.array([8, 9, 0]))
    np.testing.assert_array_equal(np.asarray(got), np.gcd([8, 9, 0], 12) + np.lcm([8, 9, 0], 4))
