"""A persistent thread pool that runs one kernel on slices of its outer loop.

Kernels are serial ``@njit(nogil=True)`` functions taking ``(lo, hi, ...)``;
running them on ``[0, n)`` split in chunks on several threads gives the
speed of a parallel loop at the compile cost of a serial one (``parallel=True``
costs about half a second of compile time per loop). Handing a chunk to a
worker costs some tens of microseconds, so the plan only splits kernels
that visit at least ``MIN_PARALLEL_WORK`` elements.

``TRACEJIT_NUM_THREADS`` sets the number of threads (default: the CPUs this
process may run on).

BLAS. A second pool of threads, OpenBLAS's, spinning next to this one on
the same cores makes both stall (a 1 ms matrix product took 8 to 32 ms on
the 2-core test machine while another process was busy). So plans run
NumPy's OpenBLAS single-threaded in the threads they use
(``openblas_set_num_threads_local``, which leaves other threads alone, and
restored when the plan returns) and split large products across this pool
instead (library.py).
"""
from __future__ import annotations

import ctypes
import glob
import itertools
import os
import queue
import threading

import numpy as np

#: Elements a kernel must visit before it is worth splitting across threads.
MIN_PARALLEL_WORK = 1 << 18


def num_threads() -> int:
    env = os.environ.get("TRACEJIT_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


class _Job:
    """One kernel call split in chunks that any thread may take."""

    def __init__(self, kernel, bounds, rest):
        self.kernel, self.bounds, self.rest = kernel, bounds, rest
        self.next = itertools.count()   # next() is atomic under the GIL
        self.lock = threading.Lock()
        self.completed = 0
        self.done = threading.Event()
        self.error = None

    def work(self):
        n = len(self.bounds) - 1
        while True:
            k = next(self.next)
            if k >= n:
                return
            try:
                self.kernel(self.bounds[k], self.bounds[k + 1], *self.rest)
            except BaseException as e:   # re-raised in the calling thread
                self.error = e
            with self.lock:
                self.completed += 1
                if self.completed == n:
                    self.done.set()


def _worker(jobs):
    blas_threads(1)
    while True:
        jobs.get().work()


class Pool:
    """Chunks are taken by whichever thread is free, the caller included:
    when another process keeps a core busy, the caller does the work
    instead of waiting for a worker that is not running."""

    CHUNKS_PER_THREAD = 4

    def __init__(self, n: int):
        self.n = n
        self.jobs = queue.SimpleQueue()
        self.started = 0

    def run(self, kernel, extent: int, rest: tuple, per_thread: int = CHUNKS_PER_THREAD):
        """``kernel(lo, hi, *rest)`` over ``[0, extent)``, in ``per_thread``
        chunks per thread."""
        chunks = min(self.n * per_thread, extent)
        if chunks <= 1 or self.n <= 1:
            kernel(0, extent, *rest)
            return
        while self.started < self.n - 1:
            threading.Thread(target=_worker, args=(self.jobs,), daemon=True,
                             name="tracejit-worker").start()
            self.started += 1
        job = _Job(kernel, [extent * k // chunks for k in range(chunks + 1)], rest)
        for _ in range(self.n - 1):
            self.jobs.put(job)
        job.work()
        job.done.wait()
        if job.error is not None:
            raise job.error


_POOL = None


def pool() -> Pool:
    global _POOL
    if _POOL is None:
        _POOL = Pool(num_threads())
    return _POOL


def _openblas_local():
    here = os.path.dirname(np.__file__)
    for path in glob.glob(os.path.join(here, os.pardir, "numpy.libs", "libscipy_openblas*")) + \
            glob.glob(os.path.join(here, ".dylibs", "libscipy_openblas*")):
        func = getattr(ctypes.CDLL(path), "openblas_set_num_threads_local", None)
        if func is not None:
            func.restype, func.argtypes = ctypes.c_int, [ctypes.c_int]
            return func
    return lambda n: n   # another BLAS: leave it as it is


_blas_local = None


def blas_threads(n: int) -> int:
    """Set the number of BLAS threads for calls from this thread; returns the
    previous number."""
    global _blas_local
    if _blas_local is None:
        _blas_local = _openblas_local()
    return _blas_local(n)
