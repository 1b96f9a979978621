"""The kernel cache: generated source -> compiled Numba dispatcher.

Numba's ``cache=True`` does not work for source passed to ``exec`` (numba
issue 3501), so each kernel is written to a real module file named by the
hash of its text, ``$TRACEJIT_CACHE_DIR/kernels/k_<hash>.py`` (default
``$XDG_CACHE_HOME/tracejit``, i.e. ``~/.cache/tracejit``), imported, and
compiled with ``cache=True``: Numba stores the machine code next to it, in
``__pycache__``, and a later process loads it instead of compiling. The
text starts with a stamp of everything the kernel inlines (vmath.py,
intrinsics.py) and of the Numba/llvmlite/NumPy versions, so a change to any
of them gives new file names instead of stale machine code.

A file is created once and never rewritten (Numba's index checks the source
file's modification time): it is written to a temporary name and linked into
place, so concurrent processes are safe. Identical kernels in one process
share one dispatcher.
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

from numba import from_dtype, types

from ... import log
from .codegen import KernelSource

#: Counters since the process started (see :func:`stats`).
STATS = {"kernels": 0, "memory_hits": 0, "disk_hits": 0, "compiled": 0,
         "compile_seconds": 0.0}
_loaded: dict = {}
_lock = threading.RLock()
_stamp = None


def cache_dir() -> Path:
    env = os.environ.get("TRACEJIT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tracejit"


def _runtime_stamp() -> str:
    global _stamp
    if _stamp is None:
        import llvmlite
        import numba
        import numpy
        h = hashlib.sha256()
        here = Path(__file__).parent
        for name in ("vmath.py", "intrinsics.py"):
            h.update((here / name).read_bytes())
        h.update(f"{numba.__version__} {llvmlite.__version__} {numpy.__version__}".encode())
        h.update(Path(sys.modules["tracejit.primitives.random"].__file__).read_bytes())
        _stamp = h.hexdigest()[:16]
    return _stamp


def _write_once(path: Path, text: str):
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(tmp, path)   # fails if another process got there first
        except FileExistsError:
            pass
        except OSError:
            if not path.exists():
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _nb_type(array_type):
    """Numba type of a C-contiguous array argument ``(dtype, ndim)``."""
    dtype, ndim = array_type
    return types.Array(from_dtype(dtype), ndim, "C")


def signature(ks: KernelSource, arg_types):
    dims = types.UniTuple(types.int64, len(ks.dims)) if ks.dims else types.Tuple(())
    return (types.int64, types.int64, dims) + tuple(_nb_type(t) for t in arg_types)


def load(ks: KernelSource, arg_types, what: str = "kernel"):
    """The compiled ``kernel`` of ``ks`` for arrays of ``arg_types``
    (``(numpy dtype, ndim)`` each)."""
    text = f"# tracejit kernel; runtime {_runtime_stamp()}\n{ks.source}"
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    sig = signature(ks, arg_types)
    with _lock:
        STATS["kernels"] += 1
        disp = _loaded.get(key)
        if disp is not None and sig in disp.overloads:
            STATS["memory_hits"] += 1
            log.log("cache", f"{what}: k_{key} already compiled in this process")
            return disp
        if disp is None:
            path = cache_dir() / "kernels" / f"k_{key}.py"
            _write_once(path, text)
            # registered under its own name: Numba's cached environment is
            # rebuilt by importing the module by that name
            modname = f"tracejit_kernel_{key}"
            spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            spec.loader.exec_module(module)
            disp = module.kernel
            _loaded[key] = disp
        start = time.perf_counter()
        disp.compile(sig)
        elapsed = time.perf_counter() - start
        hit = disp.stats.cache_hits.get(sig, 0) > 0
        STATS["disk_hits" if hit else "compiled"] += 1
        STATS["compile_seconds"] += elapsed
        log.log("compile", f"{what}: k_{key} {'loaded from disk cache' if hit else 'compiled'} "
                           f"in {1e3 * elapsed:.1f} ms")
        log.log("cache", f"{what}: k_{key} {'hit' if hit else 'miss'}")
        return disp


def stats() -> dict:
    """Kernel cache counters of this process: ``kernels`` requested,
    ``memory_hits`` (compiled earlier in this process), ``disk_hits``
    (machine code loaded from the disk cache), ``compiled`` (compiled by
    Numba now), ``compile_seconds``."""
    return dict(STATS)
