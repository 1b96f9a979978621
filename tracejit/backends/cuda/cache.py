"""The CUDA kernel cache: generated source -> compiled ``numba.cuda`` kernel.

Each kernel's source is written to a real module file,
``<cache dir>/cuda/k_<hash>.py`` (the cache dir of the CPU backend:
$TRACEJIT_CACHE_DIR, default ~/.cache/tracejit), named by the hash of its
text (which includes its argument types and a stamp of the intrinsics it
calls). The module is imported with importlib and its ``kernel`` compiled
by ``cuda.jit(signature, cache=True)``, so Numba caches the compiled code
beside the file (``__pycache__``) and a later process loads it instead of
compiling: Numba's cache needs a function defined in a file, which source
``exec``'d from a string is not (numba issue 3501). Files are written to a
temporary name and ``os.replace``d into place, so concurrent writers are
safe. Identical kernels of one process are compiled once.

Kernels are compiled eagerly for their one signature (C-contiguous arrays
of fixed rank and dtype, int64 counts and dims), so a launch never looks
up or compiles a specialisation.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from ... import log
from ..cpu.cache import cache_dir
from .snippets import SIMULATOR

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
        import importlib.metadata
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
            args.append(types.Array(getattr(types, "boolean" if dtype == "bool" else dtype),
                                    ndim, "C"))
    return types.void(*args)


def _write(path: Path, text: str):
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
        path = cache_dir() / "cuda" / f"k_{key}.py"
        hit = path.exists() and any((path.parent / "__pycache__").glob(f"k_{key}.*"))
        _write(path, text)
        start = time.perf_counter()
        module = _import(path, f"tracejit_cuda_k_{key}")
        if SIMULATOR:
            fn = cuda.jit(module.kernel)
        else:
            fn = cuda.jit(signature(arg_types), cache=True)(module.kernel)
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
