"""Vectorizable elementary functions for the Numba CPU backend.

Without SVML, Numba lowers ``np.exp``/``np.log``/``np.tanh`` inside an njit
loop to scalar libm calls, so fused loops do not vectorize. The functions here
are branch-free (LLVM ``select`` instead of branches), call no libm function,
raise nothing (division via a plain ``fdiv``, no zero check) and do their bit
manipulation in a few small LLVM intrinsics, so a loop calling them
vectorizes.

They are ``njit(inline="always", cache=True)``: Numba inlines their IR into
the calling kernel, which compiles it with its own ``fastmath`` flags (these
functions set none; polynomial FMAs are explicit ``llvm.fmuladd``). Kernels
may use any of ``contract``, ``arcp``, ``afn``, ``nsz``. They must not use
``nnan``/``ninf`` (special values are handled with comparisons) or
``reassoc`` (with ``nsz`` it folds away the range reductions and the log1p
correction, breaking exp, expm1, log1p and logistic). Numba's cache of a
kernel is not invalidated when this file changes, hence the stamp of it in
kernel sources (see ``cache.py``).

Max error in ulp against NumPy evaluated in a wider type and rounded, with no
fastmath and with ``contract``. float32: all 2**32 inputs, float64 reference;
float64: 8M inputs (random bit patterns, [-1, 1], log-uniform magnitudes,
the function's non-saturated range), x87 long double reference::

    function   float32   float64
    exp           1         1
    log           1         1
    tanh          2         2 (3 with contract)
    logistic      2         2
    log1p         1         1
    expm1         1         2

Special values follow NumPy: NaN -> NaN, overflow -> inf, underflow -> 0 (with
correctly scaled denormals on the way), log(0) = -inf, log(x < 0) = NaN,
tanh(+-inf) = +-1, logistic(-inf) = 0, logistic(inf) = 1, and -0 is kept where
NumPy keeps it (tanh, expm1, log1p).
"""

from math import factorial

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "VMATH",
    "exp_f32", "exp_f64", "log_f32", "log_f64", "tanh_f32", "tanh_f64",
    "logistic_f32", "logistic_f64", "log1p_f32", "log1p_f64",
    "expm1_f32", "expm1_f64",
]

VMATH: dict[tuple[str, str], str] = {
    (prim, dtype): f"{prim}_{dtype[0]}{dtype[-2:]}"
    for prim in ("exp", "log", "tanh", "logistic", "log1p", "expm1")
    for dtype in ("float32", "float64")
}

# ---------------------------------------------------------------------------
# LLVM-level helpers. Integer ops live here because Numba widens int32
# arithmetic to int64, which would halve the float32 vector width.

# float type -> (same-width int type, mantissa bits, exponent bias)
_LAYOUT = {
    types.float32: (ir.IntType(32), 23, 127),
    types.float64: (ir.IntType(64), 52, 1023),
}


def _llvm_fn(builder, name, fty, nargs):
    suffix = "f32" if isinstance(fty, ir.FloatType) else "f64"
    fnty = ir.FunctionType(fty, [fty] * nargs)
    return cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{suffix}")


def _float_bits(fty, value):
    """Bit pattern of ``value`` as an LLVM integer constant of matching width."""
    if isinstance(fty, ir.FloatType):
        return ir.Constant(ir.IntType(32), int(np.float32(value).view(np.uint32)))
    return ir.Constant(ir.IntType(64), int(np.float64(value).view(np.uint64)))


def _pow2_codegen(builder, n, ity, mant, bias):
    # n + 1.5*2**mant puts the integer n in the low mantissa bits; shifting
    # left by `mant` moves n+bias into the exponent field and drops the rest.
    # No float->int conversion (AVX2 has none for int64, and fptosi of NaN is
    # poison in LLVM).
    shifted = builder.fadd(n, ir.Constant(n.type, 1.5 * 2.0**mant + bias))
    bits = builder.shl(builder.bitcast(shifted, ity), ir.Constant(ity, mant))
    return builder.bitcast(bits, n.type)


@intrinsic
def _pow2(typingctx, n):
    """2**n for integer-valued n in the normal exponent range."""
    if n not in _LAYOUT:
        return None

    def codegen(context, builder, sig, args):
        return _pow2_codegen(builder, args[0], *_LAYOUT[sig.return_type])

    return n(n), codegen


@intrinsic
def _ldexp(typingctx, x, n):
    """x * 2**n for integer-valued n with |n| <= 2*(bias-1).

    2**n is applied as two factors 2**h * 2**(n-h), each a normal number, so
    the result rounds once even when it is denormal or close to overflow.
    """
    if x not in _LAYOUT or n != x:
        return None

    def codegen(context, builder, sig, args):
        xv, nv = args
        ity, mant, bias = _LAYOUT[sig.return_type]
        rint = _llvm_fn(builder, "rint", nv.type, 1)
        h = builder.call(rint, [builder.fmul(nv, ir.Constant(nv.type, 0.5))])
        xh = builder.fmul(xv, _pow2_codegen(builder, h, ity, mant, bias))
        return builder.fmul(xh, _pow2_codegen(builder, builder.fsub(nv, h), ity, mant, bias))

    return x(x, n), codegen


@intrinsic
def _frexp_sqrt2(typingctx, x):
    """(m, e) with x = m * 2**e and m in [sqrt(1/2), sqrt(2)), for positive normal x.

    Offsetting the bits by those of sqrt(1/2) makes the exponent field carry
    exactly when the mantissa is >= sqrt(2) (musl's log reduction).
    """
    if x not in _LAYOUT:
        return None

    def codegen(context, builder, sig, args):
        (xv,) = args
        fty = xv.type
        ity, mant, bias = _LAYOUT[sig.return_type.dtype]
        one, sqrth = _float_bits(fty, 1.0), _float_bits(fty, np.sqrt(0.5))
        ix = builder.add(builder.bitcast(xv, ity), builder.sub(one, sqrth))
        mask = ir.Constant(ity, (1 << mant) - 1)
        m = builder.bitcast(builder.add(builder.and_(ix, mask), sqrth), fty)
        # Biased exponent -> float via the bits of 2**mant + k (exact; avoids
        # int64->double conversion, which AVX2 lacks).
        k = builder.lshr(ix, ir.Constant(ity, mant))
        kf = builder.bitcast(builder.or_(k, _float_bits(fty, 2.0**mant)), fty)
        e = builder.fsub(kf, ir.Constant(fty, 2.0**mant + bias))
        return context.make_tuple(builder, sig.return_type, [m, e])

    return types.UniTuple(x, 2)(x), codegen


@intrinsic
def _horner(typingctx, x, coeffs):
    """Polynomial with coefficients highest degree first, as fused multiply-adds."""
    if x not in _LAYOUT or not isinstance(coeffs, types.UniTuple) or coeffs.dtype != x:
        return None

    def codegen(context, builder, sig, args):
        xv, cs = args
        fma = _llvm_fn(builder, "fmuladd", xv.type, 3)
        vals = cgutils.unpack_tuple(builder, cs)
        acc = vals[0]
        for c in vals[1:]:
            acc = builder.call(fma, [acc, xv, c])
        return acc

    return x(x, coeffs), codegen


@intrinsic
def _select(typingctx, cond, a, b):
    """cond ? a : b as an LLVM select (a Python ternary would be a branch)."""
    if not isinstance(cond, types.Boolean) or a not in _LAYOUT or b != a:
        return None
    return a(cond, a, b), lambda context, builder, sig, args: builder.select(*args)


@intrinsic
def _div(typingctx, a, b):
    """a / b without Numba's ZeroDivisionError check (which blocks vectorization)."""
    if a not in _LAYOUT or b != a:
        return None
    return a(a, b), lambda context, builder, sig, args: builder.fdiv(*args)


@intrinsic
def _rint(typingctx, x):
    """Round to nearest even (vroundps/vroundpd)."""
    if x not in _LAYOUT:
        return None

    def codegen(context, builder, sig, args):
        return builder.call(_llvm_fn(builder, "rint", args[0].type, 1), args)

    return x(x), codegen


@intrinsic
def _copysign(typingctx, mag, sgn):
    if mag not in _LAYOUT or sgn != mag:
        return None

    def codegen(context, builder, sig, args):
        return builder.call(_llvm_fn(builder, "copysign", args[0].type, 2), args)

    return mag(mag, sgn), codegen


_vmath = njit(inline="always", cache=True)


@_vmath
def _clamp(x, lo, hi):
    """Clamp to [lo, hi]; NaN passes through (ordered compares are false)."""
    return _select(x < lo, lo, _select(x > hi, hi, x))


# ---------------------------------------------------------------------------
# Constants. Float32 code must only see float32 values: a Python float would
# promote the whole expression to float64.

_f32 = np.float32
_ZERO_F32, _HALF_F32, _ONE_F32, _TWO_F32 = _f32(0), _f32(0.5), _f32(1), _f32(2)
_INF_F32, _NAN_F32 = _f32(np.inf), _f32(np.nan)
_LOG2E_F32 = _f32(1.4426950408889634)
_LN2_HI_F32 = _f32(0.693359375)  # 9 significant bits: n*hi is exact
_LN2_LO_F32 = _f32(-2.12194440e-4)
_EXP_LO_F32, _EXP_HI_F32 = _f32(-104), _f32(89)  # exp rounds to 0 / inf beyond
_EXPM1_LO_F32 = _f32(-18)  # expm1 rounds to -1 below
_TANH_MAX_F32 = _f32(10)  # tanh rounds to 1 above
_MIN_NORMAL_F32 = _f32(np.finfo(np.float32).tiny)
_TWO25_F32, _25_F32 = _f32(2.0**25), _f32(25)

# Cephes expf: exp(r) = 1 + r + r**2 * P(r) on |r| <= ln2/2.
_EXP_P_F32 = tuple(_f32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
    4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
# Taylor: expm1(r) = r + r**2 * Q(r) on |r| <= ln2/2; truncation < 0.1 ulp.
_EXPM1_Q_F32 = tuple(_f32(1 / factorial(k)) for k in range(8, 1, -1))
# Cephes logf: log(1+f) = f - f**2/2 + f**3 * P(f) on f in [sqrt(1/2)-1, sqrt(2)-1].
_LOG_P_F32 = tuple(_f32(c) for c in (
    7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
    1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
    3.3333331174e-1))

_f64 = np.float64
_ZERO_F64, _HALF_F64, _ONE_F64, _TWO_F64 = _f64(0), _f64(0.5), _f64(1), _f64(2)
_INF_F64, _NAN_F64 = _f64(np.inf), _f64(np.nan)
_LOG2E_F64 = _f64(1.4426950408889634)
_LN2_HI_F64 = _f64(6.93147180369123816490e-01)  # 32 trailing zero bits
_LN2_LO_F64 = _f64(1.90821492927058770002e-10)
_EXP_LO_F64, _EXP_HI_F64 = _f64(-746), _f64(710)
_EXPM1_LO_F64 = _f64(-40)
_TANH_MAX_F64 = _f64(20)
_MIN_NORMAL_F64 = _f64(np.finfo(np.float64).tiny)
_TWO54_F64, _54_F64 = _f64(2.0**54), _f64(54)

# Taylor to degree 13 on |r| <= ln2/2: truncation < 0.1 ulp.
_EXP_P_F64 = tuple(_f64(1 / factorial(k)) for k in range(13, -1, -1))
_EXPM1_Q_F64 = tuple(_f64(1 / factorial(k)) for k in range(13, 1, -1))
# fdlibm log: log(1+f) = f - f**2/2 + s*(f**2/2 + R(s**2)), s = f/(2+f),
# R(z) = z * (Lg1 + Lg2*z + ... + Lg7*z**6), highest degree first here.
_LOG_LG_F64 = tuple(_f64(c) for c in (
    1.479819860511658591e-01, 1.531383769920937332e-01, 1.818357216161805012e-01,
    2.222219843214978396e-01, 2.857142874366239149e-01, 3.999999999940941908e-01,
    6.666666666666735130e-01))


# ---------------------------------------------------------------------------
# float32


@_vmath
def exp_f32(x):
    """exp: x = n*ln2 + r with |r| <= ln2/2 (ln2 in two parts), Cephes polynomial."""
    x = _clamp(x, _EXP_LO_F32, _EXP_HI_F32)
    n = _rint(x * _LOG2E_F32)
    r = x - n * _LN2_HI_F32 - n * _LN2_LO_F32
    p = _horner(r, _EXP_P_F32) * (r * r) + r + _ONE_F32
    return _ldexp(p, n)


@_vmath
def _expm1_core_f32(x):
    """expm1 for finite x in [_EXPM1_LO_F32, _EXP_HI_F32] (or NaN).

    With x = n*ln2 + r: expm1(x) = 2**n * (expm1(r) + (1 - 2**-n)); the bracket
    is exact for the n where cancellation matters, and is expm1(r) for n = 0.
    """
    n = _rint(x * _LOG2E_F32)
    r = x - n * _LN2_HI_F32 - n * _LN2_LO_F32
    p = _horner(r, _EXPM1_Q_F32) * (r * r) + r
    return _ldexp(p + (_ONE_F32 - _ldexp(_ONE_F32, -n)), n)


@_vmath
def _expm1_pos_f32(x):
    """expm1 for x in [0, 2*_TANH_MAX_F32] (or NaN): 2**n*expm1(r) + (2**n - 1)
    needs a single, always normal, power of two."""
    n = _rint(x * _LOG2E_F32)
    r = x - n * _LN2_HI_F32 - n * _LN2_LO_F32
    p = _horner(r, _EXPM1_Q_F32) * (r * r) + r
    s = _pow2(n)
    return p * s + (s - _ONE_F32)


@_vmath
def expm1_f32(x):
    r = _expm1_core_f32(_clamp(x, _EXPM1_LO_F32, _EXP_HI_F32))
    return _select(x == _ZERO_F32, x, r)  # keep -0


@_vmath
def tanh_f32(x):
    """tanh(|x|) = e / (e + 2) with e = expm1(2|x|); sign copied back."""
    a = abs(x)
    a = _select(a > _TANH_MAX_F32, _TANH_MAX_F32, a)
    e = _expm1_pos_f32(a + a)
    return _copysign(_div(e, e + _TWO_F32), x)


@_vmath
def logistic_f32(x):
    """1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: no overflow, no NaN."""
    e = exp_f32(-abs(x))
    return _div(_select(x >= _ZERO_F32, _ONE_F32, e), _ONE_F32 + e)


@_vmath
def _log_core_f32(m, e):
    """log(m * 2**e) for m in [sqrt(1/2), sqrt(2)) (Cephes logf)."""
    f = m - _ONE_F32
    z = f * f
    y = f * z * _horner(f, _LOG_P_F32) + e * _LN2_LO_F32 - _HALF_F32 * z
    return f + y + e * _LN2_HI_F32


@_vmath
def log_f32(x):
    tiny = x < _MIN_NORMAL_F32  # denormals: scale into the normal range first
    m, e = _frexp_sqrt2(_select(tiny, x * _TWO25_F32, x))
    r = _log_core_f32(m, e - _select(tiny, _25_F32, _ZERO_F32))
    r = _select(x == _INF_F32, x, r)
    r = _select(x == _ZERO_F32, -_INF_F32, r)
    return _select(x >= _ZERO_F32, r, _NAN_F32)


@_vmath
def log1p_f32(x):
    """log(u) + (x - (u - 1)) / u with u = 1 + x: the second term restores the
    rounding error of u. u is never denormal (u >= 2**-24 when positive)."""
    u = _ONE_F32 + x
    m, e = _frexp_sqrt2(u)
    r = _log_core_f32(m, e) + _div(x - (u - _ONE_F32), u)
    r = _select(x == _ZERO_F32, x, r)  # keep -0
    r = _select(u == _INF_F32, u, r)
    r = _select(u == _ZERO_F32, -_INF_F32, r)
    return _select(u >= _ZERO_F32, r, _NAN_F32)


# ---------------------------------------------------------------------------
# float64: same reductions, longer polynomials.


@_vmath
def exp_f64(x):
    """exp: x = n*ln2 + r with |r| <= ln2/2 (ln2 in two parts), degree-13 Taylor."""
    x = _clamp(x, _EXP_LO_F64, _EXP_HI_F64)
    n = _rint(x * _LOG2E_F64)
    r = x - n * _LN2_HI_F64 - n * _LN2_LO_F64
    return _ldexp(_horner(r, _EXP_P_F64), n)


@_vmath
def _expm1_core_f64(x):
    """See _expm1_core_f32."""
    n = _rint(x * _LOG2E_F64)
    r = x - n * _LN2_HI_F64 - n * _LN2_LO_F64
    p = _horner(r, _EXPM1_Q_F64) * (r * r) + r
    return _ldexp(p + (_ONE_F64 - _ldexp(_ONE_F64, -n)), n)


@_vmath
def _expm1_pos_f64(x):
    """See _expm1_pos_f32."""
    n = _rint(x * _LOG2E_F64)
    r = x - n * _LN2_HI_F64 - n * _LN2_LO_F64
    p = _horner(r, _EXPM1_Q_F64) * (r * r) + r
    s = _pow2(n)
    return p * s + (s - _ONE_F64)


@_vmath
def expm1_f64(x):
    r = _expm1_core_f64(_clamp(x, _EXPM1_LO_F64, _EXP_HI_F64))
    return _select(x == _ZERO_F64, x, r)


@_vmath
def tanh_f64(x):
    a = abs(x)
    a = _select(a > _TANH_MAX_F64, _TANH_MAX_F64, a)
    e = _expm1_pos_f64(a + a)
    return _copysign(_div(e, e + _TWO_F64), x)


@_vmath
def logistic_f64(x):
    e = exp_f64(-abs(x))
    return _div(_select(x >= _ZERO_F64, _ONE_F64, e), _ONE_F64 + e)


@_vmath
def _log_core_f64(m, e):
    """log(m * 2**e) for m in [sqrt(1/2), sqrt(2)) (fdlibm)."""
    f = m - _ONE_F64
    hfsq = _HALF_F64 * f * f
    s = _div(f, _TWO_F64 + f)
    z = s * s
    r = z * _horner(z, _LOG_LG_F64)
    return s * (hfsq + r) + e * _LN2_LO_F64 - hfsq + f + e * _LN2_HI_F64


@_vmath
def log_f64(x):
    tiny = x < _MIN_NORMAL_F64
    m, e = _frexp_sqrt2(_select(tiny, x * _TWO54_F64, x))
    r = _log_core_f64(m, e - _select(tiny, _54_F64, _ZERO_F64))
    r = _select(x == _INF_F64, x, r)
    r = _select(x == _ZERO_F64, -_INF_F64, r)
    return _select(x >= _ZERO_F64, r, _NAN_F64)


@_vmath
def log1p_f64(x):
    u = _ONE_F64 + x
    m, e = _frexp_sqrt2(u)
    r = _log_core_f64(m, e) + _div(x - (u - _ONE_F64), u)
    r = _select(x == _ZERO_F64, x, r)
    r = _select(u == _INF_F64, u, r)
    r = _select(u == _ZERO_F64, -_INF_F64, r)
    return _select(u >= _ZERO_F64, r, _NAN_F64)
