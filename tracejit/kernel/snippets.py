"""The base snippet table: primitive -> Python source for a kernel.

Both backends generate Numba Python (the CPU backend for ``numba.njit``,
the CUDA backend for ``numba.cuda.jit``), so most of a primitive's source
is the same on both: integer, boolean and comparison operators, float
arithmetic, literals, reduction identities and accumulations. A backend's
table is a subclass of ``Snippets`` that overrides only what differs: the
CPU table calls its vectorizable math (backends/cpu/snippets.py), the CUDA
table libdevice (backends/cuda/snippets.py).

Snippets are ``str.format`` templates over the operand names (``{0}``,
``{1}``, ...) and ``{T}``, the constructor of the result dtype (``f32``,
``i64``, ...). Results that are not bool are wrapped in ``{T}(...)`` by the
writer where ``retype`` says so, which truncates Numba's widened integer
arithmetic back to the IR dtype (int32 + int32 is int64 in Numba).
Semantics are NumPy's: max/min propagate NaN (and return the second
operand on ties, as np.maximum), integer division and remainder floor and
give 0 on division by zero, float division by zero gives inf/nan.

Small integers are Numba's int8/16 and uint8/16 (results truncated by
``{T}``: wraparound as in NumPy). float16 and bfloat16 values are float32
scalars in kernels; their constructors ``f16``/``bf16`` round to the dtype,
loads and stores convert the 16-bit patterns (``load``/``store``,
tracejit/kernel/halfs.py).

Adding an elementwise math function (``sinh``, say) is one line here, in
``MATH`` (``MATH2`` for a binary one, such as ``atan2``): its NumPy
spelling (CPU, CUDA simulator) and its libdevice stem (GPU).
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.dtypes import HALFS, compute, numpy_dtype
from ..ir.types import FLOATS

UNSIGNED = ("uint8", "uint16", "uint32")

#: IR dtype -> name of its constructor in generated modules (for float16
#: and bfloat16 a rounding function of halfs.py, which a backend imports).
CTOR = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64",
        "uint32": "u32", "bool": "bool", "int8": "i8", "int16": "i16", "uint8": "u8",
        "uint16": "u16", "float16": "f16", "bfloat16": "bf16"}

#: The imports every generated module starts with (a backend adds its own,
#: among them halfs.FUNCTIONS compiled for it).
HEADER = """\
import math
import numpy as np
from numpy import float32 as f32, float64 as f64, int32 as i32, int64 as i64, uint32 as u32
from numpy import int8 as i8, int16 as i16, uint8 as u8, uint16 as u16
"""

#: Unary float math: primitive -> (Python/NumPy function, libdevice stem).
MATH = {
    "exp": ("np.exp", "exp"),
    "log": ("np.log", "log"),
    "log1p": ("np.log1p", "log1p"),
    "expm1": ("np.expm1", "expm1"),
    "tanh": ("np.tanh", "tanh"),
    "sin": ("np.sin", "sin"),
    "cos": ("np.cos", "cos"),
    "sinh": ("np.sinh", "sinh"),
    "sqrt": ("np.sqrt", "sqrt"),
    "floor": ("np.floor", "floor"),
    "ceil": ("np.ceil", "ceil"),
    "round": ("np.rint", "rint"),
    "erf": ("math.erf", "erf"),
}

#: Binary float math: primitive -> (NumPy function, libdevice stem).
MATH2 = {
    "atan2": ("np.arctan2", "atan2"),
}

FLOAT = {
    "neg": "-{0}",
    "abs": "abs({0})",
    "sign": "{0} if {0} != {0} else ({T}(1) if {0} > 0 else ({T}(-1) if {0} < 0 else {T}(0)))",
    "is_finite": "np.isfinite({0})",
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / {1}",
    "rem": "{0} % {1}",
    "pow": "{0} ** {1}",
    "max": "{0} if ({0} > {1} or {0} != {0}) else {1}",
    "min": "{0} if ({0} < {1} or {0} != {0}) else {1}",
    "guard": "{T}(0) if {0} == 0 else {1}",
}
INT = {
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
    "gcd": "igcd({0}, {1})",
    "max": "{0} if {0} > {1} else {1}",
    "min": "{0} if {0} < {1} else {1}",
    "guard": "0 if {0} == 0 else {1}",
    "and": "{0} & {1}",
    "or": "{0} | {1}",
    "xor": "{0} ^ {1}",
    "not": "~{0}",
}
UINT = dict(INT, abs="{0}", sign="(1 if {0} > 0 else 0)",
            div="(0 if {1} == 0 else {0} // {1})", rem="(0 if {1} == 0 else {0} % {1})")
BOOL = {
    "and": "{0} and {1}",
    "or": "{0} or {1}",
    "xor": "{0} != {1}",
    "not": "not {0}",
    "add": "{0} or {1}",
    "mul": "{0} and {1}",
    "max": "{0} or {1}",
    "min": "{0} and {1}",
    "abs": "{0}",
    # NumPy computes these in int8 and casts back: x // 0 and x % y are 0
    "div": "{0} and {1}",
    "rem": "False",
    "pow": "{0} or not {1}",
    "guard": "{0} and {1}",
}
COMPARE = {"eq": "{0} == {1}", "ne": "{0} != {1}", "lt": "{0} < {1}",
           "le": "{0} <= {1}", "gt": "{0} > {1}", "ge": "{0} >= {1}"}


def dtype_prefix(dtype: str) -> str:
    """'f16' or 'bf16': the prefix of a 16-bit float's functions in halfs.py."""
    return CTOR[dtype]


class Snippets:
    """A backend's lowering table. The class attributes are the tables a
    backend may replace (``FLOAT = dict(FLOAT, rem=...)``); the methods
    are the hooks it may override."""
    CTOR = CTOR
    MATH = MATH
    MATH2 = MATH2
    FLOAT = FLOAT
    INT = INT
    UINT = UINT
    BOOL = BOOL
    COMPARE = COMPARE

    # --- elementwise -----------------------------------------------------------------------
    def math(self, prim: str, dtype: str, arg: str) -> str:
        """A call of unary float function ``prim`` (a key of ``MATH``)."""
        return f"{self.MATH[prim][0]}({arg})"

    def math2(self, prim: str, dtype: str, x: str, y: str) -> str:
        """A call of binary float function ``prim`` (a key of ``MATH2``)."""
        return f"{self.MATH2[prim][0]}({x}, {y})"

    def float_op(self, prim: str, dtype: str, args: list) -> str | None:
        if prim in self.MATH:
            return self.math(prim, dtype, args[0])
        if prim in self.MATH2:
            return self.math2(prim, dtype, args[0], args[1])
        T = self.CTOR[dtype]
        if prim == "rsqrt":
            return f"{T}(1) / {self.math('sqrt', dtype, args[0])}"
        if prim == "logistic":
            return f"{T}(1) / ({T}(1) + {self.math('exp', dtype, '-' + args[0])})"
        snippet = self.FLOAT.get(prim)
        return None if snippet is None else snippet.format(*args, T=T)

    def elementwise(self, prim: str, in_dtype: str, out_dtype: str, args: list) -> str | None:
        """Source of an elementwise primitive on operand names ``args``, or
        None if there is no lowering (the kernel then runs in the interpreter,
        which the test of the lowering tables keeps to a pinned list)."""
        if prim == "select":
            return f"{args[1]} if {args[0]} else {args[2]}"
        if prim == "convert":
            if out_dtype == "bool":
                return f"{args[0]} != 0"
            if out_dtype in HALFS and in_dtype not in HALFS and \
                    in_dtype not in ("float32", "bool", "int8", "int16", "uint8", "uint16"):
                # one rounding: through float64, then float32 rounded to odd
                return f"{self.CTOR[out_dtype]}(f32_odd(f64({args[0]})))"
            return f"{self.CTOR[out_dtype]}({args[0]})"
        if prim in self.COMPARE:
            return self.COMPARE[prim].format(*args)
        if in_dtype in FLOATS:
            return self.float_op(prim, in_dtype, args)
        table = self.BOOL if in_dtype == "bool" else self.UINT if in_dtype in UNSIGNED else self.INT
        snippet = table.get(prim)
        return None if snippet is None else snippet.format(*args, T=self.CTOR[out_dtype])

    def load(self, dtype: str, element: str) -> str:
        """The value of array element ``element`` (a float16/bfloat16 array
        holds bit patterns)."""
        return f"{dtype_prefix(dtype)}_load({element})" if dtype in HALFS else element

    def store(self, dtype: str, value: str) -> str:
        """What is written to an array element of ``dtype`` for ``value``."""
        return f"{dtype_prefix(dtype)}_store({value})" if dtype in HALFS else value

    def retype(self, prim: str, out_dtype: str) -> bool:
        """Whether the writer wraps the snippet's result in ``{T}(...)``."""
        return out_dtype != "bool" and prim != "convert"

    def imports(self, prim: str, dtype: str) -> tuple:
        """Names the generated module imports for this primitive's snippet."""
        return ()

    def random_bits(self, k0: str, k1: str, index: str) -> str:
        return f"random_bits_at({k0}, {k1}, {index})"

    # --- literals ----------------------------------------------------------------------------
    def literal(self, value, dtype: str) -> str:
        """A typed constant (a module-level global of the generated module)."""
        if dtype == "bool":
            return "True" if value else "False"
        if dtype in FLOATS:
            v = float(value)
            if dtype in HALFS:
                with np.errstate(all="ignore"):
                    v = float(np.asarray(value).astype(numpy_dtype(dtype)))   # rounded
            text = "np.nan" if math.isnan(v) else ("np.inf" if v == math.inf else
                                                   "-np.inf" if v == -math.inf else repr(v))
            return f"{self.CTOR[compute(dtype)]}({text})"
        return f"{self.CTOR[dtype]}({int(value)})"

    # --- reductions --------------------------------------------------------------------------
    def reduction_init(self, prim: str, dtype: str):
        """Identity of a reduction, as a Python value."""
        if dtype == "bool":
            return {"reduce_sum": False, "reduce_prod": True, "reduce_max": False,
                    "reduce_min": True, "argmax": False, "argmin": True}[prim]
        if prim == "reduce_sum":
            return 0
        if prim == "reduce_prod":
            return 1
        low = prim in ("reduce_max", "argmax")
        if dtype in FLOATS:
            return -math.inf if low else math.inf
        info = np.iinfo(dtype)
        return int(info.min if low else info.max)

    def reduction_combine(self, prim: str, dtype: str, acc: str, x: str) -> str:
        """New accumulator value (NaN-propagating max/min, as NumPy)."""
        T = self.CTOR[dtype]
        if dtype == "bool":
            return f"{acc} or {x}" if prim in ("reduce_sum", "reduce_max") else f"{acc} and {x}"
        nan = f" or {x} != {x}" if dtype in FLOATS else ""
        if prim == "reduce_sum":
            return f"{T}({acc} + {x})"
        if prim == "reduce_prod":
            return f"{T}({acc} * {x})"
        if prim == "reduce_max":
            return f"{x} if ({x} > {acc}{nan}) else {acc}"
        if prim == "reduce_min":
            return f"{x} if ({x} < {acc}{nan}) else {acc}"
        raise KeyError(prim)

    def arg_better(self, prim: str, dtype: str, x: str, best: str) -> str:
        """Condition for argmax/argmin to move to a later element: strictly
        better, or the first NaN (NumPy returns the first NaN's index)."""
        op = ">" if prim == "argmax" else "<"
        if dtype in FLOATS:
            return f"{x} {op} {best} or ({x} != {x} and {best} == {best})"
        return f"{x} {op} {best}"
