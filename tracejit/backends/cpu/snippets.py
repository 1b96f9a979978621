"""The lowering table: primitive -> Python source snippet for Numba.

Snippets are format strings over the operands' names (``{0}``, ``{1}``, ...)
and ``{T}``, the result's dtype constructor (``f32``, ``i64``, ...); the
code generator wraps integer results (and the few float snippets in
``RETYPED``) in ``{T}(...)``, which truncates Numba's widened integer
arithmetic back to the IR dtype (int32 + int32 is int64 in Numba). Semantics are NumPy's: max/min
propagate NaN (and return the second operand on ties, as np.maximum),
integer division and remainder floor (and give 0 on division by zero, via
``error_model='numpy'``), float division by zero gives inf/nan.

exp, log, tanh, logistic, log1p and expm1 call the branch-free, vectorizable
functions of vmath.py, through intrinsics.py (Numba has no SVML here, so
np.exp in a loop is a scalar libm call that stops the loop from vectorizing).
"""
from __future__ import annotations

import math

import numpy as np

#: (primitive, dtype) -> name of the vmath function (in intrinsics.py) computing it.
VMATH = {(prim, dtype): f"{prim}_{dtype[0]}{dtype[-2:]}"
         for prim in ("exp", "log", "tanh", "logistic", "log1p", "expm1")
         for dtype in ("float32", "float64")}

#: IR dtype -> name of its constructor in generated modules.
CTOR = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64",
        "uint32": "u32", "bool": "bool"}

HEADER = """\
import math
import numpy as np
from numpy import float32 as f32, float64 as f64, int32 as i32, int64 as i64, uint32 as u32
from numba import carray
from tracejit.backends.cpu.intrinsics import {intrinsics}
"""
INTRINSICS = ("radd", "rmul", "fmaximum", "fminimum", "random_bits_at", "ipow")
#: Float snippets whose Numba result type may differ from the operands'.
RETYPED = frozenset({"erf", "pow"})

_FLOAT = {
    "neg": "-{0}",
    "sqrt": "np.sqrt({0})",
    "rsqrt": "{T}(1) / np.sqrt({0})",
    "sin": "np.sin({0})",
    "cos": "np.cos({0})",
    "erf": "math.erf({0})",
    "abs": "abs({0})",
    "sign": "{0} if {0} != {0} else ({T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {T}(0)))",
    "floor": "np.floor({0})",
    "ceil": "np.ceil({0})",
    "round": "np.rint({0})",
    "is_finite": "np.isfinite({0})",
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / {1}",
    "rem": "{0} % {1}",
    "pow": "{0} ** {1}",
    "max": "{0} if ({0} > {1} or {0} != {0}) else {1}",
    "min": "{0} if ({0} < {1} or {0} != {0}) else {1}",
}
_INT = {
    "neg": "-{0}",
    "abs": "abs({0})",
    "sign": "(1 if {0} > 0 else (-1 if {0} < 0 else 0))",
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    # x // -1 and x % -1 apart: MIN // -1 traps on x86 (NumPy wraps to MIN)
    "div": "(-{0} if {1} == -1 else {0} // {1})",
    "rem": "(0 if {1} == -1 else {0} % {1})",
    "pow": "ipow({0}, {1})",
    "max": "{0} if {0} > {1} else {1}",
    "min": "{0} if {0} < {1} else {1}",
    "and": "{0} & {1}",
    "or": "{0} | {1}",
    "xor": "{0} ^ {1}",
    "not": "~{0}",
}
_BOOL = {
    "and": "{0} and {1}",
    "or": "{0} or {1}",
    "xor": "{0} != {1}",
    "not": "not {0}",
    "add": "{0} or {1}",
    "mul": "{0} and {1}",
    "max": "{0} or {1}",
    "min": "{0} and {1}",
    "abs": "{0}",
}
_COMPARE = {"eq": "{0} == {1}", "ne": "{0} != {1}", "lt": "{0} < {1}",
            "le": "{0} <= {1}", "gt": "{0} > {1}", "ge": "{0} >= {1}"}


def elementwise(prim: str, in_dtype: str, out_dtype: str, args: list) -> str | None:
    """Source of an elementwise primitive on operand names ``args``, or None
    if there is no lowering (the plan then calls the primitive's impl)."""
    if prim == "select":
        return f"{args[1]} if {args[0]} else {args[2]}"
    if prim == "convert":
        if out_dtype == "bool":
            return f"{args[0]} != 0"
        return f"{CTOR[out_dtype]}({args[0]})"
    if prim in _COMPARE:
        return _COMPARE[prim].format(*args)
    if in_dtype in ("float32", "float64"):
        if (prim, in_dtype) in VMATH:
            return f"{VMATH[prim, in_dtype]}({args[0]})"
        snippet = _FLOAT.get(prim)
    elif in_dtype == "bool":
        snippet = _BOOL.get(prim)
    else:
        snippet = _INT.get(prim)
        if in_dtype == "uint32" and prim in ("abs", "sign", "div", "rem"):
            snippet = {"abs": "{0}", "sign": "(1 if {0} > 0 else 0)",
                       "div": "{0} // {1}", "rem": "{0} % {1}"}[prim]
    if snippet is None:
        return None
    return snippet.format(*args, T=CTOR[out_dtype])


def literal(value, dtype: str) -> str:
    """A typed constant (a module-level global in generated code)."""
    if dtype == "bool":
        return "True" if value else "False"
    if dtype in ("float32", "float64"):
        v = float(value)
        text = "np.nan" if math.isnan(v) else ("np.inf" if v == math.inf else
                                               "-np.inf" if v == -math.inf else repr(v))
        return f"{CTOR[dtype]}({text})"
    return f"{CTOR[dtype]}({int(value)})"


# --- reductions ------------------------------------------------------------------------

def reduction_init(prim: str, dtype: str):
    """Identity of a reduction, as a Python value."""
    if dtype == "bool":
        return {"reduce_sum": False, "reduce_prod": True, "reduce_max": False,
                "reduce_min": True, "argmax": False, "argmin": True}[prim]
    if prim == "reduce_sum":
        return 0
    if prim == "reduce_prod":
        return 1
    low = prim in ("reduce_max", "argmax")
    if dtype in ("float32", "float64"):
        return -math.inf if low else math.inf
    info = np.iinfo(dtype)
    return int(info.min if low else info.max)


def reduction_combine(prim: str, dtype: str, acc: str, x: str) -> str:
    """New accumulator value. Float sums and products use reassociable
    adds/multiplies (so the loop vectorizes; the result differs from NumPy's
    pairwise sum by rounding only), float max/min LLVM's NaN-propagating
    maximum/minimum."""
    T = CTOR[dtype]
    if dtype == "bool":
        return f"{acc} or {x}" if prim in ("reduce_sum", "reduce_max") else f"{acc} and {x}"
    floating = dtype in ("float32", "float64")
    if prim == "reduce_sum":
        return f"radd({acc}, {x})" if floating else f"{T}({acc} + {x})"
    if prim == "reduce_prod":
        return f"rmul({acc}, {x})" if floating else f"{T}({acc} * {x})"
    if prim == "reduce_max":
        return f"fmaximum({acc}, {x})" if floating else f"{x} if {x} > {acc} else {acc}"
    if prim == "reduce_min":
        return f"fminimum({acc}, {x})" if floating else f"{x} if {x} < {acc} else {acc}"
    raise KeyError(prim)


def arg_better(prim: str, dtype: str, x: str, best: str) -> str:
    """Condition for argmax/argmin to move to a new element: strictly better,
    or the first NaN (NumPy returns the first NaN's index)."""
    op = ">" if prim == "argmax" else "<"
    if dtype in ("float32", "float64"):
        return f"{x} {op} {best} or ({x} != {x} and {best} == {best})"
    return f"{x} {op} {best}"
