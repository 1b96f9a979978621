"""Load compiled kernels (native object code) without importing Numba.

A process that finds every kernel of a program in the disk cache needs only
llvmlite's JIT linker: importing Numba and initializing its typing and
target contexts takes about a second, several times the rest of a warm
first call. Each object file is linked by an MCJIT engine and its entry
point called through ctypes (which releases the GIL during the call, so
the thread pool runs kernels in parallel).

External symbols of the object code (C library functions such as memset or
powf, which LLVM may call for its intrinsics, and the Python C API) are
listed from its ELF symbol table and bound explicitly from the process, as
LLVM's JIT does not search the process by itself. Numba's C-callable
wrapper also references Numba runtime helpers (``numba_*``, ``NRT_*``),
reached only when the kernel raises (generated kernels never do: no bounds
checks, NumPy's error model, integer power by squaring) or frees a
Numba-allocated array (kernels allocate nothing); Numba's extension modules
do not export them, so any not already bound (by Numba, when it is
loaded) are bound to ``abort``.
"""
from __future__ import annotations

import ctypes
import struct
import threading

_lock = threading.Lock()
_ready = False
_engines = []   # keep every engine (and so its code) alive


def _init():
    global _ready, _llvm
    if _ready:
        return
    import llvmlite.binding as llvm
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    _llvm = llvm
    _ready = True


def undefined_symbols(obj: bytes) -> list[str]:
    """Names of the undefined symbols of a 64-bit little-endian ELF object."""
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise RuntimeError("kernel objects are expected in 64-bit little-endian ELF")
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + k * shentsize)
                for k in range(shnum)]
    names = []
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2:   # SHT_SYMTAB
            continue
        stroff = sections[link][4]
        for k in range(1, size // entsize):
            name, info, _, shndx, _, _ = struct.unpack_from("<IBBHQQ", obj, offset + k * entsize)
            if shndx == 0 and name:   # SHN_UNDEF
                end = obj.index(b"\0", stroff + name)
                names.append(obj[stroff + name:end].decode())
    return names


def _bind(names):
    process = ctypes.CDLL(None)
    for name in names:
        if _llvm.address_of_symbol(name) is None:
            func = getattr(process, name, None)
            if func is None and name.startswith(("numba_", "NRT_")):
                func = process.abort   # Numba's runtime, on an error path (see above)
            if func is None:
                raise RuntimeError(f"kernel needs symbol {name}, not found in this process")
            _llvm.add_symbol(name, ctypes.cast(func, ctypes.c_void_p).value)


def load(obj: bytes, symbol: str, nargs: int):
    """The function ``symbol`` of object code ``obj``, callable as
    ``f(lo, hi, *addresses)`` with ``nargs`` addresses (ints)."""
    with _lock:
        _init()
        llvm = _llvm
        _bind(undefined_symbols(obj))
        target = llvm.Target.from_default_triple().create_target_machine()
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target)
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        address = engine.get_function_address(symbol)
        if not address:
            raise RuntimeError(f"kernel object has no symbol {symbol}")
        _engines.append(engine)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, *([ctypes.c_void_p] * nargs))
    return proto(address)
