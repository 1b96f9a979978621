"""Checks and conversions of a jitted call's array and scalar arguments, so
a call never gives a silently wrong result where NumPy gives a right one or
raises.

* Byte order: arrays in non-native byte order (``>f4`` on x86) are
  *converted* to native order (a copy) before a backend reads their bytes;
  the result is the same as NumPy's.
* Python integers follow NumPy 2 (NEP 50): a Python int is weakly typed and
  takes the dtype of the array it meets, so ``int32 zeros + 2**40`` raises
  OverflowError (as NumPy does) and ``float32 zeros + 2**70`` is 1.18e21.
  A Python int argument is traced as a weak int64; after tracing,
  :func:`int_targets` finds the dtypes it is converted to, and
  :func:`check_ints` checks each call's value against them. An int beyond
  int64 is traced as a weak float64 instead (its exact value cannot be an
  int64), allowed only where every use of it converts it to a float
  (:func:`check_big_int_uses`, from a trace as int64).

Limits: only the argument's own value is checked. Arithmetic among Python
scalars inside the function is weak int64 (as in JAX), so ``s * 2`` with
``s = 2**31``, added to an int32 array, wraps where NumPy (computing ``s *
2`` in Python) raises. A conversion inside a control-flow body (``cond``,
``scan``) that the int is passed into is not seen; the int is then checked
against int64.
"""
from __future__ import annotations

import numpy as np

from .errors import ScalarOverflowError
from .ir.types import INTS, TensorType

_INT64 = np.iinfo(np.int64)


def is_python_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_big_int(x) -> bool:
    """A Python int outside int64's range."""
    return is_python_int(x) and not _INT64.min <= x <= _INT64.max


#: The traced type of a Python int beyond int64 (see the module doc).
BIG_INT_TYPE = TensorType((), "float64", weak=True)
#: The type a Python int beyond int64 is probed with.
INT_TYPE = TensorType((), "int64", weak=True)


def native(x: np.ndarray) -> np.ndarray:
    """``x`` in native byte order (a converted copy if it is not: NumPy
    spells native order ``=``)."""
    if x.dtype.byteorder in ("<", ">"):
        return x.astype(x.dtype.newbyteorder("="))
    return x


def as_array(x) -> np.ndarray:
    """A call's leaf as the native-order array a backend reads."""
    if is_big_int(x):
        try:
            return np.asarray(float(x))
        except OverflowError:
            raise ScalarOverflowError(f"Python integer {x} is too large for any "
                                      f"floating-point dtype") from None
    return native(np.asarray(x))


def int_targets(fn, positions) -> dict:
    """``{leaf position: dtypes}``: for each Python int parameter at
    ``positions`` of traced Function ``fn``, the dtypes it is used as (its
    conversions' dtypes; int64 where it is used as it is)."""
    params = {fn.params[i]: i for i in positions}
    targets = {i: set() for i in positions}
    for ins in fn.body:
        for v in ins.operands:
            i = params.get(v)
            if i is None:
                continue
            if ins.prim == "convert":
                targets[i].add(ins.results[0].type.dtype)
            else:
                targets[i].add(v.type.dtype)
    for v in fn.results:
        if v in params:
            targets[params[v]].add(v.type.dtype)
    return {i: frozenset(t) for i, t in targets.items()}


def _fits(value: int, dtype: str) -> bool:
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def check_ints(leaves, targets: dict):
    """Raise ScalarOverflowError if a Python int leaf does not fit an integer
    dtype it is used as (as NumPy raises OverflowError)."""
    for i, dtypes in targets.items():
        value = leaves[i]
        for dtype in dtypes:
            if dtype in INTS and not _fits(value, dtype):
                raise ScalarOverflowError(f"argument #{i}: Python integer {value} out of "
                                          f"bounds for {dtype}")


def check_big_int_uses(leaves, targets: dict):
    """Raise ScalarOverflowError unless every use of a Python int beyond
    int64 (``targets`` from a trace as int64) converts it to a float."""
    for i, dtypes in targets.items():
        ints = sorted(d for d in dtypes if d in INTS)
        if ints:
            raise ScalarOverflowError(f"argument #{i}: Python integer {leaves[i]} out of "
                                      f"bounds for {ints[0]}")
