"""The CUDA lowering table: primitive -> Python source snippet for
``numba.cuda.jit`` kernels.

Same conventions as the CPU table (tracejit/backends/cpu/snippets.py):
snippets are format strings over operand names, results that are not bool
are wrapped in their dtype's constructor (``f32(...)``), which truncates
Numba's widened integer arithmetic back to the IR dtype. Semantics are
NumPy's: max/min propagate NaN, integer division and remainder floor and
give 0 on division by zero, float division by zero gives inf/nan.

Transcendental functions call libdevice (``libdevice.expf`` ...) on a real
GPU. In Numba's CUDA simulator kernels run as Python on NumPy scalars,
where ``math.exp`` raises on overflow and ``math.sqrt`` on negative input,
so there the same snippets call NumPy's scalar functions instead (which
return inf/nan as libdevice does). ``SIMULATOR`` is fixed at import, as
Numba fixes the simulator when ``numba.cuda`` is first imported.
"""
from __future__ import annotations

import math

import numpy as np
from numba import config

SIMULATOR = bool(config.ENABLE_CUDASIM)

CTOR = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64",
        "uint32": "u32", "bool": "bool"}
#: Numba type names, for shared arrays (bool is stored as uint8).
NBTYPE = {"float32": "nt.float32", "float64": "nt.float64", "int32": "nt.int32",
          "int64": "nt.int64", "uint32": "nt.uint32", "bool": "nt.uint8"}

HEADER = """\
import math
import numpy as np
from numpy import float32 as f32, float64 as f64, int32 as i32, int64 as i64, uint32 as u32
from numba import cuda, types as nt
from tracejit.backends.cuda.intrinsics import random_bits_at, ipow, frem
""" + ("" if SIMULATOR else "from numba.cuda import libdevice\n")

#: unary math: name -> (libdevice stem, NumPy name for the simulator)
_MATH = {"exp": ("exp", "np.exp"), "log": ("log", "np.log"), "log1p": ("log1p", "np.log1p"),
         "expm1": ("expm1", "np.expm1"), "tanh": ("tanh", "np.tanh"), "sin": ("sin", "np.sin"),
         "cos": ("cos", "np.cos"), "sqrt": ("sqrt", "np.sqrt"), "floor": ("floor", "np.floor"),
         "ceil": ("ceil", "np.ceil"), "round": ("rint", "np.rint"), "erf": ("erf", "math.erf")}


def math_call(name: str, dtype: str, arg: str) -> str:
    stem, sim = _MATH[name]
    if SIMULATOR:
        return f"{sim}({arg})"
    return f"libdevice.{stem}{'f' if dtype == 'float32' else ''}({arg})"


def _float(prim, dtype, a):
    if prim in _MATH:
        return math_call(prim, dtype, a[0])
    x = a[0]
    y = a[1] if len(a) > 1 else None
    T = CTOR[dtype]
    table = {
        "neg": f"-{x}",
        "rsqrt": f"{T}(1) / {math_call('sqrt', dtype, x)}",
        "logistic": f"{T}(1) / ({T}(1) + {math_call('exp', dtype, f'-{x}')})",
        "abs": f"abs({x})",
        "sign": f"{x} if {x} != {x} else ({T}(1) if {x} > 0 else ({T}(-1) if {x} < 0 else {T}(0)))",
        "is_finite": f"({x} - {x}) == 0",
        "add": f"{x} + {y}",
        "sub": f"{x} - {y}",
        "mul": f"{x} * {y}",
        "div": f"{x} / {y}",
        "rem": f"{x} % {y}" if SIMULATOR else f"frem({x}, {y})",
        "pow": f"{x} ** {y}" if SIMULATOR else
               f"libdevice.pow{'f' if dtype == 'float32' else ''}({x}, {y})",
        "max": f"{x} if ({x} > {y} or {x} != {x}) else {y}",
        "min": f"{x} if ({x} < {y} or {x} != {x}) else {y}",
    }
    return table.get(prim)


_INT = {
    "neg": "-{0}",
    "abs": "abs({0})",
    "sign": "(1 if {0} > 0 else (-1 if {0} < 0 else 0))",
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    # floor division; x // 0 is 0 and MIN // -1 wraps to MIN, as in NumPy
    "div": "(0 if {1} == 0 else (-{0} if {1} == -1 else {0} // {1}))",
    "rem": "(0 if ({1} == 0 or {1} == -1) else {0} % {1})",
    "pow": "ipow({0}, {1})",
    "max": "{0} if {0} > {1} else {1}",
    "min": "{0} if {0} < {1} else {1}",
    "and": "{0} & {1}",
    "or": "{0} | {1}",
    "xor": "{0} ^ {1}",
    "not": "~{0}",
}
_UINT = dict(_INT, abs="{0}", sign="(1 if {0} > 0 else 0)",
             div="(0 if {1} == 0 else {0} // {1})", rem="(0 if {1} == 0 else {0} % {1})")
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
    if there is no lowering."""
    if prim == "select":
        return f"{args[1]} if {args[0]} else {args[2]}"
    if prim == "convert":
        if out_dtype == "bool":
            return f"{args[0]} != 0"
        return f"{CTOR[out_dtype]}({args[0]})"
    if prim in _COMPARE:
        return _COMPARE[prim].format(*args)
    if in_dtype in ("float32", "float64"):
        return _float(prim, in_dtype, args)
    table = _BOOL if in_dtype == "bool" else _UINT if in_dtype == "uint32" else _INT
    snippet = table.get(prim)
    return None if snippet is None else snippet.format(*args)


def literal(value, dtype: str) -> str:
    """A typed constant (a module-level global of the generated module)."""
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
    """New accumulator value (NaN-propagating max/min, as NumPy)."""
    T = CTOR[dtype]
    if dtype == "bool":
        return f"{acc} or {x}" if prim in ("reduce_sum", "reduce_max") else f"{acc} and {x}"
    floating = dtype in ("float32", "float64")
    if prim == "reduce_sum":
        return f"{T}({acc} + {x})"
    if prim == "reduce_prod":
        return f"{T}({acc} * {x})"
    if prim == "reduce_max":
        nan = f" or {x} != {x}" if floating else ""
        return f"{x} if ({x} > {acc}{nan}) else {acc}"
    if prim == "reduce_min":
        nan = f" or {x} != {x}" if floating else ""
        return f"{x} if ({x} < {acc}{nan}) else {acc}"
    raise KeyError(prim)


def arg_better(prim: str, dtype: str, x: str, best: str) -> str:
    """Condition for argmax/argmin to move to a later element: strictly
    better, or the first NaN (NumPy returns the first NaN's index)."""
    op = ">" if prim == "argmax" else "<"
    if dtype in ("float32", "float64"):
        return f"{x} {op} {best} or ({x} != {x} and {best} == {best})"
    return f"{x} {op} {best}"


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
