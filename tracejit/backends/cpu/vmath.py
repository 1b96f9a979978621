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

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import vmath_core as core
from .vmath_core import (
    EXP_HI_F32, EXP_HI_F64, EXP_LO_F32, EXP_LO_F64, EXP_P_F32, EXP_P_F64, EXPM1_LO_F32, EXPM1_LO_F64,
    EXPM1_Q_F32, EXPM1_Q_F64, HALF_F32, HALF_F64, INF_F32, INF_F64, LN2_HI_F32, LN2_HI_F64,
    LN2_LO_F32, LN2_LO_F64, LOG2E_F32, LOG2E_F64, LOG_LG_F64, LOG_P_F32, MIN_NORMAL_F32,
    MIN_NORMAL_F64, N25_F32, N54_F64, NAN_F32, NAN_F64, ONE_F32, ONE_F64, TANH_MAX_F32,
    TANH_MAX_F64, TWO25_F32, TWO54_F64, TWO_F32, TWO_F64, ZERO_F32, ZERO_F64)

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
# LLVM-level helpers (vmath_core.py). Integer ops live there because Numba
# widens int32 arithmetic to int64, which would halve the float32 vector width.

_FLOATS = {types.float32: "float32", types.float64: "float64"}


@intrinsic
def _pow2(typingctx, n):
    """2**n for integer-valued n in the normal exponent range."""
    if n not in _FLOATS:
        return None
    return n(n), lambda context, builder, sig, args: core.pow2(builder, args[0])


@intrinsic
def _ldexp(typingctx, x, n):
    """x * 2**n for integer-valued n with |n| <= 2*(bias-1)."""
    if x not in _FLOATS or n != x:
        return None
    return x(x, n), lambda context, builder, sig, args: core.ldexp(builder, *args)


@intrinsic
def _frexp_sqrt2(typingctx, x):
    """(m, e) with x = m * 2**e and m in [sqrt(1/2), sqrt(2)), for positive normal x."""
    if x not in _FLOATS:
        return None

    def codegen(context, builder, sig, args):
        return context.make_tuple(builder, sig.return_type, list(core.frexp_sqrt2(builder, args[0])))

    return types.UniTuple(x, 2)(x), codegen


@intrinsic
def _horner(typingctx, x, coeffs):
    """Polynomial with coefficients highest degree first, as fused multiply-adds."""
    if x not in _FLOATS or not isinstance(coeffs, types.UniTuple) or coeffs.dtype != x:
        return None

    def codegen(context, builder, sig, args):
        xv, cs = args
        return core.horner(builder, xv, cgutils.unpack_tuple(builder, cs))

    return x(x, coeffs), codegen


@intrinsic
def _select(typingctx, cond, a, b):
    """cond ? a : b as an LLVM select (a Python ternary would be a branch)."""
    if not isinstance(cond, types.Boolean) or a not in _FLOATS or b != a:
        return None
    return a(cond, a, b), lambda context, builder, sig, args: builder.select(*args)


@intrinsic
def _div(typingctx, a, b):
    """a / b without Numba's ZeroDivisionError check (which blocks vectorization)."""
    if a not in _FLOATS or b != a:
        return None
    return a(a, b), lambda context, builder, sig, args: builder.fdiv(*args)


@intrinsic
def _rint(typingctx, x):
    """Round to nearest even (vroundps/vroundpd)."""
    if x not in _FLOATS:
        return None

    def codegen(context, builder, sig, args):
        return builder.call(core.llvm_fn(builder, "rint", args[0].type, 1), args)

    return x(x), codegen


@intrinsic
def _copysign(typingctx, mag, sgn):
    if mag not in _FLOATS or sgn != mag:
        return None

    def codegen(context, builder, sig, args):
        return builder.call(core.llvm_fn(builder, "copysign", args[0].type, 2), args)

    return mag(mag, sgn), codegen


_vmath = njit(inline="always", cache=True)


@_vmath
def _clamp(x, lo, hi):
    """Clamp to [lo, hi]; NaN passes through (ordered compares are false)."""
    return _select(x < lo, lo, _select(x > hi, hi, x))


# ---------------------------------------------------------------------------
# float32


@_vmath
def exp_f32(x):
    """exp: x = n*ln2 + r with |r| <= ln2/2 (ln2 in two parts), Cephes polynomial."""
    x = _clamp(x, EXP_LO_F32, EXP_HI_F32)
    n = _rint(x * LOG2E_F32)
    r = x - n * LN2_HI_F32 - n * LN2_LO_F32
    p = _horner(r, EXP_P_F32) * (r * r) + r + ONE_F32
    return _ldexp(p, n)


@_vmath
def _expm1_core_f32(x):
    """expm1 for finite x in [EXPM1_LO_F32, EXP_HI_F32] (or NaN).

    With x = n*ln2 + r: expm1(x) = 2**n * (expm1(r) + (1 - 2**-n)); the bracket
    is exact for the n where cancellation matters, and is expm1(r) for n = 0.
    """
    n = _rint(x * LOG2E_F32)
    r = x - n * LN2_HI_F32 - n * LN2_LO_F32
    p = _horner(r, EXPM1_Q_F32) * (r * r) + r
    return _ldexp(p + (ONE_F32 - _ldexp(ONE_F32, -n)), n)


@_vmath
def _expm1_pos_f32(x):
    """expm1 for x in [0, 2*TANH_MAX_F32] (or NaN): 2**n*expm1(r) + (2**n - 1)
    needs a single, always normal, power of two."""
    n = _rint(x * LOG2E_F32)
    r = x - n * LN2_HI_F32 - n * LN2_LO_F32
    p = _horner(r, EXPM1_Q_F32) * (r * r) + r
    s = _pow2(n)
    return p * s + (s - ONE_F32)


@_vmath
def expm1_f32(x):
    r = _expm1_core_f32(_clamp(x, EXPM1_LO_F32, EXP_HI_F32))
    return _select(x == ZERO_F32, x, r)  # keep -0


@_vmath
def tanh_f32(x):
    """tanh(|x|) = e / (e + 2) with e = expm1(2|x|); sign copied back."""
    a = abs(x)
    a = _select(a > TANH_MAX_F32, TANH_MAX_F32, a)
    e = _expm1_pos_f32(a + a)
    return _copysign(_div(e, e + TWO_F32), x)


@_vmath
def logistic_f32(x):
    """1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: no overflow, no NaN."""
    e = exp_f32(-abs(x))
    return _div(_select(x >= ZERO_F32, ONE_F32, e), ONE_F32 + e)


@_vmath
def _log_core_f32(m, e):
    """log(m * 2**e) for m in [sqrt(1/2), sqrt(2)) (Cephes logf)."""
    f = m - ONE_F32
    z = f * f
    y = f * z * _horner(f, LOG_P_F32) + e * LN2_LO_F32 - HALF_F32 * z
    return f + y + e * LN2_HI_F32


@_vmath
def log_f32(x):
    tiny = x < MIN_NORMAL_F32  # denormals: scale into the normal range first
    m, e = _frexp_sqrt2(_select(tiny, x * TWO25_F32, x))
    r = _log_core_f32(m, e - _select(tiny, N25_F32, ZERO_F32))
    r = _select(x == INF_F32, x, r)
    r = _select(x == ZERO_F32, -INF_F32, r)
    return _select(x >= ZERO_F32, r, NAN_F32)


@_vmath
def log1p_f32(x):
    """log(u) + (x - (u - 1)) / u with u = 1 + x: the second term restores the
    rounding error of u. u is never denormal (u >= 2**-24 when positive)."""
    u = ONE_F32 + x
    m, e = _frexp_sqrt2(u)
    r = _log_core_f32(m, e) + _div(x - (u - ONE_F32), u)
    r = _select(x == ZERO_F32, x, r)  # keep -0
    r = _select(u == INF_F32, u, r)
    r = _select(u == ZERO_F32, -INF_F32, r)
    return _select(u >= ZERO_F32, r, NAN_F32)


# ---------------------------------------------------------------------------
# float64: same reductions, longer polynomials.


@_vmath
def exp_f64(x):
    """exp: x = n*ln2 + r with |r| <= ln2/2 (ln2 in two parts), degree-13 Taylor."""
    x = _clamp(x, EXP_LO_F64, EXP_HI_F64)
    n = _rint(x * LOG2E_F64)
    r = x - n * LN2_HI_F64 - n * LN2_LO_F64
    return _ldexp(_horner(r, EXP_P_F64), n)


@_vmath
def _expm1_core_f64(x):
    """See _expm1_core_f32."""
    n = _rint(x * LOG2E_F64)
    r = x - n * LN2_HI_F64 - n * LN2_LO_F64
    p = _horner(r, EXPM1_Q_F64) * (r * r) + r
    return _ldexp(p + (ONE_F64 - _ldexp(ONE_F64, -n)), n)


@_vmath
def _expm1_pos_f64(x):
    """See _expm1_pos_f32."""
    n = _rint(x * LOG2E_F64)
    r = x - n * LN2_HI_F64 - n * LN2_LO_F64
    p = _horner(r, EXPM1_Q_F64) * (r * r) + r
    s = _pow2(n)
    return p * s + (s - ONE_F64)


@_vmath
def expm1_f64(x):
    r = _expm1_core_f64(_clamp(x, EXPM1_LO_F64, EXP_HI_F64))
    return _select(x == ZERO_F64, x, r)


@_vmath
def tanh_f64(x):
    a = abs(x)
    a = _select(a > TANH_MAX_F64, TANH_MAX_F64, a)
    e = _expm1_pos_f64(a + a)
    return _copysign(_div(e, e + TWO_F64), x)


@_vmath
def logistic_f64(x):
    e = exp_f64(-abs(x))
    return _div(_select(x >= ZERO_F64, ONE_F64, e), ONE_F64 + e)


@_vmath
def _log_core_f64(m, e):
    """log(m * 2**e) for m in [sqrt(1/2), sqrt(2)) (fdlibm)."""
    f = m - ONE_F64
    hfsq = HALF_F64 * f * f
    s = _div(f, TWO_F64 + f)
    z = s * s
    r = z * _horner(z, LOG_LG_F64)
    return s * (hfsq + r) + e * LN2_LO_F64 - hfsq + f + e * LN2_HI_F64


@_vmath
def log_f64(x):
    tiny = x < MIN_NORMAL_F64
    m, e = _frexp_sqrt2(_select(tiny, x * TWO54_F64, x))
    r = _log_core_f64(m, e - _select(tiny, N54_F64, ZERO_F64))
    r = _select(x == INF_F64, x, r)
    r = _select(x == ZERO_F64, -INF_F64, r)
    return _select(x >= ZERO_F64, r, NAN_F64)


@_vmath
def log1p_f64(x):
    u = ONE_F64 + x
    m, e = _frexp_sqrt2(u)
    r = _log_core_f64(m, e) + _div(x - (u - ONE_F64), u)
    r = _select(x == ZERO_F64, x, r)
    r = _select(u == INF_F64, u, r)
    r = _select(u == ZERO_F64, -INF_F64, r)
    return _select(u >= ZERO_F64, r, NAN_F64)
