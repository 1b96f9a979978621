"""The kernel cache: generated source -> callable native kernel.

Kernels are keyed by a hash of their source text, their argument dtypes,
and a stamp of everything else their machine code depends on (vmath.py,
vmath_core.py and intrinsics.py, which they inline; irgen.py and
compiler.py, which compile them; the Numba, llvmlite and NumPy versions; the
host CPU and its features) and the compiler path (``TRACEJIT_COMPILER``).
A miss translates the source to LLVM IR (irgen.py) and compiles it in a
background thread, so LLVM works on one kernel of a plan while the next is
translated (``request``, then ``Request.result``), or, for a kernel
irgen.py does not cover,
compiles it with Numba (compiler.py); it stores the object code as
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
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ... import log
from ..cache_store import EntryStore, cache_dir
from . import compiler, irgen, loader, worker

__all__ = ["Request", "cache_dir", "load", "request", "stats"]

#: Counters since the process started (see :func:`stats`).
STATS = {"kernels": 0, "memory_hits": 0, "disk_hits": 0, "compiled": 0, "numba_fallbacks": 0,
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
        for name in ("vmath.py", "vmath_core.py", "intrinsics.py", "compiler.py", "irgen.py", "loader.py",
                     "../../primitives/random.py"):
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


_pool = None


def _executor() -> ThreadPoolExecutor:
    """One thread running LLVM on translated kernels while the calling thread
    translates the next ones (and builds the plan). One, because llvmlite
    serializes every call into LLVM with a process-wide lock: more threads
    would wait for each other."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix="tracejit-llvm")
    return _pool


class Request:
    """A kernel being loaded: :meth:`result` is its native function. A miss
    translated by irgen.py compiles in a background thread (LLVM runs
    without the GIL), so a plan requests all its kernels first, overlapping
    their translation with LLVM's work, and waits once."""

    def __init__(self, key, fn=None, future=None, text=None, nargs=0, what="kernel", start=0.0):
        self.key, self.fn, self.future = key, fn, future
        self.text, self.nargs, self.what, self.start = text, nargs, what, start
        self._lock = threading.Lock()

    def result(self):
        with self._lock:
            if self.fn is None:
                try:
                    obj, symbol, how = self.future.result()
                finally:
                    with _lock:
                        _pending.pop(self.key, None)
                key = self.key
                _store.write_beside(f"k_{key}.py", self.text.encode())
                _store.write(key, symbol.encode() + b"\n" + obj)
                fn = loader.load(obj, symbol, self.nargs)
                elapsed = time.perf_counter() - self.start
                with _lock:
                    STATS["compiled"] += 1
                    STATS["compile_seconds"] += elapsed
                    _loaded[key] = self.fn = fn
                log.log("compile", f"{self.what}: k_{key} compiled in {1e3 * elapsed:.1f} ms by {how}")
                log.log("cache", f"{self.what}: k_{key} miss")
        return self.fn


_pending: dict[str, Request] = {}


def _done(value) -> Future:
    f = Future()
    f.set_result(value)
    return f


def _llvm(text: str, symbol: str, what: str):
    try:
        return irgen.compile_ir(text), symbol, "llvmlite"
    except RuntimeError as e:   # LLVM rejected the translation: a bug of irgen.py
        raise RuntimeError(f"tracejit internal error: LLVM rejected the translation of {what} "
                           f"({symbol}): {e}\n(TRACEJIT_COMPILER=numba compiles kernels with "
                           f"Numba instead)") from e


def _compile(source: str, name: str, arg_dtypes, what: str) -> Future:
    """Future (object code, symbol, which compiler): straight to LLVM IR where
    irgen.py covers the kernel (LLVM in the background thread), else through
    Numba, now; for a background build, either in the worker process
    (worker.py)."""
    if worker.IN_WORKER.get():
        obj, symbol, how = worker.compile_object(source, name, arg_dtypes)
        if how.startswith("Numba"):
            STATS["numba_fallbacks"] += 1
        return _done((obj, symbol, how))
    if irgen.enabled():
        try:
            text = irgen.translate(source, name, arg_dtypes)
            return _executor().submit(_llvm, text, name, what)
        except irgen.Unsupported as e:
            STATS["numba_fallbacks"] += 1
            log.log("compile", f"{what}: not covered by the direct LLVM translation ({e}); "
                               f"compiling it with Numba")
    return _done((*compiler.compile_object(source, name, arg_dtypes), "Numba"))


def request(source: str, arg_dtypes: tuple, what: str = "kernel") -> Request:
    """Start loading ``source``'s ``kernel`` (see :func:`load`): from this
    process, the disk cache, or a compilation that may still be running
    when this returns."""
    compiler_name = "llvm" if irgen.enabled() else "numba"
    text = f"# tracejit kernel; arguments {' '.join(arg_dtypes)}; " \
           f"runtime {_runtime_stamp()}; compiler {compiler_name}\n{source}"
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    with _lock:
        STATS["kernels"] += 1
        fn = _loaded.get(key)
        pending = _pending.get(key)
        if fn is not None or pending is not None:
            STATS["memory_hits"] += 1
            log.log("cache", f"{what}: k_{key} already loaded in this process")
            return pending or Request(key, fn)
        start = time.perf_counter()
        fn = _load_entry(key, 1 + len(arg_dtypes), what)
        if fn is not None:
            elapsed = time.perf_counter() - start
            STATS["disk_hits"] += 1
            STATS["load_seconds"] += elapsed
            log.log("compile", f"{what}: k_{key} loaded from the disk cache in "
                               f"{1e3 * elapsed:.1f} ms")
            log.log("cache", f"{what}: k_{key} hit")
            _loaded[key] = fn
            return Request(key, fn)
        future = _compile(source, f"k_{key}", arg_dtypes, what)
        req = _pending[key] = Request(key, None, future, text, 1 + len(arg_dtypes), what, start)
        return req


def load(source: str, arg_dtypes: tuple, what: str = "kernel"):
    """The native function of ``source``'s ``kernel``, called as
    ``f(lo, hi, dims_address, *array_addresses)``; ``arg_dtypes`` are the
    arrays' dtype names."""
    return request(source, arg_dtypes, what).result()


def stats() -> dict:
    """Kernel cache counters of this process: ``kernels`` requested,
    ``memory_hits`` (loaded earlier in this process), ``disk_hits``
    (object code loaded from the disk cache), ``compiled`` (compiled now),
    ``numba_fallbacks`` (of those, compiled by Numba: not covered by irgen.py),
    ``compile_seconds``, ``load_seconds``."""
    return dict(STATS)
