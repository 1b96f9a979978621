"""The CPU lowering table: the base table (tracejit/kernel/snippets.py)
with what differs for ``numba.njit`` kernels compiled ahead of time.

- exp, log, tanh, logistic, log1p and expm1 call the branch-free,
  vectorizable functions of vmath.py, through intrinsics.py (Numba has no
  SVML here, so np.exp in a loop is a scalar libm call that stops the loop
  from vectorizing).
- Integer division and remainder leave division by zero to Numba's
  ``error_model='numpy'`` (0, as NumPy), so the loop stays branch-light;
  only ``x // -1`` and ``x % -1`` are set apart (MIN // -1 traps on x86,
  NumPy wraps to MIN).
- Float sums and products use reassociable adds/multiplies (so the loop
  vectorizes; the result differs from NumPy's pairwise sum by rounding
  only), float max/min LLVM's NaN-propagating maximum/minimum.
- Float results are not wrapped in their constructor (Numba keeps float32
  arithmetic in float32) except for the snippets in ``RETYPED``.
- Choices without side effects are branch-free: ``select`` (intrinsics.py,
  an LLVM select) instead of ``a if c else b``, ``&``/``|`` instead of
  ``and``/``or``. Each Python conditional is a basic block for Numba, whose
  front end grows faster than linearly in their number; LLVM would turn
  most of them back into selects anyway. Integer ``// -1`` stays a branch
  (computing ``MIN // -1`` would trap).
"""
from __future__ import annotations

from ...ir.dtypes import compute
from ...kernel import halfs
from ...kernel import snippets as base

#: (primitive, dtype) -> name of the vmath function (in intrinsics.py) computing it.
VMATH = {(prim, dtype): f"{prim}_{dtype[0]}{dtype[-2:]}"
         for prim in ("exp", "log", "tanh", "logistic", "log1p", "expm1")
         for dtype in ("float32", "float64")}

CTOR = base.CTOR

HEADER = base.HEADER + """\
from numba import carray
from tracejit.backends.cpu.intrinsics import {intrinsics}
"""
INTRINSICS = ("radd", "rmul", "fmaximum", "fminimum", "random_bits_at", "ipow", "igcd",
              "select") + halfs.FUNCTIONS
#: Float snippets whose Numba result type may differ from the operands'
#: (and every binary math function, ``MATH2``).
RETYPED = frozenset({"erf", "pow"})
_FLOAT_REDUCE = {"reduce_sum": "radd", "reduce_prod": "rmul", "reduce_max": "fmaximum",
                 "reduce_min": "fminimum"}


_SIGN = "select({0} > 0, {T}(1), select({0} < 0, {T}(-1), {T}(0)))"


class CpuSnippets(base.Snippets):
    FLOAT = dict(base.FLOAT, sign=f"select({{0}} != {{0}}, {{0}}, {_SIGN})",
                 max="select(({0} > {1}) | ({0} != {0}), {0}, {1})",
                 min="select(({0} < {1}) | ({0} != {0}), {0}, {1})",
                 guard="select({0} == 0, {T}(0), {1})")
    INT = dict(base.INT, div="(-{0} if {1} == -1 else {0} // {1})",
               rem="(0 if {1} == -1 else {0} % {1})", sign=_SIGN,
               max="select({0} > {1}, {0}, {1})", min="select({0} < {1}, {0}, {1})")
    UINT = dict(base.UINT, div="{0} // {1}", rem="{0} % {1}", sign="select({0} > 0, {T}(1), {T}(0))",
                max="select({0} > {1}, {0}, {1})", min="select({0} < {1}, {0}, {1})")
    BOOL = dict(base.BOOL, **{"and": "{0} & {1}", "or": "{0} | {1}", "add": "{0} | {1}",
                              "mul": "{0} & {1}", "max": "{0} | {1}", "min": "{0} & {1}"})

    def elementwise(self, prim, in_dtype, out_dtype, args):
        if prim == "select":
            return f"select({args[0]}, {args[1]}, {args[2]})"
        return super().elementwise(prim, in_dtype, out_dtype, args)

    def float_op(self, prim, dtype, args):
        if (prim, compute(dtype)) in VMATH:   # float16/bfloat16: in float32
            return f"{VMATH[prim, compute(dtype)]}({args[0]})"
        return super().float_op(prim, dtype, args)

    def imports(self, prim, dtype):
        return (VMATH[prim, compute(dtype)],) if (prim, compute(dtype)) in VMATH else ()

    def retype(self, prim, out_dtype):
        return super().retype(prim, out_dtype) and \
            (out_dtype not in ("float32", "float64") or prim in RETYPED or prim in self.MATH2)

    def reduction_combine(self, prim, dtype, acc, x):
        if dtype in base.FLOATS and prim in _FLOAT_REDUCE:
            return f"{_FLOAT_REDUCE[prim]}({acc}, {x})"
        if dtype == "bool":
            return f"{acc} | {x}" if prim in ("reduce_sum", "reduce_max") else f"{acc} & {x}"
        if prim == "reduce_max":
            return f"select({x} > {acc}, {x}, {acc})"
        if prim == "reduce_min":
            return f"select({x} < {acc}, {x}, {acc})"
        return super().reduction_combine(prim, dtype, acc, x)


SNIPPETS = CpuSnippets()
