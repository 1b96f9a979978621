"""Fused loop with libm vs vmath transcendentals, and NumPy eager.

Computes tanh(x*0.7 - 0.3) * logistic(x) + 0.5*x*x on float32 arrays; the
last column is the largest absolute difference from NumPy's result.
Run from the repository root: python -m benchmarks.bench_vmath [--n N] [--repeat R]
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit

from tracejit.backends.cpu.vmath import logistic_f32, tanh_f32

_A, _B, _H, _ONE = np.float32(0.7), np.float32(0.3), np.float32(0.5), np.float32(1)


@njit
def fused_libm(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = np.tanh(v * _A - _B) * (_ONE / (_ONE + np.exp(-v))) + _H * v * v


@njit
def fused_vmath(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = tanh_f32(v * _A - _B) * logistic_f32(v) + _H * v * v


def numpy_eager(x, out):
    t = np.tanh(x * _A - _B)
    t *= _ONE / (_ONE + np.exp(-x))
    np.add(t, _H * x * x, out=out)


def median_time(fn, x, out, repeat):
    fn(x, out)  # compile / warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x, out)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    x = np.random.default_rng(0).standard_normal(args.n, dtype=np.float32) * np.float32(3)
    variants = {
        "njit + np.tanh/np.exp": fused_libm,
        "njit + vmath": fused_vmath,
        "numpy eager": numpy_eager,
    }
    outs, times = {}, {}
    for name, fn in variants.items():
        outs[name] = np.empty_like(x)
        times[name] = median_time(fn, x, outs[name], args.repeat)

    ref = outs["numpy eager"]
    base = times["njit + vmath"]
    print(f"n = {args.n:,} float32, median of {args.repeat}")
    print(f"{'variant':<24}{'ms':>9}{'vs vmath':>10}{'max |err|':>12}")
    for name, t in times.items():
        err = float(np.max(np.abs(outs[name] - ref)))
        print(f"{name:<24}{t * 1e3:>9.1f}{t / base:>9.1f}x{err:>12.2e}")


if __name__ == "__main__":
    main()
