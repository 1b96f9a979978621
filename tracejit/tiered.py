"""Tiered execution: run the first calls on the reference interpreter while
the compiled plan is built in a background thread, then switch to it.

A compiled backend's first call costs the compilation of every kernel of
the program (Numba's front end and LLVM: about a second for an MLP step,
tens of seconds for a long unrolled scalar program), while the reference
interpreter (one NumPy call per primitive) can run the same traced program
at once. With tiering, ``jit`` returns the interpreter's results until the
compiled plan is ready and the compiled plan's results after: the values
agree to rounding (the reference backend is the oracle the compiled ones
are tested against), the first call costs only tracing and simplification.

Control: ``jit(f, tiered=True)`` for one function, or ``TRACEJIT_TIERED=1``
for every function that does not say (off by default). ``f.wait_compiled()``
blocks until the plans being compiled for ``f`` are ready (benchmarks use
it before timing steady state). At interpreter exit, compilations still
running are waited for, so their kernels reach the disk cache and the next
process starts warm. If a background compilation fails, the function keeps
running on the interpreter and the failure is reported once as a warning.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
import warnings

from . import log
from .backends import get_backend
from .backends.cpu.threads import blas_threads

_pending: set = set()
_pending_lock = threading.Lock()
_exit_hook = []


def enabled_by_default() -> bool:
    """``TRACEJIT_TIERED`` is set to a true value (1, true, yes, on)."""
    return os.environ.get("TRACEJIT_TIERED", "").strip().lower() in ("1", "true", "yes", "on")


class TieredExecutable:
    """Calls ``fn`` with the reference interpreter until ``compile_fn(fn,
    donate=donate)`` (started at once in a daemon thread) has returned the
    compiled executable, then calls that."""

    def __init__(self, fn, compile_fn, donate=(), name="f"):
        self.fn = fn
        self.name = name
        self._interpret = get_backend("reference").compile(fn)
        self.compiled = None
        self.error = None
        self.interpreted_calls = 0
        self._warned = False
        self._done = threading.Event()
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._compile, args=(compile_fn, donate),
                                        name=f"tracejit compile {name}", daemon=True)
        with _pending_lock:
            _pending.add(self)
            if not _exit_hook:   # registered after the backend's own exit hooks, so run before them
                _exit_hook.append(atexit.register(wait_all))
        self._thread.start()

    def _compile(self, compile_fn, donate):
        try:
            self.compiled = compile_fn(self.fn, donate=donate)
            log.log("compile", f"{self.name}: compiled plan ready after "
                               f"{time.perf_counter() - self._start:.2f} s; switching to it")
        except Exception as e:   # any failure: reported on the next call
            self.error = e
        finally:
            self._done.set()
            with _pending_lock:
                _pending.discard(self)

    def wait(self, timeout=None) -> bool:
        """Block until the compilation has finished (or failed); True if it has."""
        return self._done.wait(timeout)

    def __call__(self, args):
        run = self.compiled
        if run is not None:
            return run(args)
        if self.error is not None and not self._warned:
            self._warned = True
            warnings.warn(f"tracejit: compiling {self.name} in the background failed "
                          f"({type(self.error).__name__}: {self.error}); it keeps running on "
                          f"the reference interpreter", RuntimeWarning, stacklevel=4)
        self.interpreted_calls += 1
        if self.interpreted_calls == 1:
            log.log("compile", f"{self.name}: running on the reference interpreter while "
                               f"its plan compiles")
        # One BLAS thread, as the compiled plans run it: the build uses another
        # core, and OpenBLAS's spinning threads on a busy machine made an
        # interpreted LSTM step take ten times its CPU time.
        previous = blas_threads(1)
        try:
            return self._interpret(args)
        finally:
            blas_threads(previous)


def wait_all():
    """Block until every background compilation of this process has finished.
    Runs at exit (registered with the first tiered plan), so that their
    kernels reach the disk cache."""
    with _pending_lock:
        pending = list(_pending)
    for executable in pending:
        executable.wait()

