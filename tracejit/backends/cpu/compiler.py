"""Kernel source -> native object code, through Numba (imported only here):
for the kernels that irgen.py (the direct LLVM translation) does not cover,
and for all of them under ``TRACEJIT_COMPILER=numba``.

Numba's front end types the kernel and lowers it to optimized LLVM IR,
without JIT-compiling it (``no_compile``, as its ahead-of-time compiler
does); llvmlite turns the IR into object code for this CPU, which the disk
cache stores and loader.py links. The entry point is Numba's C-callable
wrapper: ``void kernel(int64 lo, int64 hi, int64* dims, T0* p0, ...)``.

Numba compiles with its ahead-of-time code generator (as ``numba.pycc``
does): its JIT code generator would also build machine code for the module
in its own execution engine when the library is finalized, a second
native compilation that this module's object code does not use (about a
tenth of a small kernel's compile time).

Flags: ``error_model='numpy'`` (float division by zero gives inf/nan, no
exception checks in loops), ``fastmath={'contract'}`` (fused multiply-adds:
results differ from NumPy's by rounding only; reductions reassociate their
accumulation alone, see intrinsics.py).
"""
from __future__ import annotations

import functools

import numpy as np

from ...ir.dtypes import storage
from . import irgen


@functools.cache
def _target_context():
    """Numba's CPU target context with an ahead-of-time code generator for
    this host (created once: each code generator has its own LLVM target)."""
    from numba.core.registry import cpu_target
    return cpu_target.target_context.with_aot_codegen("tracejit", cpu_name="host")


def compile_object(source: str, name: str, arg_dtypes) -> tuple[bytes, str]:
    """Compile the function ``kernel`` of module text ``source``; its
    arguments are ``(lo, hi, dims, *pointers)`` with the pointers' element
    dtypes ``arg_dtypes`` (float16 and bfloat16 buffers are uint16 bit
    patterns to the kernel). Returns (object code, entry symbol)."""
    import llvmlite.binding as llvm
    from numba import from_dtype, types
    from numba.core.compiler import Flags, compile_extra
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    irgen.configure_llvm()   # the same LLVM options as the direct translation
    namespace = {"__name__": name}
    exec(compile(source, f"<tracejit {name}>", "exec"), namespace)
    args = (types.int64, types.int64, types.CPointer(types.int64)) + tuple(
        types.CPointer(from_dtype(np.dtype(storage(d)))) for d in arg_dtypes)
    flags = Flags()
    flags.no_compile = True
    flags.no_cpython_wrapper = True
    flags.no_cfunc_wrapper = False
    flags.nrt = True
    flags.error_model = "numpy"
    flags.fastmath = {"contract"}
    with global_compiler_lock:
        cres = compile_extra(cpu_target.typing_context, _target_context(),
                             namespace["kernel"], args, types.void, flags, locals={})
        cres.library.finalize()
        ir = cres.library.get_llvm_str()
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3,
        codemodel="large")   # linked anywhere in the address space by loader.py
    return machine.emit_object(llvm.parse_assembly(ir)), cres.fndesc.llvm_cfunc_wrapper_name
