"""The parts of vmath.py that do not need Numba: its constants and the
LLVM-level helpers its intrinsics emit.

vmath.py's functions (Numba, for kernels compiled by Numba) and the direct
LLVM kernel compiler (irgen.py, which translates vmath.py's function
bodies itself) both take their constants and bit manipulations from here,
so the two paths compute the same functions instruction for instruction.
"""
from math import factorial

import numpy as np
from llvmlite import ir

__all__ = ["LAYOUT", "llvm_fn", "float_bits", "pow2", "ldexp", "frexp_sqrt2", "horner"]

#: float type -> (same-width int type, mantissa bits, exponent bias)
LAYOUT = {
    "float32": (ir.IntType(32), 23, 127),
    "float64": (ir.IntType(64), 52, 1023),
}


def _dtype(fty):
    return "float32" if isinstance(fty, ir.FloatType) else "float64"


def llvm_fn(builder, name, fty, nargs):
    """The LLVM intrinsic ``llvm.<name>.f32`` (or ``.f64``), declared once per module."""
    module = builder.module
    full = f"llvm.{name}.{'f32' if isinstance(fty, ir.FloatType) else 'f64'}"
    fn = module.globals.get(full)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(fty, [fty] * nargs), full)
    return fn


def float_bits(fty, value):
    """Bit pattern of ``value`` as an LLVM integer constant of matching width."""
    if isinstance(fty, ir.FloatType):
        return ir.Constant(ir.IntType(32), int(np.float32(value).view(np.uint32)))
    return ir.Constant(ir.IntType(64), int(np.float64(value).view(np.uint64)))


def pow2(builder, n):
    """2**n for integer-valued float n in the normal exponent range.

    n + 1.5*2**mant puts the integer n in the low mantissa bits; shifting
    left by ``mant`` moves n+bias into the exponent field and drops the rest.
    No float->int conversion (AVX2 has none for int64, and fptosi of NaN is
    poison in LLVM)."""
    ity, mant, bias = LAYOUT[_dtype(n.type)]
    shifted = builder.fadd(n, ir.Constant(n.type, 1.5 * 2.0**mant + bias))
    bits = builder.shl(builder.bitcast(shifted, ity), ir.Constant(ity, mant))
    return builder.bitcast(bits, n.type)


def ldexp(builder, x, n):
    """x * 2**n for integer-valued n with |n| <= 2*(bias-1).

    2**n is applied as two factors 2**h * 2**(n-h), each a normal number, so
    the result rounds once even when it is denormal or close to overflow."""
    h = builder.call(llvm_fn(builder, "rint", n.type, 1), [builder.fmul(n, ir.Constant(n.type, 0.5))])
    xh = builder.fmul(x, pow2(builder, h))
    return builder.fmul(xh, pow2(builder, builder.fsub(n, h)))


def frexp_sqrt2(builder, x):
    """(m, e) with x = m * 2**e and m in [sqrt(1/2), sqrt(2)), for positive normal x.

    Offsetting the bits by those of sqrt(1/2) makes the exponent field carry
    exactly when the mantissa is >= sqrt(2) (musl's log reduction)."""
    fty = x.type
    ity, mant, bias = LAYOUT[_dtype(fty)]
    one, sqrth = float_bits(fty, 1.0), float_bits(fty, np.sqrt(0.5))
    ix = builder.add(builder.bitcast(x, ity), builder.sub(one, sqrth))
    mask = ir.Constant(ity, (1 << mant) - 1)
    m = builder.bitcast(builder.add(builder.and_(ix, mask), sqrth), fty)
    # Biased exponent -> float via the bits of 2**mant + k (exact; avoids
    # int64->double conversion, which AVX2 lacks).
    k = builder.lshr(ix, ir.Constant(ity, mant))
    kf = builder.bitcast(builder.or_(k, float_bits(fty, 2.0**mant)), fty)
    e = builder.fsub(kf, ir.Constant(fty, 2.0**mant + bias))
    return m, e


def horner(builder, x, coeffs):
    """Polynomial in x with LLVM values ``coeffs`` (highest degree first), as
    fused multiply-adds."""
    fma = llvm_fn(builder, "fmuladd", x.type, 3)
    acc = coeffs[0]
    for c in coeffs[1:]:
        acc = builder.call(fma, [acc, x, c])
    return acc


# ---------------------------------------------------------------------------
# Constants. Float32 code must only see float32 values: a Python float would
# promote the whole expression to float64.

_f32 = np.float32
ZERO_F32, HALF_F32, ONE_F32, TWO_F32 = _f32(0), _f32(0.5), _f32(1), _f32(2)
INF_F32, NAN_F32 = _f32(np.inf), _f32(np.nan)
LOG2E_F32 = _f32(1.4426950408889634)
LN2_HI_F32 = _f32(0.693359375)  # 9 significant bits: n*hi is exact
LN2_LO_F32 = _f32(-2.12194440e-4)
EXP_LO_F32, EXP_HI_F32 = _f32(-104), _f32(89)  # exp rounds to 0 / inf beyond
EXPM1_LO_F32 = _f32(-18)  # expm1 rounds to -1 below
TANH_MAX_F32 = _f32(10)  # tanh rounds to 1 above
MIN_NORMAL_F32 = _f32(np.finfo(np.float32).tiny)
TWO25_F32, N25_F32 = _f32(2.0**25), _f32(25)

# Cephes expf: exp(r) = 1 + r + r**2 * P(r) on |r| <= ln2/2.
EXP_P_F32 = tuple(_f32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
    4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
# Taylor: expm1(r) = r + r**2 * Q(r) on |r| <= ln2/2; truncation < 0.1 ulp.
EXPM1_Q_F32 = tuple(_f32(1 / factorial(k)) for k in range(8, 1, -1))
# Cephes logf: log(1+f) = f - f**2/2 + f**3 * P(f) on f in [sqrt(1/2)-1, sqrt(2)-1].
LOG_P_F32 = tuple(_f32(c) for c in (
    7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
    1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
    3.3333331174e-1))

_f64 = np.float64
ZERO_F64, HALF_F64, ONE_F64, TWO_F64 = _f64(0), _f64(0.5), _f64(1), _f64(2)
INF_F64, NAN_F64 = _f64(np.inf), _f64(np.nan)
LOG2E_F64 = _f64(1.4426950408889634)
LN2_HI_F64 = _f64(6.93147180369123816490e-01)  # 32 trailing zero bits
LN2_LO_F64 = _f64(1.90821492927058770002e-10)
EXP_LO_F64, EXP_HI_F64 = _f64(-746), _f64(710)
EXPM1_LO_F64 = _f64(-40)
TANH_MAX_F64 = _f64(20)
MIN_NORMAL_F64 = _f64(np.finfo(np.float64).tiny)
TWO54_F64, N54_F64 = _f64(2.0**54), _f64(54)

# Taylor to degree 13 on |r| <= ln2/2: truncation < 0.1 ulp.
EXP_P_F64 = tuple(_f64(1 / factorial(k)) for k in range(13, -1, -1))
EXPM1_Q_F64 = tuple(_f64(1 / factorial(k)) for k in range(13, 1, -1))
# fdlibm log: log(1+f) = f - f**2/2 + s*(f**2/2 + R(s**2)), s = f/(2+f),
# R(z) = z * (Lg1 + Lg2*z + ... + Lg7*z**6), highest degree first here.
LOG_LG_F64 = tuple(_f64(c) for c in (
    1.479819860511658591e-01, 1.531383769920937332e-01, 1.818357216161805012e-01,
    2.222219843214978396e-01, 2.857142874366239149e-01, 3.999999999940941908e-01,
    6.666666666666735130e-01))


