"""The CUDA lowering table: the base table (tracejit/kernel/snippets.py)
with what differs for ``numba.cuda.jit`` kernels.

Transcendental functions call libdevice (``libdevice.expf`` ...) on a real
GPU. In Numba's CUDA simulator kernels run as Python on NumPy scalars,
where ``math.exp`` raises on overflow and ``math.sqrt`` on negative input,
so there the same snippets call NumPy's scalar functions instead (which
return inf/nan as libdevice does). ``SIMULATOR`` is fixed at import, as
Numba fixes the simulator when ``numba.cuda`` is first imported.
"""
from __future__ import annotations

from numba import config

from ...kernel import halfs
from ...kernel import snippets as base

SIMULATOR = bool(config.ENABLE_CUDASIM)

CTOR = base.CTOR
#: Numba type names, for shared arrays (bool is stored as uint8).
NBTYPE = {"float32": "nt.float32", "float64": "nt.float64", "int32": "nt.int32",
          "int64": "nt.int64", "uint32": "nt.uint32", "bool": "nt.uint8", "int8": "nt.int8",
          "int16": "nt.int16", "uint8": "nt.uint8", "uint16": "nt.uint16",
          "float16": "nt.float32", "bfloat16": "nt.float32"}   # 16-bit floats: in float32

HEADER = base.HEADER + """\
from numba import cuda, types as nt
from tracejit.backends.cuda.intrinsics import random_bits_at, ipow, igcd, frem
from tracejit.backends.cuda.intrinsics import {halfs}
""".replace("{halfs}", ", ".join(halfs.FUNCTIONS)) + \
    ("" if SIMULATOR else "from numba.cuda import libdevice\n")


class CudaSnippets(base.Snippets):
    """libdevice for math on a GPU; the base table's NumPy calls under the
    simulator. Float ``rem`` is NumPy's remainder (``frem``), ``is_finite``
    needs no libdevice call, and every result is wrapped in its dtype's
    constructor."""
    FLOAT = dict(base.FLOAT, is_finite="({0} - {0}) == 0",
                 **({} if SIMULATOR else {"rem": "frem({0}, {1})"}))

    def math(self, prim, dtype, arg):
        if SIMULATOR:
            return super().math(prim, dtype, arg)
        return f"libdevice.{self.MATH[prim][1]}{'f' if dtype == 'float32' else ''}({arg})"

    def math2(self, prim, dtype, x, y):
        if SIMULATOR:
            return super().math2(prim, dtype, x, y)
        return f"libdevice.{self.MATH2[prim][1]}{'f' if dtype == 'float32' else ''}({x}, {y})"

    def float_op(self, prim, dtype, args):
        if prim == "pow" and not SIMULATOR:
            return f"libdevice.pow{'f' if dtype == 'float32' else ''}({args[0]}, {args[1]})"
        return super().float_op(prim, dtype, args)

    def random_bits(self, k0, k1, index):
        return f"random_bits_at({k0}, {k1}, i64({index}))"


SNIPPETS = CudaSnippets()


def arg_combine(prim: str, dtype: str, va, ia, vb, ib) -> str:
    """Condition for partial result (vb, ib) to beat (va, ia) in the tree
    reduction: an index of -1 means no element; among equal values (or
    NaNs) the first index wins."""
    op = ">" if prim == "argmax" else "<"
    tie = f"({vb} == {va} and {ib} < {ia})"
    if dtype in ("float32", "float64"):
        body = (f"({vb} != {vb} and ({va} == {va} or {ib} < {ia})) or "
                f"({va} == {va} and {vb} == {vb} and ({vb} {op} {va} or {tie}))")
    else:
        body = f"{vb} {op} {va} or {tie}"
    return f"{ib} >= 0 and ({ia} < 0 or {body})"
