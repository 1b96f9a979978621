"""Small LLVM-level helpers for generated kernels, and the functions they call.

Numba applies ``fastmath`` flags to a whole function; these apply a flag to
one instruction instead, so a kernel can reassociate its reduction (which
lets LLVM vectorize it) without licensing the same for the vmath range
reductions it inlines. ``fmaximum``/``fminimum`` are LLVM's NaN-propagating
``llvm.maximum``/``llvm.minimum``, which vectorize as reductions where a
compare-and-select with a NaN test does not.
"""
from __future__ import annotations

import numpy as np
import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ...kernel import halfs
from ...primitives.random import threefry2x32
from . import vmath


def _float_binary(codegen):
    def typer(typingctx, a, b):
        if not isinstance(a, types.Float) or a != b:
            return None
        return a(a, b), codegen
    return typer


@intrinsic
def radd(typingctx, a, b):
    """a + b, reassociable (for sum reductions)."""
    return _float_binary(lambda ctx, builder, sig, args:
                         builder.fadd(*args, flags=("reassoc", "nsz")))(typingctx, a, b)


@intrinsic
def rmul(typingctx, a, b):
    """a * b, reassociable (for product reductions)."""
    return _float_binary(lambda ctx, builder, sig, args:
                         builder.fmul(*args, flags=("reassoc", "nsz")))(typingctx, a, b)


def _llvm_binary(name):
    def codegen(ctx, builder, sig, args):
        ty = args[0].type
        suffix = "f32" if ty == ir.FloatType() else "f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty]),
                                            f"llvm.{name}.{suffix}")
        return builder.call(fn, args)
    return codegen


@intrinsic
def fmaximum(typingctx, a, b):
    """max(a, b), NaN if either is NaN."""
    return _float_binary(_llvm_binary("maximum"))(typingctx, a, b)


@intrinsic
def fminimum(typingctx, a, b):
    """min(a, b), NaN if either is NaN."""
    return _float_binary(_llvm_binary("minimum"))(typingctx, a, b)


@intrinsic
def select(typingctx, c, a, b):
    """``a if c else b`` as one LLVM ``select``: both operands are computed
    (snippets use it only where that is safe) and no branch is made. A
    kernel of a few thousand ternaries otherwise has thousands of basic
    blocks, and Numba's SSA reconstruction and rewrite passes grow faster
    than linearly with their number (a 100-iteration unrolled scalar loop
    took minutes to compile)."""
    ty = typingctx.unify_types(types.unliteral(a), types.unliteral(b))
    if ty is None or not isinstance(c, (types.Boolean, types.Integer)):
        return None

    def codegen(ctx, builder, sig, args):
        cond = ctx.cast(builder, args[0], sig.args[0], types.boolean)
        x = ctx.cast(builder, args[1], sig.args[1], sig.return_type)
        y = ctx.cast(builder, args[2], sig.args[2], sig.return_type)
        return builder.select(cond, x, y)
    return ty(c, a, b), codegen


# --- calls for generated kernels ------------------------------------------------------
# vmath's functions are ``inline="always"``: Numba would inline their IR into
# every kernel at every call site, and type and lower it again each time,
# which is most of a kernel's compile time. Kernels call these ordinary
# functions instead, compiled once (and cached on disk); LLVM still inlines
# them into the kernel's loop, which therefore still vectorizes.
_call = njit(cache=True, nogil=True, error_model="numpy")


@_call
def exp_f32(x):
    return vmath.exp_f32(x)


@_call
def exp_f64(x):
    return vmath.exp_f64(x)


@_call
def log_f32(x):
    return vmath.log_f32(x)


@_call
def log_f64(x):
    return vmath.log_f64(x)


@_call
def tanh_f32(x):
    return vmath.tanh_f32(x)


@_call
def tanh_f64(x):
    return vmath.tanh_f64(x)


@_call
def logistic_f32(x):
    return vmath.logistic_f32(x)


@_call
def logistic_f64(x):
    return vmath.logistic_f64(x)


@_call
def log1p_f32(x):
    return vmath.log1p_f32(x)


@_call
def log1p_f64(x):
    return vmath.log1p_f64(x)


@_call
def expm1_f32(x):
    return vmath.expm1_f32(x)


@_call
def expm1_f64(x):
    return vmath.expm1_f64(x)


@_call
def ipow(base, exponent):
    """Integer power by squaring, wrapping on overflow like NumPy; 0 for a
    negative exponent (where NumPy raises: kernels cannot)."""
    result = base - base + 1
    if exponent < 0:
        return result - result
    while exponent:
        if exponent & 1:
            result *= base
        base *= base
        exponent >>= 1
    return result


@_call
def igcd(a, b):
    """The greatest common divisor of |a| and |b| (Euclid), as np.gcd."""
    a, b = abs(a), abs(b)
    while b != 0:
        a, b = b, a % b
    return a


_threefry = njit(inline="always")(threefry2x32)


@_call
def random_bits_at(k0, k1, index):
    """Element ``index`` (row-major) of random_bits under key (k0, k1)."""
    i = np.uint64(index)
    y0, y1 = _threefry(np.uint32(k0), np.uint32(k1), np.uint32(i >> np.uint64(32)),
                       np.uint32(i & np.uint64(0xFFFFFFFF)))
    return np.uint32(y0 ^ y1)


# float16/bfloat16 conversions and rounding (tracejit/kernel/halfs.py)
_halfs = halfs.compiled(njit(nogil=True, error_model="numpy"))
f16, bf16, f32_odd = _halfs["f16"], _halfs["bf16"], _halfs["f32_odd"]
f16_load, f16_store = _halfs["f16_load"], _halfs["f16_store"]
bf16_load, bf16_store = _halfs["bf16_load"], _halfs["bf16_store"]


def _half_codegen(to_bits: bool, from_bits: bool):
    """float32 -> half (``fptrunc``, round to nearest even) -> bits, or bits
    -> half -> float32 (``fpext``, exact), or both (rounding to float16)."""
    def codegen(ctx, builder, sig, args):
        if from_bits:
            v = ctx.cast(builder, args[0], sig.args[0], types.uint16)
            h = builder.bitcast(v, ir.HalfType())
        else:
            h = builder.fptrunc(ctx.cast(builder, args[0], sig.args[0], types.float32),
                                ir.HalfType())
        return builder.bitcast(h, ir.IntType(16)) if to_bits else builder.fpext(h, ir.FloatType())
    return codegen


@intrinsic
def f16_store_f16c(typingctx, x):
    """float32 -> float16 bits in one instruction (F16C's vcvtps2ph)."""
    return types.uint16(x), _half_codegen(True, False)


@intrinsic
def f16_load_f16c(typingctx, h):
    """float16 bits -> float32 (vcvtph2ps)."""
    return types.float32(h), _half_codegen(False, True)


@intrinsic
def f16_f16c(typingctx, x):
    """x rounded to float16, as a float32."""
    return types.float32(x), _half_codegen(False, False)


if "+f16c" in llvm.get_host_cpu_features().flatten():
    # The conversions vectorize: an elementwise float16 kernel runs about as
    # fast as a float32 one instead of 7 times slower (docs/numpy.md). Without
    # F16C, LLVM would call compiler-rt, which kernels are not linked with.
    f16, f16_load, f16_store = f16_f16c, f16_load_f16c, f16_store_f16c
