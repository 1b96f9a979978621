"""Elementwise primitives: operands all have one shape (broadcasting is
explicit in the IR, via broadcast_in_dim) and, except for select and
convert, one dtype."""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.types import FLOATS, TensorType
from .core import Primitive


def _same(name, *types):
    t0 = types[0]
    for t in types[1:]:
        if t.shape != t0.shape:
            raise ShapeError(f"{name}: operand shapes differ: "
                             + ", ".join(str(t) for t in types))
        if t.dtype != t0.dtype:
            raise DTypeError(f"{name}: operand dtypes differ: "
                             + ", ".join(str(t) for t in types))
    return TensorType(t0.shape, t0.dtype, all(t.weak for t in types))


def _errstate(fn):
    def run(*args, **attrs):
        with np.errstate(all="ignore"):
            return [fn(*args, **attrs)]
    return run


def unary(name, impl, floats_only=False, out_dtype=None):
    def rule(x):
        if floats_only and x.dtype not in FLOATS:
            raise DTypeError(f"{name} needs a float operand, got {x}")
        return TensorType(x.shape, out_dtype or x.dtype, x.weak and out_dtype is None)

    def run(x):
        r = impl(x)
        return np.asarray(r, dtype=out_dtype or x.dtype)
    return Primitive(name, "elementwise", rule, _errstate(run))


def binary(name, impl, out_dtype=None):
    def rule(x, y):
        t = _same(name, x, y)
        return TensorType(t.shape, out_dtype or t.dtype, t.weak and out_dtype is None)

    def run(x, y):
        return np.asarray(impl(x, y), dtype=out_dtype or x.dtype)
    return Primitive(name, "elementwise", rule, _errstate(run))


def _expit(x):
    import scipy.special   # imported on first use: it costs 0.3 s at import time
    return scipy.special.expit(x)


def _erf(x):
    import scipy.special
    return scipy.special.erf(x)


def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _floor_div(x, y):
    if x.dtype.kind == "f":
        return x / y
    return np.floor_divide(x, y)


def _pow(x, y):
    return np.power(x, y)


# --- unary math ---------------------------------------------------------
neg = unary("neg", np.negative)
exp = unary("exp", np.exp, floats_only=True)
log = unary("log", np.log, floats_only=True)
log1p = unary("log1p", np.log1p, floats_only=True)
expm1 = unary("expm1", np.expm1, floats_only=True)
tanh = unary("tanh", np.tanh, floats_only=True)
logistic = unary("logistic", _expit, floats_only=True)
sqrt = unary("sqrt", np.sqrt, floats_only=True)
rsqrt = unary("rsqrt", _rsqrt, floats_only=True)
sin = unary("sin", np.sin, floats_only=True)
cos = unary("cos", np.cos, floats_only=True)
erf = unary("erf", _erf, floats_only=True)
abs = unary("abs", np.abs)
sign = unary("sign", np.sign)
floor = unary("floor", np.floor, floats_only=True)
ceil = unary("ceil", np.ceil, floats_only=True)
round = unary("round", np.round, floats_only=True)   # half to even, as NumPy
is_finite = unary("is_finite", np.isfinite, floats_only=True, out_dtype="bool")


def _not(x):
    return np.logical_not(x) if x.dtype == np.bool_ else np.invert(x)


not_ = unary("not", _not)

# --- binary arithmetic ----------------------------------------------------
add = binary("add", np.add)
sub = binary("sub", np.subtract)
mul = binary("mul", np.multiply)
div = binary("div", _floor_div)   # true division on floats, floor division on ints
rem = binary("rem", np.remainder)   # NumPy's sign convention (follows divisor)
pow = binary("pow", _pow)
max = binary("max", np.maximum)   # NaN-propagating, as np.maximum
min = binary("min", np.minimum)
and_ = binary("and", np.bitwise_and)
or_ = binary("or", np.bitwise_or)
xor = binary("xor", np.bitwise_xor)

# --- comparisons -> bool ---------------------------------------------------
eq = binary("eq", np.equal, "bool")
ne = binary("ne", np.not_equal, "bool")
lt = binary("lt", np.less, "bool")
le = binary("le", np.less_equal, "bool")
gt = binary("gt", np.greater, "bool")
ge = binary("ge", np.greater_equal, "bool")


# --- select and convert ------------------------------------------------------
def _select_rule(pred, on_true, on_false):
    if pred.dtype != "bool":
        raise DTypeError(f"select: predicate must be bool, got {pred}")
    if pred.shape != on_true.shape:
        raise ShapeError(f"select: predicate {pred} and values {on_true} differ in shape")
    return _same("select", on_true, on_false)


select = Primitive("select", "elementwise", _select_rule,
                   lambda p, t, f: [np.where(p, t, f)])


def _convert_rule(x, *, dtype, weak=False):
    if dtype not in ("bool", "int32", "int64", "uint32", "float32", "float64"):
        raise DTypeError(f"convert: unsupported dtype {dtype}")
    return TensorType(x.shape, dtype, weak)


def _convert_impl(x, *, dtype, weak=False):
    with np.errstate(all="ignore"):
        return [np.asarray(x).astype(dtype)]


convert = Primitive("convert", "elementwise", _convert_rule, _convert_impl)


def _constant_rule(*, value, dtype, weak=False):
    return TensorType((), dtype, weak)


constant = Primitive("constant", "elementwise", _constant_rule,
                     lambda *, value, dtype, weak=False: [np.asarray(value, dtype=dtype)],
                     differentiable=False)

UNARY = ("neg", "exp", "log", "log1p", "expm1", "tanh", "logistic", "sqrt", "rsqrt",
         "sin", "cos", "erf", "abs", "sign", "floor", "ceil", "round", "is_finite", "not")
BINARY = ("add", "sub", "mul", "div", "rem", "pow", "max", "min", "and", "or", "xor",
          "eq", "ne", "lt", "le", "gt", "ge")
