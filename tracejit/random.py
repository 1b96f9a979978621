"""Keys and samplers, as ``jax.random``: every draw is a pure function of an
explicit key, so it is reproducible from the key alone, the same eagerly,
under ``jit`` and on every backend, and keys flow through jitted steps.

    key = tracejit.random.key(0)
    key, sub = tracejit.random.split(key)
    w = tracejit.random.normal(sub, (784, 10))

A key is a ``uint32[2]`` array. The scheme is JAX's default one
(``threefry2x32`` with ``jax_threefry_partitionable``, the default since
JAX 0.5), so a program ported from JAX draws the same numbers:

- keys: ``key(seed)`` is ``[seed >> 32, seed & 0xffffffff]``; ``split(key,
  n)[i]`` is the Threefry-2x32 block of counter ``(0, i)``; ``fold_in(key,
  d)`` the block of counter ``(0, d)``.
- ``bits``: element ``i`` is ``y0 ^ y1`` of the block of counter ``i``
  (the ``random_bits`` primitive, see tracejit/primitives/random.py);
  64-bit draws (float64 samplers) use ``y0 << 32 | y1``.
- ``uniform``: the top mantissa bits, ``(bits >> 9) * 2**-23`` (float32) or
  ``(bits64 >> 12) * 2**-52``, scaled to [minval, maxval): exact, so
  identical on every backend and bit-identical to JAX.
- ``randint``, ``bernoulli``, ``permutation``: JAX's algorithms, bit-identical
  (``randint`` for int32 and uint32, JAX's default; int64 draws 32 bits).
- ``normal`` and ``truncated_normal``: ``sqrt(2) * erfinv(u)`` of a uniform
  ``u`` with XLA's single-precision erfinv polynomial (Giles 2010) in
  float32, and the inverse normal CDF (Wichura's AS241) in float64. These
  go through ``log`` and ``sqrt``, so they agree with JAX (and backends with
  each other) to within their math library's rounding.
"""
from __future__ import annotations

import math

import numpy as np

from . import numpy as tnp
from .core import Tracer
from .errors import DTypeError, ShapeError
from .ir.dims import Dim
from .ir.types import FLOATS, INTS, TensorType, canonical_dtype
from .lax import erf
from .primitives import random as _rp

__all__ = ["key", "PRNGKey", "split", "fold_in", "bits", "uniform", "normal",
           "truncated_normal", "bernoulli", "randint", "permutation"]

_U32 = 2 ** 32


def _type(x) -> TensorType:
    return x.aval if isinstance(x, Tracer) else TensorType.of(np.asarray(x))


def _shape(shape) -> tuple:
    """A shape of ints; a symbolic dimension (tracejit/ir/dims.py) stays, and
    the draws are those of the size it is bound to when the function runs."""
    if isinstance(shape, (int, np.integer, Dim)):
        shape = (shape,)
    return tuple(d if isinstance(d, Dim) else int(d) for d in shape)


def _check_key(k):
    k = k if isinstance(k, Tracer) else np.asarray(k)
    t = _type(k)
    if t.dtype != "uint32" or t.shape != (2,):
        raise DTypeError(f"a key is a uint32[2] array from tracejit.random.key(seed), got {t}; "
                         f"index a batch of keys from split() to get one")
    return k


def _float_dtype(dtype) -> str:
    dtype = canonical_dtype(dtype)
    if dtype not in FLOATS:
        raise DTypeError(f"a float dtype (float32 or float64) is needed, got {dtype}")
    return dtype


def key(seed):
    """A key from an integer seed: ``[seed >> 32, seed & 0xffffffff]`` of the
    seed taken modulo 2**64 (as jax.random.key). The seed may be traced."""
    if isinstance(seed, Tracer):
        if seed.aval.dtype not in INTS or seed.shape != ():
            raise DTypeError(f"key: the seed must be an integer scalar, got {seed.aval}")
        s = tnp.astype(seed, "int64")
        hi = tnp.astype(tnp.floor_divide(s, _U32), "uint32")   # wraps mod 2**32
        return tnp.stack([hi, tnp.astype(s, "uint32")])
    seed = int(np.asarray(seed)) % 2 ** 64
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


PRNGKey = key


def bits(key, shape=()):
    """Uniform random uint32 bits of ``shape``."""
    return _rp.random_bits(_check_key(key), shape=_shape(shape))


# Threefry-2x32's rotations and key-schedule constant (Skein's C240), as in
# tracejit/primitives/random.py; here written with tracejit.numpy's uint32
# operations so the block runs eagerly, traced and compiled alike.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _rotl(x, r):
    return tnp.bitwise_or(tnp.multiply(x, np.uint32(2 ** r)),
                          tnp.floor_divide(x, np.uint32(2 ** (32 - r))))


def threefry_2x32(key, x0, x1):
    """The Threefry-2x32-20 block ``(y0, y1)`` of the counters ``(x0, x1)``
    (uint32 arrays of one shape) under ``key``; uint32 arithmetic wraps."""
    key = _check_key(key)
    k0, k1 = key[0], key[1]
    ks = (k0, k1, tnp.bitwise_xor(tnp.bitwise_xor(k0, k1), np.uint32(_PARITY)))
    x0 = tnp.add(tnp.astype(x0, "uint32"), ks[0])
    x1 = tnp.add(tnp.astype(x1, "uint32"), ks[1])
    with np.errstate(over="ignore"):
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x0 = tnp.add(x0, x1)
                x1 = tnp.bitwise_xor(_rotl(x1, r), x0)
            x0 = tnp.add(x0, ks[(i + 1) % 3])
            x1 = tnp.add(tnp.add(x1, ks[(i + 2) % 3]), np.uint32(i + 1))
    return x0, x1


def _counters(shape):
    """The 64-bit row-major index of each element of ``shape`` as (hi, lo)."""
    n = int(np.prod(shape, dtype=np.int64))
    if n > 2 ** 32:
        raise ShapeError(f"random: at most 2**32 draws at once, got shape {shape}")
    lo = tnp.reshape(tnp.arange(n, dtype="uint32"), shape)
    return tnp.zeros(shape, "uint32"), lo


def split(key, num: int = 2):
    """``num`` new keys, a uint32[num, 2] array (JAX's partitionable split:
    key ``i`` is the Threefry block of counter ``(0, i)``)."""
    y0, y1 = threefry_2x32(key, *_counters((int(num),)))
    return tnp.stack([y0, y1], axis=1)


def fold_in(key, data):
    """A new key from ``key`` and an integer ``data`` (e.g. a step number,
    taken modulo 2**32; may be traced): the Threefry block of counter
    ``(0, data)``, as ``jax.random.fold_in``."""
    key = _check_key(key)
    if isinstance(data, Tracer):
        if data.aval.dtype not in INTS or data.shape != ():
            raise DTypeError(f"fold_in: data must be an integer scalar, got {data.aval}")
        word = tnp.astype(data, "uint32")
    else:
        word = np.uint32(int(np.asarray(data)) % _U32)
    y0, y1 = threefry_2x32(key, np.uint32(0), word)
    return tnp.stack([y0, y1])


def _bits64(key, shape):
    """64 random bits per element as the two uint32 words ``(y0, y1)`` of its
    counter's block (JAX's 64-bit ``random_bits`` is ``y0 << 32 | y1``)."""
    return threefry_2x32(key, *_counters(shape))


def _mantissa(key, shape, dtype):
    """Random integers in [0, 2**k) as exact floats of ``dtype`` (k = 23 or
    52), and 2**-k."""
    if dtype == "float32":
        m = tnp.floor_divide(bits(key, shape), np.uint32(2 ** 9))
        return tnp.astype(m, "float32"), 2.0 ** -23
    hi, lo = _bits64(_check_key(key), shape)
    lo = tnp.astype(tnp.floor_divide(lo, np.uint32(2 ** 12)), "float64")
    return tnp.astype(hi, "float64") * 2.0 ** 20 + lo, 2.0 ** -52


def _is_literal(x, value) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == value


def uniform(key, shape=(), dtype=np.float32, minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval): ``u * (maxval - minval) + minval``
    for ``u`` in [0, 1), at least ``minval`` (as JAX's)."""
    dtype, shape = _float_dtype(dtype), _shape(shape)
    m, ulp = _mantissa(_check_key(key), shape, dtype)
    u = m * ulp
    if _is_literal(minval, 0.0) and _is_literal(maxval, 1.0):
        return u
    lo, hi = tnp.asarray(minval, dtype), tnp.asarray(maxval, dtype)
    if dtype == "float32":
        # one rounding of u * (hi - lo) + lo, as XLA's fused multiply-add:
        # the float32 product is exact in float64
        r = tnp.astype(tnp.add(tnp.multiply(tnp.astype(u, "float64"),
                                            tnp.astype(tnp.subtract(hi, lo), "float64")),
                               tnp.astype(lo, "float64")), "float32")
    else:
        r = tnp.add(tnp.multiply(u, tnp.subtract(hi, lo)), lo)
    return tnp.broadcast_to(tnp.maximum(lo, r), shape)


def _polynomial(coefficients, x):
    r = coefficients[0]
    for c in coefficients[1:]:
        r = r * x + c
    return r


# Wichura, "Algorithm AS241: The Percentage Points of the Normal
# Distribution", Applied Statistics 37 (1988) 477-484 (PPND16), highest
# degree first; the same coefficients as CPython's statistics.NormalDist.
_CENTRAL = ((2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
             4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
             1.3314166789178437745e+2, 3.3871328727963666080e+0),
            (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
             2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
             4.2313330701600911252e+1, 1.0))
_NEAR = ((7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
          1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
          4.63033784615654529590e+0, 1.42343711074968357734e+0),
         (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
          1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
          2.05319162663775882187e+0, 1.0))
_FAR = ((2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
         2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
         5.46378491116411436990e+0, 6.65790464350110377720e+0),
        (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
         7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
         5.99832206555887937690e-1, 1.0))


def _ndtri(p):
    """The inverse of the standard normal CDF on p in (0, 1), elementwise."""
    q = p - 0.5
    r = 0.180625 - q * q
    central = q * _polynomial(_CENTRAL[0], r) / _polynomial(_CENTRAL[1], r)
    t = tnp.sqrt(-tnp.log(tnp.minimum(p, 1.0 - p)))
    tail = _polynomial(_NEAR[0], t - 1.6) / _polynomial(_NEAR[1], t - 1.6)
    if _type(p).dtype == "float64":
        # t > 5 needs p < 1.4e-11: unreachable from float32's 24 bits.
        far = _polynomial(_FAR[0], t - 5.0) / _polynomial(_FAR[1], t - 5.0)
        tail = tnp.where(t <= 5.0, tail, far)
    tail = tnp.where(q < 0.0, -tail, tail)
    return tnp.where(tnp.abs(q) <= 0.425, central, tail)


# XLA's single-precision erfinv (Giles, "Approximating the erfinv function",
# 2010), highest degree first, for w = -log1p(-x*x) below and above 5.
_ERFINV_SMALL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_LARGE = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _erfinv32(x):
    """erfinv of float32 ``x`` in (-1, 1), as XLA (and so JAX) computes it."""
    f32 = np.float32
    w = tnp.negative(tnp.log1p(tnp.negative(x * x)))
    small = w < f32(5.0)
    w = tnp.where(small, w - f32(2.5), tnp.sqrt(w) - f32(3.0))
    p = tnp.where(small, f32(_ERFINV_SMALL[0]), f32(_ERFINV_LARGE[0]))
    for a, b in zip(_ERFINV_SMALL[1:], _ERFINV_LARGE[1:]):
        p = tnp.where(small, f32(a), f32(b)) + p * w
    infinity = tnp.where(x > f32(0.0), f32(np.inf), f32(-np.inf))   # not x * inf: 0 * inf warns
    return tnp.where(tnp.abs(x) == f32(1.0), infinity, p * x)


def _sqrt2_erfinv(u, dtype):
    """``sqrt(2) * erfinv(u)``: the standard normal quantile of (u + 1) / 2."""
    if dtype == "float32":
        return np.float32(math.sqrt(2.0)) * _erfinv32(u)
    return _ndtri((u + 1.0) * 0.5)


def normal(key, shape=(), dtype=np.float32):
    """Standard normal floats: ``sqrt(2) * erfinv(u)`` for ``u`` uniform in
    (-1, 1), as JAX draws them."""
    dtype, shape = _float_dtype(dtype), _shape(shape)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    return _sqrt2_erfinv(uniform(key, shape, dtype, lo, 1.0), dtype)


def truncated_normal(key, lower=-2.0, upper=2.0, shape=(), dtype=np.float32):
    """Standard normal floats conditioned on [lower, upper] (JAX's algorithm:
    the inverse of erf on a uniform in [erf(lower/sqrt 2), erf(upper/sqrt 2)),
    clipped into the open interval); the defaults give TensorFlow's
    ``truncated_normal``. Far tails (both bounds beyond about 5) lose
    precision, as in JAX."""
    dtype, shape = _float_dtype(dtype), _shape(shape)
    sqrt2 = np.asarray(math.sqrt(2.0), dtype)
    lower, upper = tnp.asarray(lower, dtype), tnp.asarray(upper, dtype)
    a, b = erf(lower / sqrt2), erf(upper / sqrt2)
    out = _sqrt2_erfinv(uniform(key, shape, dtype, a, b), dtype)
    if isinstance(lower, Tracer) or isinstance(upper, Tracer):
        lo, hi = lower, upper
    else:
        lo = np.nextafter(lower, np.asarray(np.inf, dtype))
        hi = np.nextafter(upper, np.asarray(-np.inf, dtype))
    return tnp.broadcast_to(tnp.clip(out, lo, hi), shape)


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability ``p`` (broadcast to ``shape``,
    which defaults to p's shape): ``uniform(key, shape, dtype(p)) < p``,
    a Python float ``p`` counting as float32 (JAX's default)."""
    t = _type(p) if not isinstance(p, (int, float)) else TensorType((), "float32")
    dtype = t.dtype if t.dtype in FLOATS else "float32"
    shape = t.shape if shape is None else _shape(shape)
    return tnp.less(uniform(key, shape, dtype), tnp.asarray(p, dtype))


def randint(key, shape, minval, maxval, dtype=np.int32):
    """Integers in [minval, maxval) (``minval`` where ``maxval <= minval``).

    JAX's algorithm: two 32-bit draws ``hi, lo`` from ``split(key)`` give
    ``(hi % span * (2**32 % span) + lo % span) % span``, whose bias is below
    ``span / 2**32``; bit-identical to JAX for int32 and uint32 (JAX's
    default). int64 spans beyond 2**32 - 1 are clipped to it.
    """
    dtype, shape = canonical_dtype(dtype), _shape(shape)
    if dtype not in INTS:
        raise DTypeError(f"randint: an integer dtype is needed, got {dtype}")
    info = np.iinfo(dtype)
    lo, hi = tnp.astype(tnp.asarray(minval), "int64"), tnp.astype(tnp.asarray(maxval), "int64")
    # maxval beyond the dtype (randint(k, s, 0, 256, uint8)): one more value
    out_of_range = hi > info.max
    lo = tnp.clip(lo, info.min, info.max)
    hi = tnp.clip(hi, info.min, info.max)
    k1, k2 = split(key)
    higher, lower = bits(k1, shape), bits(k2, shape)
    span = tnp.where(hi <= lo, 1, hi - lo + tnp.where(out_of_range, 1, 0))
    span = tnp.astype(tnp.minimum(span, _U32 - 1), "uint32")
    multiplier = tnp.remainder(np.uint32(2 ** 16), span)
    multiplier = tnp.remainder(multiplier * multiplier, span)
    offset = tnp.remainder(higher, span) * multiplier + tnp.remainder(lower, span)
    offset = tnp.remainder(offset, span)
    return tnp.broadcast_to(tnp.astype(lo + tnp.astype(offset, "int64"), dtype), shape)


def permutation(key, x, axis: int = 0, independent: bool = False):
    """A random permutation of ``range(x)`` for an integer ``x``, else of the
    entries of the array ``x`` along ``axis`` (each slice on its own when
    ``independent``).

    Sorts random bits (the stable ``argsort`` primitive) as JAX does, in
    ``ceil(3 ln n / ln 2**32)`` rounds so that ties between 32-bit keys,
    which keep their order, leave a bias below about 1/n.
    """
    key = _check_key(key)
    if isinstance(x, (int, np.integer)):
        x = tnp.arange(int(x), dtype="int32")
    x = tnp.asarray(x)
    if tnp.ndim(x) == 0:
        raise ShapeError("permutation: x must be an integer or an array of at least one dimension")
    axis = axis % tnp.ndim(x)
    if independent and tnp.ndim(x) > 1:
        rounds = math.ceil(3 * math.log(max(tnp.size(x), 1)) / math.log(_U32 - 1))
        for _ in range(rounds):
            key, sub = split(key)
            order = _rp.argsort(bits(sub, tnp.shape(x)), axis=axis, index_dtype="int32")
            x = tnp.take_along_axis(x, order, axis=axis)
        return x
    n = tnp.shape(x)[axis]
    rounds = math.ceil(3 * math.log(max(n, 1)) / math.log(_U32 - 1))
    for _ in range(rounds):
        key, sub = split(key)
        order = _rp.argsort(bits(sub, (n,)), axis=0, index_dtype="int32")
        x = tnp.take(x, order, axis=axis)
    return x
