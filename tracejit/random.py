"""Keys and samplers, as ``jax.random``: every draw is a pure function of an
explicit key, so it is reproducible from the key alone, the same eagerly,
under ``jit`` and on every backend, and keys flow through jitted steps.

    key = tracejit.random.key(0)
    key, sub = tracejit.random.split(key)
    w = tracejit.random.normal(sub, (784, 10))

A key is a ``uint32[2]`` array. All randomness comes from one primitive,
``random_bits`` (Threefry-2x32, see tracejit/primitives/random.py); the
samplers here turn its bits into values with ordinary primitives:

- floats: the top mantissa bits, ``m = bits >> 9`` (float32) or 52 bits
  from two words (float64: ``hi << 20 | lo >> 12``), give ``m * 2**-23``
  (``2**-52``), exactly the ``(bits >> 9 | 0x3f800000) as float - 1``
  trick: exact, so identical on every backend. The float64 words for an
  array of shape ``s`` are the two halves of ``bits(key, (2,) + s)``.
- normal and truncated normal: the inverse normal CDF (Wichura's AS241)
  of a uniform in the open interval (0, 1). These go through ``log`` and
  ``sqrt``, so backends agree to within their math library's rounding.
- integers: Lemire's multiply-shift, ``minval + (bits * span) >> 32``.

The bits match JAX's partitionable threefry bits for the same key; the
derived keys (split, fold_in) and the samplers are tracejit's own.
"""
from __future__ import annotations

import math

import numpy as np

from . import numpy as tnp
from .core import Tracer
from .errors import DTypeError, ShapeError
from .ir.types import FLOATS, INTS, TensorType, canonical_dtype
from .lax import erf
from .primitives import random as _rp

__all__ = ["key", "PRNGKey", "split", "fold_in", "bits", "uniform", "normal",
           "truncated_normal", "bernoulli", "randint", "permutation"]

_U32 = 2 ** 32


def _type(x) -> TensorType:
    return x.aval if isinstance(x, Tracer) else TensorType.of(np.asarray(x))


def _shape(shape) -> tuple:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)


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


def split(key, num: int = 2):
    """``num`` new keys, as a uint32[num, 2] array: the bits of the key for
    counters 0 .. 2*num-1."""
    return bits(key, (int(num), 2))


def fold_in(key, data):
    """A new key from ``key`` and an integer ``data`` (e.g. a step number,
    taken modulo 2**32; may be traced).

    The data is first hashed to two words, ``h = bits(key(data), 2)``, and
    the result is ``bits(key ^ h, 2)``: a fresh Threefry output, with no
    relation between ``fold_in(key(a), b)`` and ``fold_in(key(b), a)``.
    """
    key = _check_key(key)
    if isinstance(data, Tracer):
        if data.aval.dtype not in INTS or data.shape != ():
            raise DTypeError(f"fold_in: data must be an integer scalar, got {data.aval}")
        word = tnp.astype(data, "uint32")
        data_key = tnp.stack([tnp.zeros((), "uint32"), word])
    else:
        data_key = np.array([0, int(np.asarray(data)) % _U32], dtype=np.uint32)
    return bits(tnp.bitwise_xor(key, bits(data_key, 2)), 2)


def _mantissa(key, shape, dtype):
    """Random integers in [0, 2**k) as exact floats of ``dtype`` (k = 23 or
    52), and 2**-k."""
    if dtype == "float32":
        m = tnp.floor_divide(bits(key, shape), 2 ** 9)
        return tnp.astype(m, "float32"), 2.0 ** -23
    words = bits(key, (2,) + shape)
    hi = tnp.astype(words[0], "float64")
    lo = tnp.astype(tnp.floor_divide(words[1], 2 ** 12), "float64")
    return hi * 2.0 ** 20 + lo, 2.0 ** -52


def _is_literal(x, value) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == value


def uniform(key, shape=(), dtype=np.float32, minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval)."""
    dtype, shape = _float_dtype(dtype), _shape(shape)
    m, ulp = _mantissa(_check_key(key), shape, dtype)
    u = m * ulp
    if _is_literal(minval, 0.0) and _is_literal(maxval, 1.0):
        return u
    lo, hi = tnp.asarray(minval, dtype), tnp.asarray(maxval, dtype)
    r = tnp.add(tnp.multiply(u, tnp.subtract(hi, lo)), lo)
    # Rounding can land on maxval itself (p < 2**-23); keep the interval open.
    return tnp.broadcast_to(tnp.where(tnp.less(r, hi), r, lo), shape)


def _open_uniform(key, shape, dtype):
    """Uniform floats in the open interval (0, 1): midpoints ``(m + 0.5) 2**-k``."""
    m, ulp = _mantissa(_check_key(key), shape, dtype)
    return (m + 0.5) * ulp


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


def normal(key, shape=(), dtype=np.float32):
    """Standard normal floats. Their range is about +-5.3 (float32) and
    +-8.1 (float64): the quantiles of the smallest open-uniform draw."""
    dtype, shape = _float_dtype(dtype), _shape(shape)
    return _ndtri(_open_uniform(key, shape, dtype))


def _normal_cdf(x, dtype):
    x = tnp.asarray(x, dtype)
    return 0.5 * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def truncated_normal(key, lower=-2.0, upper=2.0, shape=(), dtype=np.float32):
    """Standard normal floats conditioned on [lower, upper]; the defaults give
    TensorFlow's ``truncated_normal`` (values beyond two standard deviations
    redrawn). Sampled by inverting the CDF on [cdf(lower), cdf(upper)], so
    far tails (both bounds beyond about 5) lose precision."""
    dtype, shape = _float_dtype(dtype), _shape(shape)
    a, b = _normal_cdf(lower, dtype), _normal_cdf(upper, dtype)
    p = tnp.add(a, tnp.multiply(_open_uniform(key, shape, dtype), tnp.subtract(b, a)))
    lo, hi = tnp.asarray(lower, dtype), tnp.asarray(upper, dtype)
    return tnp.broadcast_to(tnp.clip(_ndtri(p), lo, hi), shape)


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability ``p`` (broadcast to ``shape``,
    which defaults to p's shape)."""
    t = _type(p) if not isinstance(p, (int, float)) else TensorType((), "float32")
    dtype = t.dtype if t.dtype in FLOATS else "float32"
    shape = t.shape if shape is None else _shape(shape)
    return tnp.less(uniform(key, shape, dtype), tnp.asarray(p, dtype))


def randint(key, shape, minval, maxval, dtype=np.int32):
    """Integers in [minval, maxval) (``minval`` where ``maxval <= minval``).

    Each draw uses 32 random bits (Lemire's multiply-shift, bias below
    span / 2**32): an int64 span beyond 2**32 does not reach every value,
    and spans must stay below 2**47 to avoid overflow.
    """
    dtype, shape = canonical_dtype(dtype), _shape(shape)
    if dtype not in INTS:
        raise DTypeError(f"randint: an integer dtype is needed, got {dtype}")
    lo, hi = tnp.asarray(minval, "int64"), tnp.asarray(maxval, "int64")
    span = tnp.maximum(tnp.subtract(hi, lo), 0)
    b = tnp.astype(bits(key, shape), "int64")
    b_hi, b_lo = tnp.floor_divide(b, 2 ** 16), tnp.remainder(b, 2 ** 16)
    # floor(b * span / 2**32) without overflowing 64 bits
    offset = tnp.floor_divide(b_hi * span + tnp.floor_divide(b_lo * span, 2 ** 16), 2 ** 16)
    return tnp.broadcast_to(tnp.astype(tnp.add(lo, offset), dtype), shape)


def permutation(key, x, axis: int = 0):
    """A random permutation of ``range(x)`` for an integer ``x``, else of the
    entries of the array ``x`` along ``axis``.

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
    n = tnp.shape(x)[axis]
    rounds = math.ceil(3 * math.log(max(n, 1)) / math.log(_U32))
    for _ in range(rounds):
        key, sub = split(key)
        order = _rp.argsort(bits(sub, (n,)), axis=0, index_dtype="int32")
        x = tnp.take(x, order, axis=axis)
    return x
