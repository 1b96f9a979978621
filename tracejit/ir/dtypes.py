"""The dtypes tracejit supports and their facts, in one table.

Each dtype has a short name for the IR's text form, a kind (bool, integer,
float), the NumPy dtype of its arrays, and two facts for kernels:

- ``storage``: the element type of its buffers as a compiled kernel sees
  them. Numba has no float16 or bfloat16 arithmetic (nor any bfloat16),
  so their buffers are read and written as uint16 bit patterns.
- ``compute``: the dtype a kernel computes the values in. float16 and
  bfloat16 values are float32 scalars inside kernels, rounded back to the
  dtype after every operation (tracejit/kernel/halfs.py), so elementwise
  results are NumPy's (which computes half-precision ufuncs the same way).

bfloat16 is ``ml_dtypes.bfloat16``, the type JAX uses; importing
ml_dtypes registers it with NumPy (``np.dtype('bfloat16')``, casts,
ufuncs and ``np.promote_types``, whose rules tracejit follows: bfloat16
with float16 gives float32, as in JAX). That import takes about 0.7 s (it
registers a dozen dtypes), more than the rest of ``import tracejit``, so it
happens on first use: when a type of dtype bfloat16 is made
(:func:`load_bfloat16`, called by ``TensorType``), when a dtype named
``"bfloat16"`` is read, or on ``dtypes.bfloat16``. A user's bfloat16 array
needs no more: it exists only once ml_dtypes is imported.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np


def load_bfloat16():
    """The ml_dtypes module, imported (and so bfloat16 registered with
    NumPy) on the first call."""
    import ml_dtypes
    return ml_dtypes


def bfloat16_loaded() -> bool:
    """Whether ml_dtypes is imported: before that, no bfloat16 value exists."""
    return "ml_dtypes" in sys.modules


def names_bfloat16(dtype) -> bool:
    """Whether ``dtype`` (a name, type or dtype) is bfloat16, importing
    ml_dtypes only when it is named by a string."""
    if isinstance(dtype, str):
        return dtype == "bfloat16"
    return bfloat16_loaded() and getattr(np.dtype(dtype), "name", "") == "bfloat16"


def finfo(dtype):
    """``np.finfo``, also of bfloat16 (ml_dtypes' finfo)."""
    if names_bfloat16(dtype):
        return load_bfloat16().finfo(dtype)
    return np.finfo(dtype)


def __getattr__(name):
    if name == "bfloat16":   # dtypes.bfloat16: the scalar type
        return load_bfloat16().bfloat16
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class DType:
    name: str
    short: str
    kind: int       # 0 bool, 1 integer, 2 float
    storage: str    # element dtype of a kernel's buffers
    compute: str    # dtype of a kernel's scalars

    @property
    def numpy(self) -> np.dtype:
        if self.name == "bfloat16":
            return np.dtype(load_bfloat16().bfloat16)
        return np.dtype(self.name)


def _d(name, short, kind, storage=None, compute=None):
    return DType(name, short, kind, storage or name, compute or name)


#: Every supported dtype, in promotion order within each kind.
TABLE = {d.name: d for d in (
    _d("bool", "bool", 0),
    _d("int8", "i8", 1),
    _d("int16", "i16", 1),
    _d("int32", "i32", 1),
    _d("int64", "i64", 1),
    _d("uint8", "u8", 1),
    _d("uint16", "u16", 1),
    _d("uint32", "u32", 1),
    _d("float16", "f16", 2, "uint16", "float32"),
    _d("bfloat16", "bf16", 2, "uint16", "float32"),
    _d("float32", "f32", 2),
    _d("float64", "f64", 2),
)}

#: Float dtypes computed in float32 and stored as 16 bits.
HALFS = ("float16", "bfloat16")


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype of IR dtype ``name`` (bfloat16 is ml_dtypes')."""
    return TABLE[name].numpy


def storage(name: str) -> str:
    return TABLE[name].storage


def compute(name: str) -> str:
    return TABLE[name].compute
