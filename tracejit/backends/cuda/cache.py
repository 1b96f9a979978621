"""The CUDA kernel cache: generated source -> compiled ``numba.cuda`` kernel.

Each kernel's source is written to a real module file,
``<cache dir>/cuda/k_<hash>.py`` (the cache dir of the CPU backend:
$TRACEJIT_CACHE_DIR, default ~/.cache/tracejit), named by the hash of its
text (which includes its argument types and a stamp of the intrinsics it
calls). The module is imported with importlib and its ``kernel`` compiled
by ``cuda.jit(signature, cache=True)``, so Numba caches the compiled code
beside the file (``__pycache__``) and a later process loads it instead of
compiling: Numba's cache needs a function defined in a file, which source
``exec``'d from a string is not (numba issue 3501). The module file is a
verified entry (``../cache_store.py``): its header carries its key and
checksum, and it is imported only when its text is exactly the kernel's; a
damaged or foreign file is logged, removed (with Numba's cached code for it)
and written again. Files are written to a temporary name and linked into
place, so concurrent writers are safe. Where the cache directory cannot be
written, the kernel is compiled in memory (one warning). Identical kernels
of one process are compiled once.

Kernels are compiled eagerly for their one signature (C-contiguous arrays
of fixed rank and dtype, int64 counts and dims), so a launch never looks
up or compiles a specialisation.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import sys
import threading
import time
import types
from pathlib import Path

from ... import log
from ...ir.dtypes import storage
from ..cache_store import EntryStore
from .snippets import SIMULATOR

__all__ = ["load", "signature", "stats"]

STATS = {"kernels": 0, "memory_hits": 0, "disk_hits": 0, "compiled": 0,
         "compile_seconds": 0.0}
_loaded: dict = {}
_lock = threading.RLock()
_stamp = None


def _runtime_stamp() -> str:
    """What compiled code depends on besides the source: the intrinsics, the
    random stream, numba-cuda's version, and simulator or not."""
    global _stamp
    if _stamp is None:
        h = hashlib.sha256()
        here = Path(__file__).parent
        for name in ("intrinsics.py", "../../primitives/random.py"):
            h.update((here / name).read_bytes())
        for package in ("numba", "numba-cuda"):
            try:
                h.update(importlib.metadata.version(package).encode())
            except importlib.metadata.PackageNotFoundError:
                pass
        h.update(b"sim" if SIMULATOR else b"gpu")
        _stamp = h.hexdigest()[:16]
    return _stamp


def signature(arg_types):
    """The Numba signature: int64 scalars, C-contiguous arrays."""
    from numba import types
    args = []
    for t in arg_types:
        if t == "i64":
            args.append(types.int64)
        else:
            dtype, ndim = t
            dtype = storage(dtype)   # float16/bfloat16: their bits
            args.append(types.Array(getattr(types, "boolean" if dtype == "bool" else dtype),
                                    ndim, "C"))
    return types.void(*args)


_store = EntryStore("cuda", ".py")


def _purge_compiled(path: Path, key: str):
    """Remove Numba's cached code for a module file that was discarded."""
    for f in (path.parent / "__pycache__").glob(f"k_{key}.*"):
        try:
            f.unlink()
        except OSError:
            pass


def _module_file(key: str, text: str, what: str) -> tuple[Path | None, bool]:
    """(path of ``key``'s verified module file, whether it was there), or
    (None, False) when the cache directory cannot be written."""
    payload = _store.read(key, what)
    if payload == text.encode():
        return _store.path(key), True
    if payload is not None:   # verified but not this kernel's text: a hash collision or a forgery
        _store.discard(key, what, "the entry holds other source text")
    _purge_compiled(_store.path(key), key)
    return _store.write(key, text.encode()), False


def _module_in_memory(text: str, name: str):
    module = types.ModuleType(name)
    exec(compile(text, f"<tracejit {name}>", "exec"), module.__dict__)
    return module


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # Numba's cache locates functions by module
    spec.loader.exec_module(module)
    return module


def load(source: str, arg_types: tuple, what: str = "kernel"):
    """The compiled kernel (a ``numba.cuda`` dispatcher) of ``source``'s
    function ``kernel``, for arguments of ``arg_types``."""
    from numba import cuda
    types_text = " ".join(t if isinstance(t, str) else f"{t[0]}[{t[1]}]" for t in arg_types)
    text = f"# tracejit CUDA kernel; arguments {types_text}; runtime {_runtime_stamp()}\n{source}"
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    with _lock:
        STATS["kernels"] += 1
        fn = _loaded.get(key)
        if fn is not None:
            STATS["memory_hits"] += 1
            log.log("cache", f"{what}: cuda k_{key} already compiled in this process")
            return fn
        start = time.perf_counter()
        path, hit = _module_file(key, text, what)
        hit = hit and any((path.parent / "__pycache__").glob(f"k_{key}.*"))
        name = f"tracejit_cuda_k_{key}"
        module = _import(path, name) if path is not None else _module_in_memory(text, name)
        if SIMULATOR:
            fn = cuda.jit(module.kernel)
        else:
            fn = cuda.jit(signature(arg_types), cache=path is not None)(module.kernel)
        elapsed = time.perf_counter() - start
        STATS["disk_hits" if hit else "compiled"] += 1
        STATS["compile_seconds"] += elapsed
        log.log("compile", f"{what}: cuda k_{key} {'loaded from the disk cache' if hit else 'compiled'}"
                           f" in {1e3 * elapsed:.1f} ms")
        log.log("cache", f"{what}: cuda k_{key} {'hit' if hit else 'miss'}")
        _loaded[key] = fn
        return fn


def stats() -> dict:
    """Kernel cache counters of this process."""
    return dict(STATS)
