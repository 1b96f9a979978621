"""Timing helpers shared by the micro-benchmarks (bench_blas.py, bench_conv.py)."""
import time


def best(f, seconds=0.5):
    """The shortest of repeated calls of ``f`` (after one untimed call):
    at least 5 calls and ``seconds`` of them."""
    f()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)
