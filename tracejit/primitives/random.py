"""Random primitives: counter-based bits from an explicit key, and the sort
that random permutations need.

``random_bits[shape](key: u32[2]) -> u32[shape]`` is the only source of
randomness. It is a pure function of the key, so a value is reproducible
from the key alone and identical on every backend. Element ``i`` (its
row-major flat index, as a 64-bit integer) is::

    y0, y1 = threefry2x32(key[0], key[1], i >> 32, i & 0xffffffff)
    bits[i] = y0 ^ y1

which is JAX's 32-bit ``random_bits`` with ``jax_threefry_partitionable``:
each element depends on its own index only, so a kernel computes any
element alone, in any order, on any device.

``threefry2x32`` below is Threefry-2x32 with 20 rounds (Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011; Random123), written
once for both worlds: on NumPy uint32 arrays it is vectorized, and Numba's
``njit`` compiles the same source for a scalar kernel. Every step is cast
back with ``np.uint32`` because Numba widens uint32 arithmetic to 64 bits.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, ShapeError
from ..ir.types import TensorType
from . import batch_util as bu
from . import control as _control

_MASK = 0xFFFFFFFF
_PARITY = 0x1BD11BDA   # Threefry's key-schedule constant (Skein's C240)
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32-20 of the counter ``(x0, x1)`` under the key ``(k0, k1)``.

    Arguments are uint32 scalars or NumPy uint32 arrays (broadcast together);
    returns ``(y0, y1)``. Self-contained (no helper calls) so that
    ``numba.njit`` compiles it as it is. NumPy callers should silence
    overflow warnings for scalar inputs (``np.errstate(over="ignore")``):
    wrapping is the point.
    """
    ks = (np.uint32(k0), np.uint32(k1), np.uint32(k0 ^ k1 ^ np.uint32(_PARITY)))
    x0 = np.uint32((x0 + ks[0]) & _MASK)
    x1 = np.uint32((x1 + ks[1]) & _MASK)
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = np.uint32((x0 + x1) & _MASK)
            rotated = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) & _MASK
            x1 = np.uint32(rotated ^ x0)
        x0 = np.uint32((x0 + ks[(i + 1) % 3]) & _MASK)
        x1 = np.uint32((x1 + ks[(i + 2) % 3] + np.uint32(i + 1)) & _MASK)
    return x0, x1


def _random_bits_rule(key, *, shape):
    if key.dtype != "uint32" or key.shape != (2,):
        raise DTypeError(f"random_bits: a key is a u32[2] array (from "
                         f"tracejit.random.key), got {key}")
    if any(d < 0 for d in shape):
        raise ShapeError(f"random_bits: negative dimension in shape {tuple(shape)}")
    return TensorType(shape, "uint32")


def _random_bits_impl(key, *, shape):
    index = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint64)
    hi = (index >> np.uint64(32)).astype(np.uint32)
    lo = index.astype(np.uint32)   # keeps the low 32 bits
    with np.errstate(over="ignore"):
        y0, y1 = threefry2x32(key[0], key[1], hi, lo)
    return [(y0 ^ y1).reshape(shape)]


random_bits = Primitive("random_bits", "random", _random_bits_rule, _random_bits_impl,
                        differentiable=False, index_op=True, expensive=True)


# argsort along one axis, stable (equal keys keep their order; NaN sorts
# last, as in NumPy). tracejit.random.permutation sorts random bits with it.
def _argsort_rule(x, *, axis, index_dtype):
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"argsort: axis {axis} out of range for {x}")
    if index_dtype not in ("int32", "int64"):
        raise DTypeError("argsort: index_dtype must be int32 or int64")
    return TensorType(x.shape, index_dtype)


argsort = Primitive(
    "argsort", "other", _argsort_rule,
    lambda x, *, axis, index_dtype: [np.argsort(x, axis=axis, kind="stable").astype(index_dtype)],
    differentiable=False)


# --- batching rules (vmap) ------------------------------------------------------
# A batch of keys draws each example's bits from its own key: a scan over
# the keys (the bits of key k are a pure function of k, so this equals
# drawing with each key alone). argsort sorts along its shifted axis.


def _random_bits_batch(vals, batched, *, shape):
    keys = vals[0]
    body, consts = _control.trace_closed(lambda k: [random_bits(k, shape=shape)],
                                         [TensorType((2,), "uint32")], "random_bits")
    outs = _control.scan.bind(*consts, keys, body=body, num_consts=len(consts), num_carry=0,
                              length=bu.axis_size(vals, batched), reverse=False)
    return outs, [True]


random_bits.def_batch(_random_bits_batch)
argsort.def_batch(bu.shifted_axes("argsort", "axis"))
