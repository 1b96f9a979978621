"""The CIFAR-10 CNN's convolutions (benchmarks/workloads.py cnn_step: the
forward ones and those its gradient lowers to) as tracejit plans, in
GFLOP/s beside float32 matrix-product peaks measured in the same run: the
private OpenBLAS's sgemm on one thread and split across tracejit's pool
(a square 2048 product), and PyTorch's convolution on the same shapes
(NCHW, its default). Issue 16 asks for a convolution lowering at 60% of
the measured matmul peak or better.

    python benchmarks/bench_conv.py
"""
from __future__ import annotations

import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.dirname(__file__))
import tracejit  # noqa: E402
from tracejit import lax  # noqa: E402
from tracejit.backends.cpu import blas, library  # noqa: E402
from timing import best  # noqa: E402
from tracejit.backends.cpu.threads import pool  # noqa: E402

# name: (lhs [N, H, W, C], rhs [KH, KW, C, O], padding); stride and dilations 1.
# A kernel gradient is a convolution of the input with channels and batch
# swapped ([C, H, W, N]) by the output cotangent as the window ([H', W', N, O]).
CONVS = {
    "conv1 forward": ((64, 24, 24, 3), (5, 5, 3, 64), 2),
    "conv1 kernel gradient": ((3, 24, 24, 64), (24, 24, 64, 64), 2),
    "conv2 forward": ((64, 12, 12, 64), (5, 5, 64, 64), 2),
    "conv2 input gradient": ((64, 12, 12, 64), (5, 5, 64, 64), 2),
    "conv2 kernel gradient": ((64, 12, 12, 64), (12, 12, 64, 64), 2),
}


def main():
    try:
        import torch
    except ImportError:
        torch = None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}; tracejit's OpenBLAS kernels: {blas.corename()}, "
          f"pool of {pool().n} threads")
    rng = np.random.default_rng(0)
    sgemm = blas.gemm_function("float32")
    peak = {}
    if sgemm is not None:
        m = 2048
        a, b = (rng.standard_normal((m, m), dtype=np.float32) for _ in range(2))
        out = np.empty((m, m), np.float32)
        g = library.Gemm(sgemm, 4, blas.NO_TRANS, blas.NO_TRANS, m, m, m)
        addresses = (a.ctypes.data, b.ctypes.data, out.ctypes.data)
        peak["1 thread"] = 2.0 * m**3 / best(lambda: g.rows(0, m, *addresses)) / 1e9
        g.parallel = pool().n > 1
        peak["pool"] = 2.0 * m**3 / best(lambda: g(*addresses)) / 1e9
        print(f"\nsgemm 2048^3: {peak['1 thread']:.0f} GFLOP/s on one thread, "
              f"{peak['pool']:.0f} split across the pool")
    print("\n| convolution | tracejit ms | GFLOP/s | of pool sgemm peak | PyTorch ms | GFLOP/s |"
          "\n|---|---:|---:|---:|---:|---:|")
    for name, (xs, ws, p) in CONVS.items():
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        conv = tracejit.jit(lambda x, w, p=p: lax.conv_general(x, w, (1, 1), ((p, p), (p, p))))
        y = conv(x, w)
        flops = 2.0 * np.prod(y.shape) * np.prod(ws[:-1])
        t = best(lambda: conv(x, w))
        row = f"| {name} {xs}*{ws} | {1e3 * t:.2f} | {flops / t / 1e9:.0f} | " + \
            (f"{flops / t / 1e9 / peak['pool']:.0%}" if peak else "-")
        if torch is not None:
            tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
            tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
            with torch.no_grad():
                ty = torch.nn.functional.conv2d(tx, tw, padding=p)
                np.testing.assert_allclose(ty.permute(0, 2, 3, 1).numpy(), np.asarray(y),
                                           rtol=1e-3, atol=1e-2 * np.abs(y).max())
                tt = best(lambda: torch.nn.functional.conv2d(tx, tw, padding=p))
            row += f" | {1e3 * tt:.2f} | {flops / tt / 1e9:.0f} |"
        else:
            row += " | - | - |"
        print(row)
    print("\nBest of repeats over 0.5 s each; FLOPs 2 x output size x window x input channels.")


if __name__ == "__main__":
    main()
