"""Elementwise primitives: operands all have one shape (broadcasting is
explicit in the IR, via broadcast_in_dim) and, except for select and
convert, one dtype."""
from __future__ import annotations

import numpy as np

from ..core import Primitive
from ..errors import DTypeError, ShapeError
from ..ir.types import DTYPES, FLOATS, INTS, TensorType
from . import ad_util as ad
from . import batch_util as bu


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


def _batched(prim):
    """Elementwise batching (vmap): broadcast the unbatched operands and apply
    the op as it is."""
    prim.def_batch(bu.all_batched(prim.name))
    return prim


def unary(name, impl, floats_only=False, out_dtype=None, **facts):
    def rule(x):
        if floats_only and x.dtype not in FLOATS:
            raise DTypeError(f"{name} needs a float operand, got {x}")
        return TensorType(x.shape, out_dtype or x.dtype, x.weak and out_dtype is None)

    def run(x):
        r = impl(x)
        return np.asarray(r, dtype=out_dtype or x.dtype)
    return _batched(Primitive(name, "elementwise", rule, _errstate(run), **facts))


def binary(name, impl, out_dtype=None, floats_only=False, ints_only=False, **facts):
    def rule(x, y):
        t = _same(name, x, y)
        if floats_only and t.dtype not in FLOATS:
            raise DTypeError(f"{name} needs float operands, got {x}, {y}")
        if ints_only and t.dtype not in INTS:
            raise DTypeError(f"{name} needs integer operands, got {x}, {y}")
        return TensorType(t.shape, out_dtype or t.dtype, t.weak and out_dtype is None)

    def run(x, y):
        return np.asarray(impl(x, y), dtype=out_dtype or x.dtype)
    return _batched(Primitive(name, "elementwise", rule, _errstate(run), **facts))


def _expit(x):
    import scipy.special   # imported on first use: it costs 0.3 s at import time
    return scipy.special.expit(x)


def _erf(x):
    import scipy.special
    return scipy.special.erf(x)


def _guard(g, v):
    return np.where(g == 0, np.zeros_like(v), v)


def _rsqrt(x):
    return 1.0 / np.sqrt(x)


def _floor_div(x, y):
    if x.dtype.name in FLOATS:
        return x / y
    return np.floor_divide(x, y)


def _pow(x, y):
    return np.power(x, y)


# --- unary math ---------------------------------------------------------
neg = unary("neg", np.negative)
exp = unary("exp", np.exp, floats_only=True, expensive=True)
log = unary("log", np.log, floats_only=True, expensive=True)
log1p = unary("log1p", np.log1p, floats_only=True, expensive=True)
expm1 = unary("expm1", np.expm1, floats_only=True, expensive=True)
tanh = unary("tanh", np.tanh, floats_only=True, expensive=True)
logistic = unary("logistic", _expit, floats_only=True, expensive=True)
sqrt = unary("sqrt", np.sqrt, floats_only=True)
rsqrt = unary("rsqrt", _rsqrt, floats_only=True)
sin = unary("sin", np.sin, floats_only=True, expensive=True)
cos = unary("cos", np.cos, floats_only=True, expensive=True)
sinh = unary("sinh", np.sinh, floats_only=True, expensive=True)
erf = unary("erf", _erf, floats_only=True, expensive=True)
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
add = binary("add", np.add, commutative=True)
sub = binary("sub", np.subtract)
mul = binary("mul", np.multiply, commutative=True)
div = binary("div", _floor_div)   # true division on floats, floor division on ints
rem = binary("rem", np.remainder)   # NumPy's sign convention (follows divisor)
pow = binary("pow", _pow, expensive=True)
atan2 = binary("atan2", np.arctan2, floats_only=True, expensive=True)   # arctan(y/x), x's quadrant
max = binary("max", np.maximum)   # NaN-propagating, as np.maximum
# guard(g, v): 0 where g == 0, else v; for v a product g * f'(x), which
# derivative rules wrap in it (ad_util.guard), so that a zero cotangent never
# turns an infinite f'(x) into NaN. Its rules are those of that product: the
# derivative in v is 1 wherever v is finite (where v = g * f'(x) is 0 anyway),
# so second derivatives at exactly-zero cotangents stay right, and a splat
# zero g folds the whole product away (transforms/algebra.py).
guard = binary("guard", _guard)
min = binary("min", np.minimum)
and_ = binary("and", np.bitwise_and, commutative=True)
or_ = binary("or", np.bitwise_or, commutative=True)
xor = binary("xor", np.bitwise_xor, commutative=True)
# greatest common divisor (non-negative; gcd(0, 0) = 0), as np.gcd
gcd = binary("gcd", np.gcd, commutative=True, ints_only=True, differentiable=False)

# --- comparisons -> bool ---------------------------------------------------
eq = binary("eq", np.equal, "bool", commutative=True)
ne = binary("ne", np.not_equal, "bool", commutative=True)
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
    if dtype not in DTYPES:
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
         "sin", "cos", "sinh", "erf", "abs", "sign", "floor", "ceil", "round", "is_finite", "not")
BINARY = ("add", "sub", "mul", "div", "rem", "pow", "atan2", "max", "min", "guard", "and", "or", "xor",
          "gcd", "eq", "ne", "lt", "le", "gt", "ge")


# --- differentiation rules ----------------------------------------------------
# Each unary rule is the chain-rule product ``g * f'(x)`` written as a function
# of the incoming cotangent or tangent ``g`` (both directions share it: for
# an elementwise map the derivative is diagonal). ``ad.guard`` keeps an
# exactly-zero ``g`` exactly zero where ``f'`` is inf or NaN (the NaN policy
# of tracejit/transforms/autodiff.py).


def _def_unary(prim, chain):
    """``chain(g, x, out)`` is ``g * f'(x)``."""
    prim.def_vjp(lambda cts, primals, outs: [ad.guard(cts[0], chain(cts[0], primals[0], outs[0]))])
    prim.def_jvp(lambda primals, tangents, outs: [ad.guard(tangents[0], chain(
        tangents[0], primals[0], outs[0]))])


def _c(x, v):
    return ad.full_like(x, v)


neg.def_vjp(lambda cts, primals, outs: [neg(cts[0])])
neg.def_jvp(lambda primals, tangents, outs: [neg(tangents[0])])
_def_unary(exp, lambda g, x, y: mul(g, y))
_def_unary(log, lambda g, x, y: div(g, x))
_def_unary(log1p, lambda g, x, y: div(g, add(x, _c(x, 1))))
_def_unary(expm1, lambda g, x, y: mul(g, add(y, _c(y, 1))))
_def_unary(tanh, lambda g, x, y: mul(g, sub(_c(y, 1), mul(y, y))))
_def_unary(logistic, lambda g, x, y: mul(g, mul(y, sub(_c(y, 1), y))))
_def_unary(sqrt, lambda g, x, y: div(mul(g, _c(y, 0.5)), y))
_def_unary(rsqrt, lambda g, x, y: div(mul(g, mul(y, _c(y, -0.5))), x))
_def_unary(sin, lambda g, x, y: mul(g, cos(x)))
_def_unary(cos, lambda g, x, y: neg(mul(g, sin(x))))
_def_unary(sinh, lambda g, x, y: mul(g, mul(_c(x, 0.5), add(exp(x), exp(neg(x))))))
_def_unary(erf, lambda g, x, y: mul(g, mul(_c(x, 2 / np.sqrt(np.pi)), exp(neg(mul(x, x))))))
_def_unary(abs, lambda g, x, y: mul(g, sign(x)))   # abs'(0) = 0
for _p in (sign, floor, ceil, round, is_finite, not_, and_, or_, xor, eq, ne, lt, le, gt, ge):
    _p.def_vjp(ad.zero_vjp)
    _p.def_jvp(ad.zero_jvp)



def _guard_blocked(g, v):
    return and_(eq(g, _c(g, 0)), not_(is_finite(v)))


guard.def_vjp(lambda cts, primals, outs: [None, lambda: select(
    _guard_blocked(*primals), _c(cts[0], 0), cts[0])])
guard.def_jvp(lambda primals, tangents, outs: [None if tangents[1] is None else select(
    _guard_blocked(*primals), _c(outs[0], 0), ad.instantiate(tangents[1], primals[1]))])

add.def_vjp(lambda cts, primals, outs: [cts[0], cts[0]])
add.def_jvp(lambda primals, tangents, outs: [ad.add(*tangents)])
sub.def_vjp(lambda cts, primals, outs: [cts[0], lambda: neg(cts[0])])
sub.def_jvp(lambda primals, tangents, outs: [
    ad.add(tangents[0], None if tangents[1] is None else neg(tangents[1]))])


def _def_binary(prim, dx, dy):
    """``dx(g, x, y, out)`` and ``dy(...)``: ``g`` times a partial derivative.
    The cotangents are lazy: an operand that needs none costs nothing."""
    def vjp(cts, primals, outs):
        g, (x, y), out = cts[0], primals, outs[0]
        return [lambda: ad.guard(g, dx(g, x, y, out)), lambda: ad.guard(g, dy(g, x, y, out))]

    def jvp(primals, tangents, outs):
        (x, y), (tx, ty), out = primals, tangents, outs[0]
        return [ad.add(None if tx is None else ad.guard(tx, dx(tx, x, y, out)),
                       None if ty is None else ad.guard(ty, dy(ty, x, y, out)))]
    prim.def_vjp(vjp)
    prim.def_jvp(jvp)


def _pow_dx(g, x, y, out):
    # y * x**(y-1), taken as 0 where y == 0 (so 0**0 has derivative 0, not NaN)
    d = mul(y, pow(x, sub(y, _c(y, 1))))
    return mul(g, select(eq(y, _c(y, 0)), _c(y, 0), d))


def _pow_dy(g, x, y, out):
    # log(x) * x**y, with log(0) replaced by 0 (the limit of x**y log x at 0+)
    safe = select(eq(x, _c(x, 0)), _c(x, 1), x)
    return mul(g, mul(log(safe), out))


def _tie_weight(win, tie, like):
    """1 where this operand wins, 1/2 on ties (shared), 0 where it loses."""
    return select(win, _c(like, 1), select(tie, _c(like, 0.5), _c(like, 0)))


_def_binary(mul, lambda g, x, y, o: mul(g, y), lambda g, x, y, o: mul(g, x))
_def_binary(div, lambda g, x, y, o: div(g, y), lambda g, x, y, o: neg(div(mul(g, o), y)))
_def_binary(rem, lambda g, x, y, o: g, lambda g, x, y, o: neg(mul(g, floor(div(x, y)))))
_def_binary(pow, _pow_dx, _pow_dy)


def _atan2_scale(g, x, y):
    """g / (x**2 + y**2): atan2's partials are x and -y over it."""
    return div(g, add(mul(x, x), mul(y, y)))


# atan2(y, x) with y the first operand: d/dy = x / r2, d/dx = -y / r2
_def_binary(atan2, lambda g, y, x, o: mul(_atan2_scale(g, x, y), x),
            lambda g, y, x, o: neg(mul(_atan2_scale(g, x, y), y)))
_def_binary(max, lambda g, x, y, o: mul(g, _tie_weight(gt(x, y), eq(x, y), x)),
            lambda g, x, y, o: mul(g, _tie_weight(gt(y, x), eq(x, y), x)))
_def_binary(min, lambda g, x, y, o: mul(g, _tie_weight(lt(x, y), eq(x, y), x)),
            lambda g, x, y, o: mul(g, _tie_weight(lt(y, x), eq(x, y), x)))


def _select_vjp(cts, primals, outs):
    p_, on_true, _ = primals
    zero = ad.zeros_like(on_true)
    return [None, lambda: select(p_, cts[0], zero), lambda: select(p_, zero, cts[0])]


select.def_vjp(_select_vjp)
select.def_jvp(ad.linear_jvp("select"))


def _convert_vjp(cts, primals, outs, *, dtype, weak=False):
    x = primals[0]
    if not (ad.is_float(x) and dtype in FLOATS):
        return [None]
    t = ad.aval(x)
    return [convert(cts[0], dtype=t.dtype, weak=t.weak)]


def _convert_jvp(primals, tangents, outs, *, dtype, weak=False):
    if not (ad.is_float(primals[0]) and dtype in FLOATS):
        return [None]
    return [convert(tangents[0], dtype=dtype, weak=weak)]


convert.def_vjp(_convert_vjp)
convert.def_jvp(_convert_jvp)


# --- batching rules (vmap) ------------------------------------------------------
# unary() and binary() give theirs; select and convert batch the same way.
_batched(select)
_batched(convert)
