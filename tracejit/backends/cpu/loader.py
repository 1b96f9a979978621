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


class LoadError(RuntimeError):
    """Object code this loader will not hand to LLVM (not a well-formed
    relocatable ELF object of this machine, or lacking the entry point)."""


def _check(condition, what):
    if not condition:
        raise LoadError(what)


def undefined_symbols(obj: bytes) -> list[str]:
    """Names of the undefined symbols of a 64-bit little-endian ELF object.

    Every offset is checked against the object's size first: LLVM's object
    loader aborts the process on malformed input (the kernel cache verifies
    entries before they get here; this is the second line)."""
    _check(len(obj) >= 64 and obj[:4] == b"\x7fELF" and obj[4] == 2 and obj[5] == 1,
           "kernel objects are expected in 64-bit little-endian ELF")
    e_type, = struct.unpack_from("<H", obj, 0x10)
    _check(e_type == 1, f"ELF type {e_type} is not a relocatable object")
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    _check(shentsize >= 64 and 0 < shnum and shoff + shnum * shentsize <= len(obj),
           "section header table out of bounds")
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + k * shentsize)
                for k in range(shnum)]
    for _, kind, _, _, offset, size, _, _, _, _ in sections:
        _check(kind == 8 or offset + size <= len(obj), "section out of bounds")   # 8: NOBITS
    names = []
    for _, kind, _, _, offset, size, link, _, _, entsize in sections:
        if kind != 2:   # SHT_SYMTAB
            continue
        _check(entsize >= 24 and link < shnum, "malformed symbol table")
        stroff, strsize = sections[link][4], sections[link][5]
        for k in range(1, size // entsize):
            name, _, _, shndx, _, _ = struct.unpack_from("<IBBHQQ", obj, offset + k * entsize)
            if shndx == 0 and name:   # SHN_UNDEF
                _check(name < strsize, "symbol name out of bounds")
                end = obj.find(b"\0", stroff + name, stroff + strsize)
                _check(end >= 0, "unterminated symbol name")
                try:
                    names.append(obj[stroff + name:end].decode("ascii"))
                except UnicodeDecodeError:
                    raise LoadError("symbol name is not ASCII") from None
    return names


def _bind(names):
    process = ctypes.CDLL(None)
    for name in names:
        if _llvm.address_of_symbol(name) is None:
            func = getattr(process, name, None)
            if func is None and name.startswith(("numba_", "NRT_")):
                func = process.abort   # Numba's runtime, on an error path (see above)
            if func is None:
                raise LoadError(f"kernel needs symbol {name}, not found in this process")
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
            raise LoadError(f"kernel object has no symbol {symbol}")
        _engines.append(engine)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, *([ctypes.c_void_p] * nargs))
    return proto(address)
