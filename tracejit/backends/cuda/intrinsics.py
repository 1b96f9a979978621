"""Device functions that generated CUDA kernels call.

``random_bits_at`` is the Threefry-2x32 stream of
tracejit/primitives/random.py, compiled from the same source as a device
function, so random bits are bitwise identical to the reference and CPU
backends. ``ipow`` is integer power by squaring (wrapping like NumPy, 0 for
negative exponents, as on the CPU). ``frem`` is NumPy's float remainder
(sign of the divisor) from the C ``fmod`` of libdevice; under the CUDA
simulator kernels use Python's ``%`` on NumPy scalars instead, which is
NumPy's remainder already (and ``math.fmod`` would raise there).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ...kernel import halfs
from ...primitives.random import threefry2x32

_threefry = cuda.jit(device=True)(threefry2x32)


@cuda.jit(device=True)
def random_bits_at(k0, k1, index):
    """Element ``index`` (row-major) of random_bits under key (k0, k1)."""
    i = np.uint64(index)
    y0, y1 = _threefry(np.uint32(k0), np.uint32(k1), np.uint32(i >> np.uint64(32)),
                       np.uint32(i & np.uint64(0xFFFFFFFF)))
    return np.uint32(y0 ^ y1)


@cuda.jit(device=True)
def igcd(a, b):
    """The greatest common divisor of |a| and |b| (Euclid), as np.gcd."""
    a, b = abs(a), abs(b)
    while b != 0:
        a, b = b, a % b
    return a


@cuda.jit(device=True)
def ipow(base, exponent):
    """Integer power by squaring, wrapping on overflow like NumPy; 0 for a
    negative exponent (where NumPy raises: kernels cannot)."""
    result = base - base + 1
    if exponent < 0:
        return result - result
    while exponent:
        if exponent & 1:
            result *= base
        base *= base
        exponent >>= 1
    return result


@cuda.jit(device=True)
def frem(x, y):
    """np.remainder on floats: C fmod, moved to the divisor's sign; a zero
    result takes the divisor's sign; NaN for y == 0."""
    m = math.fmod(x, y)
    if y == 0:
        return m
    if m != 0:
        if (y < 0) != (m < 0):
            m += y
    else:
        m = math.copysign(m - m, y)
    return m


# float16/bfloat16 conversions and rounding (tracejit/kernel/halfs.py)
_halfs = halfs.compiled(cuda.jit(device=True))
f16, bf16, f32_odd = _halfs["f16"], _halfs["bf16"], _halfs["f32_odd"]
f16_load, f16_store = _halfs["f16_load"], _halfs["f16_store"]
bf16_load, bf16_store = _halfs["bf16_load"], _halfs["bf16_store"]
