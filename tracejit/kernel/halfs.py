"""float16 and bfloat16 inside kernels: float32 values, 16-bit storage.

Numba has no float16 arithmetic and no bfloat16 at all, so a kernel keeps
these dtypes' values as float32 scalars (every float16 and bfloat16 value
is exactly a float32) and converts at its edges:

- a load reads the uint16 bit pattern and widens it (``f16_load``,
  ``bf16_load``: exact);
- a store rounds to nearest, ties to even, and writes the bits
  (``f16_store``, ``bf16_store``), with NumPy's and ml_dtypes' results for
  overflow (inf), subnormals and NaN;
- every operation's result is rounded to the dtype (``f16``, ``bf16``, the
  dtypes' constructors in kernels), so a chain of operations gives NumPy's
  result, which also rounds after each ufunc. Rounding a float32 result of
  +, -, *, / or sqrt of 16-bit values to 16 bits is the correctly rounded
  16-bit result (float32 has more than twice the bits plus two).

A float64 value is rounded to float32 *to odd* first (``f32_odd``), which
makes the two roundings one correct rounding.

These are plain Python on NumPy scalars: each backend compiles them (the
CPU with ``numba.njit``, CUDA as device functions; the CUDA simulator runs
them as they are), and the tests check them against NumPy and ml_dtypes on
every 16-bit pattern. On a CPU with F16C the CPU backend replaces the
float16 ones by the conversion instructions (backends/cpu/intrinsics.py),
which vectorize.
"""
from __future__ import annotations

import types

import numpy as np


def _bits(x):
    """The bit pattern of float32 ``x``, as an int."""
    return np.int64(np.float32(x).view(np.uint32))


def _float(bits):
    """The float32 whose bit pattern is ``bits``."""
    return np.uint32(bits).view(np.float32)


def bf16_store(x):
    """float32 ``x`` -> bfloat16 bits, rounded to nearest even."""
    u = _bits(x)
    if (u & 0x7FFFFFFF) > 0x7F800000:                   # NaN: keep it quiet
        return np.uint16((u >> 16) | 0x40)
    return np.uint16(((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF)


def bf16_load(b):
    """bfloat16 bits -> float32 (exact)."""
    return _float(np.int64(b) << 16)


def f16_store(x):
    """float32 ``x`` -> float16 bits, rounded to nearest even."""
    u = _bits(x)
    sign = (u >> 16) & 0x8000
    a = u & 0x7FFFFFFF
    if a > 0x7F800000:                                  # NaN
        return np.uint16(sign | 0x7E00 | ((a >> 13) & 0x3FF))
    if a >= 0x477FF000:                                 # >= 65520 rounds to inf
        return np.uint16(sign | 0x7C00)
    if a >= 0x38800000:                                 # normal: rebias, round 23 -> 10 bits
        r = a - 0x38000000
        return np.uint16(sign | ((r + 0xFFF + ((r >> 13) & 1)) >> 13))
    e = a >> 23
    if e < 102:                                         # below half the smallest subnormal
        return np.uint16(sign)
    m = (a & 0x7FFFFF) | 0x800000                       # subnormal: m * 2**(e - 150)
    shift = 126 - e
    q = m >> shift
    rest = m & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    if rest > half or (rest == half and (q & 1) == 1):
        q += 1
    return np.uint16(sign | q)


def f16_load(h):
    """float16 bits -> float32 (exact)."""
    h = np.int64(h)
    sign = (h & 0x8000) << 16
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0x1F:
        return _float(sign | 0x7F800000 | (m << 13))
    if e == 0:
        v = np.float32(m) * np.float32(2.0 ** -24)
        return -v if sign else v
    return _float(sign | ((e + 112) << 23) | (m << 13))


def f32_odd(x):
    """float64 ``x`` as a float32 rounded to odd: the nearest float32 toward
    ``x`` with an odd last bit when ``x`` is not a float32."""
    f = np.float32(x)
    if np.float64(f) == x or x != x or f - f != 0:    # exact, NaN or out of range
        return f
    u = _bits(f)
    if (u & 1) == 0:
        u = u + 1 if abs(np.float64(f)) < abs(x) else u - 1
    return _float(u)


def f16(x):
    """``x`` rounded to float16, as a float32 (float16's constructor in kernels)."""
    return f16_load(f16_store(x))


def bf16(x):
    """``x`` rounded to bfloat16, as a float32."""
    return bf16_load(bf16_store(x))


#: The functions generated kernels call.
FUNCTIONS = ("f16", "bf16", "f16_load", "f16_store", "bf16_load", "bf16_store", "f32_odd")


def compiled(jit) -> dict:
    """This module's functions compiled by ``jit`` (``numba.njit``, a CUDA
    device decorator), calling each other's compiled versions: name ->
    compiled function."""
    ns = {"np": np}
    for name, f in list(globals().items()):
        if isinstance(f, types.FunctionType) and f.__module__ == __name__ and name != "compiled":
            ns[name] = jit(types.FunctionType(f.__code__, ns, name, f.__defaults__))
    return ns
