"""Accuracy and special values of tracejit.backends.cpu.vmath.

Every call goes through an njit loop, as in generated kernels. References are
NumPy (scipy.special.expit for logistic) evaluated in a wider type and rounded:
float64 for float32, long double for float64.
"""

import functools
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numba import njit

from tracejit.backends.cpu import vmath

PRIMS = ["exp", "log", "tanh", "logistic", "log1p", "expm1"]
DTYPES = [np.float32, np.float64]
NUMPY = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "logistic": scipy.special.expit,
    "log1p": np.log1p,
    "expm1": np.expm1,
}
# Allowed error in ulp, the maxima documented in vmath's docstring.
MAX_ULP = {
    "float32": {"exp": 1, "log": 1, "tanh": 2, "logistic": 2, "log1p": 1, "expm1": 1},
    "float64": {"exp": 1, "log": 1, "tanh": 3, "logistic": 2, "log1p": 1, "expm1": 2},
}
# Where long double is just double, the float64 reference has its own error.
REF_SLACK = {"float32": 0, "float64": 0 if np.finfo(np.longdouble).nmant > 52 else 1}
# Ranges where the functions do something other than saturate.
RANGES = {
    "float32": {"exp": (-110, 95), "log": (0, 4), "tanh": (-12, 12),
                "logistic": (-110, 20), "log1p": (-1, 4), "expm1": (-20, 95)},
    "float64": {"exp": (-750, 715), "log": (0, 4), "tanh": (-22, 22),
                "logistic": (-750, 40), "log1p": (-1, 4), "expm1": (-40, 715)},
}
# No fastmath, and every flag kernels may use (not nnan, ninf or reassoc).
FASTMATH = pytest.mark.parametrize(
    "fastmath", [(), ("contract", "arcp", "afn", "nsz")], ids=["strict", "fast"])

params = pytest.mark.parametrize(
    "prim, dtype", [(p, d) for p in PRIMS for d in DTYPES],
    ids=[f"{p}-{np.dtype(d).name}" for p in PRIMS for d in DTYPES],
)


@functools.cache
def kernel(name, fastmath=()):
    fn = getattr(vmath, name)

    @njit(fastmath=set(fastmath))
    def apply(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])

    return apply


def vm(prim, x, fastmath=()):
    out = np.empty_like(x)
    kernel(vmath.VMATH[prim, x.dtype.name], fastmath)(x, out)
    return out


def reference(prim, x):
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return NUMPY[prim](x.astype(wide)).astype(x.dtype)


def ulp_error(got, want):
    """Ulp distance as the difference of bit patterns mapped to a monotone
    integer order (-0 and +0 coincide). NaN matches only NaN."""
    ity = np.int32 if got.dtype == np.float32 else np.int64

    def ordered(a):
        i = a.view(ity).astype(np.int64)
        return np.where(i < 0, np.int64(np.iinfo(ity).min) - i, i).view(np.uint64)

    d = ordered(got) - ordered(want)  # wraps; min(d, -d) is the distance
    d = np.minimum(d, -d)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    d[nan_got & nan_want] = 0
    d[nan_got ^ nan_want] = np.iinfo(np.uint64).max
    return d


def check_ulp(prim, x, fastmath=()):
    got, want = vm(prim, x, fastmath), reference(prim, x)
    d = ulp_error(got, want)
    bound = MAX_ULP[x.dtype.name][prim] + REF_SLACK[x.dtype.name]
    bad = np.flatnonzero(d > bound)[:5]
    assert bad.size == 0, [(x[i], got[i], want[i], int(d[i])) for i in bad]
    zero_sign = (got == 0) & (np.signbit(got) != np.signbit(want))
    assert not zero_sign.any(), x[zero_sign][:5]


def bit_sweep(dtype, n):
    """n evenly spaced bit patterns over the whole type, denormals, infs and NaNs included."""
    if dtype == np.float32:
        step = (1 << 32) // n - 1
        return (np.arange(n, dtype=np.uint64) * np.uint64(step)).astype(np.uint32).view(dtype)
    step = (1 << 64) // n - 1
    return (np.arange(n, dtype=np.uint64) * np.uint64(step)).view(dtype)


def edge_values(dtype):
    fi = np.finfo(dtype)
    pos = [0.0, fi.smallest_subnormal, 2 * fi.smallest_subnormal, fi.tiny - fi.smallest_subnormal,
           fi.tiny, fi.eps, 0.5, 1 - fi.epsneg, 1.0, 1 + fi.eps, 2.0, fi.max, np.inf,
           88.72283, 88.72284, 103.97, 103.98, 709.782712893384, 709.7827128933841,
           745.1332191019411, 745.1332191019412, 1000.0]
    vals = np.array(pos + [-v for v in pos] + [np.nan], dtype=dtype)
    with np.errstate(over="ignore"):
        up, down = np.nextafter(vals, dtype(np.inf)), np.nextafter(vals, dtype(-np.inf))
    return np.concatenate([vals, up, down])


@FASTMATH
@params
def test_bit_sweep(prim, dtype, fastmath):
    check_ulp(prim, bit_sweep(dtype, 1 << 18), fastmath)


@params
def test_range_sweep(prim, dtype):
    lo, hi = RANGES[np.dtype(dtype).name][prim]
    check_ulp(prim, np.linspace(lo, hi, 200_001, dtype=dtype))


@FASTMATH
@params
def test_edge_values(prim, dtype, fastmath):
    check_ulp(prim, edge_values(dtype), fastmath)


@params
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_hypothesis(prim, dtype, data):
    width = np.finfo(dtype).bits
    x = data.draw(hnp.arrays(dtype, st.integers(1, 50), elements=st.floats(width=width)))
    check_ulp(prim, x)


INF, NAN = np.inf, np.nan
SPECIAL = {
    "exp": [(0.0, 1.0), (-0.0, 1.0), (INF, INF), (-INF, 0.0), (NAN, NAN),
            (1e4, INF), (-1e4, 0.0)],
    "log": [(0.0, -INF), (-0.0, -INF), (1.0, 0.0), (INF, INF), (-INF, NAN),
            (-1.0, NAN), (-1e-45, NAN), (NAN, NAN)],
    "tanh": [(0.0, 0.0), (-0.0, -0.0), (INF, 1.0), (-INF, -1.0), (NAN, NAN),
             (1e4, 1.0), (-1e4, -1.0), (1e-45, 1e-45), (-1e-45, -1e-45)],
    "logistic": [(0.0, 0.5), (-0.0, 0.5), (INF, 1.0), (-INF, 0.0), (NAN, NAN),
                 (1e4, 1.0), (-1e4, 0.0), (-1e30, 0.0)],
    "log1p": [(0.0, 0.0), (-0.0, -0.0), (-1.0, -INF), (-2.0, NAN), (INF, INF),
              (-INF, NAN), (NAN, NAN), (1e-45, 1e-45), (-1e-45, -1e-45)],
    "expm1": [(0.0, 0.0), (-0.0, -0.0), (INF, INF), (-INF, -1.0), (NAN, NAN),
              (1e4, INF), (-1e4, -1.0), (1e-45, 1e-45), (-1e-45, -1e-45)],
}


@FASTMATH
@params
def test_special_values(prim, dtype, fastmath):
    x, want = (np.array(v, dtype=dtype) for v in zip(*SPECIAL[prim]))
    got = vm(prim, x, fastmath)
    np.testing.assert_array_equal(got, want)  # NaN == NaN here
    np.testing.assert_array_equal(np.signbit(got[want == 0]), np.signbit(want[want == 0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_never_nan(dtype):
    fi = np.finfo(dtype)
    binades = np.ldexp(dtype(1.5), np.arange(fi.minexp - fi.nmant, fi.maxexp - 1))
    x = np.concatenate([binades, [fi.max, np.inf]]).astype(dtype)
    got = vm("logistic", np.concatenate([-x, x]))
    assert not np.isnan(got).any()
    assert np.all((got >= 0) & (got <= 1))


def test_table_names():
    assert set(vmath.VMATH) == {(p, np.dtype(d).name) for p in PRIMS for d in DTYPES}
    for (prim, dtype), name in vmath.VMATH.items():
        assert name == f"{prim}_f{dtype[-2:]}"
        assert hasattr(vmath, name)


@pytest.mark.parametrize("name", sorted(vmath.VMATH.values()))
def test_loop_vectorizes(name):
    """The optimized loop has vector float ops and no libm calls."""
    dtype = np.float32 if name.endswith("32") else np.float64
    k = kernel(name, ())
    x = np.ones(8, dtype)
    k(x, np.empty_like(x))
    llvm = "\n".join(k.inspect_llvm().values())
    assert re.search(r"<\d+ x (float|double)>", llvm)
    calls = set(re.findall(r"call [^@\n]*@([\w.]+)", llvm))
    assert not {c for c in calls if re.fullmatch(r"(exp|log|tanh|expm1|log1p)f?", c)}


def test_cached_kernel_in_importing_module(tmp_path, monkeypatch):
    """Generated modules import the functions and compile with cache=True."""
    path = tmp_path / "gen_kernel.py"
    path.write_text(textwrap.dedent("""
        import numpy as np
        from numba import njit
        from tracejit.backends.cpu.vmath import exp_f32, tanh_f64

        @njit(cache=True)
        def kernel(x, y):
            return exp_f32(x[0]) + tanh_f64(y[0])

        assert kernel(np.zeros(1, np.float32), np.zeros(1)) == 1.0
    """))
    spec = importlib.util.spec_from_file_location("gen_kernel", path)
    gen_kernel = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gen_kernel", gen_kernel)
    spec.loader.exec_module(gen_kernel)  # compiles and writes the cache
    assert not gen_kernel.kernel.stats.cache_hits

    root = Path(vmath.__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    probe = "import gen_kernel; print(len(gen_kernel.kernel.stats.cache_hits))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                         check=True, capture_output=True, text=True).stdout
    assert out.strip() == "1"  # a fresh process loads it from the cache
