"""Matrix products on a private OpenBLAS, with the kernels for this CPU.

NumPy's OpenBLAS takes its kernels from ``OPENBLAS_CORETYPE`` or, unset,
from the CPU it recognizes, once, when NumPy is imported. The AMD EPYC
(Zen 4) VMs this project runs on pin ``OPENBLAS_CORETYPE=Haswell``, the AVX2
kernels, although the CPU has AVX-512: float32 products run at 113 GFLOP/s
per core there, against 216 with the AVX-512 "SkylakeX" kernels
(``benchmarks/RESULTS.md``, "BLAS kernels"). JAX and PyTorch bring their
own AVX-512 kernels, so every BLAS-bound step (MLP, convolutions, LSTM)
started 2x behind them.

So plans call a second OpenBLAS, the ``scipy-openblas32`` wheel's (a
separate library from NumPy's, with its own symbol names), whose kernels
are chosen for this CPU the way tracejit's own kernels are (LLVM with the
host's features): ``SkylakeX`` where the CPU has the AVX-512 subsets those
kernels use, else OpenBLAS's own choice. ``TRACEJIT_BLAS_CORETYPE`` names
other kernels (``Haswell`` to match NumPy bit for bit, say);
``TRACEJIT_BLAS=numpy`` turns the library off (products go to
``np.matmul``), as does its absence or a failure to load it.

Only float32 products use it: OpenBLAS 0.3.34's double-precision kernels
can overrun a stack buffer on Zen 4 (OpenBLAS issues 6013, 6021, 6026),
so float64 stays with NumPy. It runs single-threaded: plans split large
products across tracejit's own pool (library.py), which stays fast when
another process shares the cores, where OpenBLAS's fixed partition waits
for its slowest thread.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

from ... import log

__all__ = ["corename", "gemm_function"]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
_AVX512 = ("avx512f", "avx512dq", "avx512bw", "avx512vl")   # what SkylakeX kernels use
_lib = None   # None: not tried; False: unavailable


def _cpu_flags() -> set:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _library_path():
    spec = importlib.util.find_spec("scipy_openblas32")   # not imported: that would load it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "lib" / "libscipy_openblas.so"
    return path if path.exists() else None


def _load():
    global _lib
    if _lib is not None:
        return _lib
    _lib = False
    path = _library_path() if os.environ.get("TRACEJIT_BLAS", "openblas") != "numpy" else None
    if path is None:
        return _lib
    coretype = os.environ.get("TRACEJIT_BLAS_CORETYPE") or \
        ("SkylakeX" if set(_AVX512) <= _cpu_flags() else None)
    saved = os.environ.get("OPENBLAS_CORETYPE")
    try:
        if coretype:   # read once, by the library's constructor
            os.environ["OPENBLAS_CORETYPE"] = coretype
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        log.log("compile", f"private OpenBLAS not loaded ({e}); products use np.matmul")
        return _lib
    finally:
        if coretype and saved is None:
            del os.environ["OPENBLAS_CORETYPE"]
        elif coretype:
            os.environ["OPENBLAS_CORETYPE"] = saved
    lib.scipy_openblas_set_num_threads(1)
    c_int, ptr = ctypes.c_int, ctypes.c_void_p
    lib.scipy_cblas_sgemm.argtypes = [c_int, c_int, c_int, c_int, c_int, c_int, ctypes.c_float,
                                      ptr, c_int, ptr, c_int, ctypes.c_float, ptr, c_int]
    lib.scipy_cblas_sgemm.restype = None
    lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
    _lib = lib
    return _lib


def corename() -> str | None:
    """The kernels the private OpenBLAS uses (``SkylakeX``, ``Haswell``, ...),
    or None where products go to NumPy."""
    lib = _load()
    return lib.scipy_openblas_get_corename().decode() if lib else None


def gemm_function(dtype):
    """``cblas_sgemm`` for float32, called as ``f(ROW_MAJOR, trans_a,
    trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)`` with data
    addresses; None for other dtypes or without the library."""
    if str(dtype) != "float32":
        return None
    lib = _load()
    return lib.scipy_cblas_sgemm if lib else None
