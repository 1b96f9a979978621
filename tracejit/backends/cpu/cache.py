"""The kernel cache: generated source -> callable native kernel.

Kernels are keyed by a hash of their source text, their argument dtypes,
and a stamp of everything else their machine code depends on (vmath.py and
intrinsics.py, which they inline; compiler.py's flags; the Numba, llvmlite
and NumPy versions; the host CPU and its features). A miss compiles the
source (compiler.py) and stores the object code as
``$TRACEJIT_CACHE_DIR/kernels/k_<hash>.o`` (default
``$XDG_CACHE_HOME/tracejit``, i.e. ``~/.cache/tracejit``), with the source
beside it as ``k_<hash>.py`` for people to read; a hit links the object
code (loader.py) without importing Numba. Identical kernels in one process
share one loaded function.

Numba's own ``cache=True`` is not used: it does not work for generated
source (numba issue 3501) and, where it works, loading from it initializes
Numba's typing and target contexts, about a second per process.

Entries are written once, to a temporary name and linked into place, so
concurrent processes can share a cache directory.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import threading
import time
from pathlib import Path

from ... import log
from ..cache_store import EntryStore, cache_dir
from . import compiler, loader, worker

__all__ = ["cache_dir", "load", "stats"]

#: Counters since the process started (see :func:`stats`).
STATS = {"kernels": 0, "memory_hits": 0, "disk_hits": 0, "compiled": 0,
         "compile_seconds": 0.0, "load_seconds": 0.0}
_loaded: dict = {}
_lock = threading.RLock()
_stamp = None


def _runtime_stamp() -> str:
    global _stamp
    if _stamp is None:
        import llvmlite.binding as llvm
        h = hashlib.sha256()
        here = Path(__file__).parent
        for name in ("vmath.py", "intrinsics.py", "compiler.py", "loader.py", "../../primitives/random.py"):
            h.update((here / name).read_bytes())
        for package in ("numba", "llvmlite", "numpy"):
            h.update(importlib.metadata.version(package).encode())
        h.update(llvm.get_host_cpu_name().encode())
        h.update(llvm.get_host_cpu_features().flatten().encode())
        _stamp = h.hexdigest()[:16]
    return _stamp


_store = EntryStore("kernels", ".o")


def _load_entry(key: str, nargs: int, what: str):
    """The function of ``key``'s verified cache entry, or None (no entry, or
    one that failed verification or loading: discarded)."""
    payload = _store.read(key, what)
    if payload is None:
        return None
    symbol, newline, obj = payload.partition(b"\n")
    if not newline or f"k_{key}".encode() not in symbol or not symbol.isascii():
        _store.discard(key, what, f"entry names symbol {symbol[:80]!r}, not k_{key}")
        return None
    try:
        return loader.load(obj, symbol.decode(), nargs)
    except loader.LoadError as e:
        _store.discard(key, what, f"loader refused it: {e}")
        return None


def load(source: str, arg_dtypes: tuple, what: str = "kernel"):
    """The native function of ``source``'s ``kernel``, called as
    ``f(lo, hi, dims_address, *array_addresses)``; ``arg_dtypes`` are the
    arrays' dtype names."""
    text = f"# tracejit kernel; arguments {' '.join(arg_dtypes)}; " \
           f"runtime {_runtime_stamp()}\n{source}"
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    with _lock:
        STATS["kernels"] += 1
        fn = _loaded.get(key)
        if fn is not None:
            STATS["memory_hits"] += 1
            log.log("cache", f"{what}: k_{key} already loaded in this process")
            return fn
        start = time.perf_counter()
        fn = _load_entry(key, 1 + len(arg_dtypes), what)
        if fn is not None:
            elapsed = time.perf_counter() - start
            STATS["disk_hits"] += 1
            STATS["load_seconds"] += elapsed
            log.log("compile", f"{what}: k_{key} loaded from the disk cache in "
                               f"{1e3 * elapsed:.1f} ms")
            log.log("cache", f"{what}: k_{key} hit")
        else:
            compile_object = worker.compile_object if worker.IN_WORKER.get() else compiler.compile_object
            obj, symbol = compile_object(source, f"k_{key}", arg_dtypes)
            _store.write_beside(f"k_{key}.py", text.encode())
            _store.write(key, symbol.encode() + b"\n" + obj)
            fn = loader.load(obj, symbol, 1 + len(arg_dtypes))
            elapsed = time.perf_counter() - start
            STATS["compiled"] += 1
            STATS["compile_seconds"] += elapsed
            log.log("compile", f"{what}: k_{key} compiled in {1e3 * elapsed:.1f} ms")
            log.log("cache", f"{what}: k_{key} miss")
        _loaded[key] = fn
        return fn


def stats() -> dict:
    """Kernel cache counters of this process: ``kernels`` requested,
    ``memory_hits`` (loaded earlier in this process), ``disk_hits``
    (object code loaded from the disk cache), ``compiled`` (compiled now),
    ``compile_seconds``, ``load_seconds``."""
    return dict(STATS)
