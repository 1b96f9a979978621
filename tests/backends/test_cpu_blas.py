"""float32 products on the private OpenBLAS (backends/cpu/blas.py): every
operand layout, the split across threads, and the switches that turn it off."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit
import tracejit.lax as lax
from tracejit.backends.cpu import blas, library

needs_library = pytest.mark.skipif(blas.corename() is None, reason="scipy-openblas32 not loaded")


def _reference(a, b, dims):
    return np.asarray(lax.dot_general(a.astype(np.float64), b.astype(np.float64), dims))


@needs_library
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 40),
       ta=st.booleans(), tb=st.booleans(), seed=st.integers(0, 2**16))
def test_every_layout_matches_float64(m, n, k, ta, tb, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    dims = (((0 if ta else 1,), (1 if tb else 0,)), ((), ()))
    got = tracejit.jit(lambda a, b: lax.dot_general(a, b, dims))(a, b)
    np.testing.assert_allclose(got, _reference(a, b, dims), rtol=1e-4, atol=1e-4 * np.sqrt(k))


@needs_library
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m, n", [(301, 257), (129, 513)])   # split by rows, by columns
def test_large_products_split_across_threads_match(ta, tb, m, n):
    k = 260   # m*n*k over MIN_PARALLEL_FLOPS; the split does not divide evenly
    assert m * n * k >= library.MIN_PARALLEL_FLOPS
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    dims = (((0 if ta else 1,), (1 if tb else 0,)), ((), ()))
    got = tracejit.jit(lambda a, b: lax.dot_general(a, b, dims))(a, b)
    np.testing.assert_allclose(got, _reference(a, b, dims), rtol=1e-4, atol=1e-3)


@needs_library
@pytest.mark.parametrize("dtype, uses_it", [(np.float32, True), (np.float64, False), (np.int32, False)])
def test_float32_products_use_it_and_others_numpy(dtype, uses_it):
    x = np.ones((4, 3), dtype)
    fn = tracejit.jit(lambda a, b: a @ b).lower(x, x.T)
    dot = next(ins for ins in fn.body if ins.prim == "dot_general")
    assert (library.Gemm.of(dot) is not None) == uses_it


def test_loading_leaves_the_environment_as_it_was():
    before = os.environ.get("OPENBLAS_CORETYPE")
    blas.corename()
    assert os.environ.get("OPENBLAS_CORETYPE") == before


def _in_fresh_process(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@needs_library
def test_switches():
    code = "from tracejit.backends.cpu import blas; print(blas.corename())"
    assert _in_fresh_process(code, TRACEJIT_BLAS="numpy") == "None"
    assert _in_fresh_process(code, TRACEJIT_BLAS_CORETYPE="Haswell") == "Haswell"
    flags = blas._cpu_flags()
    if set(blas._AVX512) <= flags:
        assert _in_fresh_process(code, OPENBLAS_CORETYPE="Haswell") == "SkylakeX"
