"""float32 matrix products: NumPy's OpenBLAS, tracejit's private OpenBLAS
(backends/cpu/blas.py) on one thread and split across tracejit's pool, JAX
and PyTorch, on the shapes the CPU workloads multiply. Prints GFLOP/s
(best of the repeats) with the BLAS kernels each OpenBLAS uses.

    python benchmarks/bench_blas.py
"""
from __future__ import annotations

import ctypes
import glob
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.dirname(__file__))
from tracejit.backends.cpu import blas, library  # noqa: E402
from timing import best  # noqa: E402
from tracejit.backends.cpu.threads import blas_threads, pool  # noqa: E402

SHAPES = {   # (m, k, n)
    "square 2048": (2048, 2048, 2048),
    "MLP layer 1 (256x784 @ 784x300)": (256, 784, 300),
    "conv2 as im2col (9216x1600 @ 1600x64)": (9216, 1600, 64),
    "LSTM step (64x128 @ 128x512)": (64, 128, 512),
}


def numpy_corename():
    here = os.path.dirname(np.__file__)
    for path in glob.glob(os.path.join(here, os.pardir, "numpy.libs", "libscipy_openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "?"


def main():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        jax = None
    try:
        import torch
    except ImportError:
        torch = None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}; NumPy's OpenBLAS kernels: {numpy_corename()} "
          f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}); "
          f"tracejit's: {blas.corename()}")
    print("\n| product | NumPy 1 thread | NumPy all threads | tracejit 1 thread | "
          "tracejit pool split | JAX | PyTorch |\n|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    sgemm = blas.gemm_function("float32")
    for name, (m, k, n) in SHAPES.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        flops = 2.0 * m * k * n
        row = []

        def numpy_mm():
            np.matmul(a, b, out=out)
        previous = blas_threads(1)
        row.append(best(numpy_mm))
        blas_threads(previous)
        row.append(best(numpy_mm))
        if sgemm is not None:
            g = library.Gemm(sgemm, 4, blas.NO_TRANS, blas.NO_TRANS, m, n, k)
            addresses = (a.ctypes.data, b.ctypes.data, out.ctypes.data)
            row.append(best(lambda: g.rows(0, m, *addresses)))
            g.parallel = pool().n > 1
            row.append(best(lambda: g(*addresses)))
            np.testing.assert_allclose(out, a @ b, rtol=1e-3, atol=1e-2)
        else:
            row += [None, None]
        if jax is not None:
            ja, jb = jnp.asarray(a), jnp.asarray(b)
            mm = jax.jit(jnp.matmul)
            row.append(best(lambda: mm(ja, jb).block_until_ready()))
        else:
            row.append(None)
        if torch is not None:
            ta, tb, to = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
            row.append(best(lambda: torch.mm(ta, tb, out=to)))
        else:
            row.append(None)
        cells = [f"{flops / t / 1e9:.0f}" if t else "-" for t in row]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nGFLOP/s, best of repeats over 0.5 s each.")


if __name__ == "__main__":
    main()
