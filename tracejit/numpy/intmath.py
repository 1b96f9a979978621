"""Integer number theory: ``gcd`` and ``lcm``, as NumPy's ufuncs.

``gcd`` is a primitive (Euclid's algorithm in a kernel, like integer
``pow``); ``lcm`` is ``|x1| // gcd * |x2|`` (NumPy's formula) and 0 where either is 0.
Integer overflow wraps, as in NumPy. Floats raise DTypeError (NumPy: a
TypeError). Neither is differentiable (integer-valued).
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError
from ..ir.types import INTS
from ..naming import add_name_keyword
from ..primitives import elementwise as _ew
from . import base as tnp


def _ints(name, x1, x2):
    dt = tnp.result_type(x1, x2)
    if dt == np.bool_:
        dt = np.dtype(np.int8)   # NumPy computes the boolean gcd in int8
    if dt.name not in INTS:
        raise DTypeError(f"{name}: needs integer operands, got {dt.name}")
    a, b = (tnp.astype(x, dt) for x in (x1, x2))
    return tnp.broadcast_arrays(a, b)


def gcd(x1, x2):
    a, b = _ints("gcd", x1, x2)
    return _ew.gcd(a, b)


def lcm(x1, x2):
    a, b = _ints("lcm", x1, x2)
    g = _ew.gcd(a, b)
    zero = np.asarray(0, a.dtype)
    safe = tnp.where(g == zero, np.asarray(1, a.dtype), g)
    return tnp.where(g == zero, zero, (tnp.abs(a) // safe) * tnp.abs(b))   # wraps as NumPy


__all__ = ["gcd", "lcm"]
add_name_keyword(globals(), __all__)
