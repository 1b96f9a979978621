"""A persistent thread pool that runs one kernel on slices of its outer loop.

Kernels are serial ``@njit(nogil=True)`` functions taking ``(lo, hi, ...)``;
running them on ``[0, n)`` split in chunks on several threads gives the
speed of a parallel loop at the compile cost of a serial one (``parallel=True``
costs about half a second of compile time per loop). Handing a chunk to a
worker costs some tens of microseconds, so the plan only splits kernels
that visit at least ``MIN_PARALLEL_WORK`` elements.

``TRACEJIT_NUM_THREADS`` sets the number of threads (default: the CPUs this
process may run on).
"""
from __future__ import annotations

import os
import threading

#: Elements a kernel must visit before it is worth splitting across threads.
MIN_PARALLEL_WORK = 1 << 16


def num_threads() -> int:
    env = os.environ.get("TRACEJIT_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


class _Worker(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True, name="tracejit-worker")
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.job = None
        self.error = None

    def run(self):
        while True:
            self.go.acquire()
            fn, args = self.job
            try:
                fn(*args)
            except BaseException as e:   # re-raised in the calling thread
                self.error = e
            self.job = None
            self.done.release()


class Pool:
    def __init__(self, n: int):
        self.n = n
        self.workers = []
        self.lock = threading.Lock()

    def _ensure(self):
        while len(self.workers) < self.n - 1:
            w = _Worker()
            w.start()
            self.workers.append(w)

    def run(self, kernel, extent: int, rest: tuple):
        """``kernel(lo, hi, *rest)`` over ``[0, extent)`` in one chunk per
        thread; the calling thread runs the first chunk. Calls from several
        threads at once run serially."""
        chunks = min(self.n, extent)
        if chunks <= 1 or not self.lock.acquire(blocking=False):
            kernel(0, extent, *rest)
            return
        try:
            self._ensure()
            bounds = [extent * k // chunks for k in range(chunks + 1)]
            busy = self.workers[:chunks - 1]
            for k, w in enumerate(busy, start=1):
                w.job = (kernel, (bounds[k], bounds[k + 1]) + rest)
                w.go.release()
            try:
                kernel(bounds[0], bounds[1], *rest)
            finally:
                for w in busy:
                    w.done.acquire()
            for w in busy:
                if w.error is not None:
                    err, w.error = w.error, None
                    raise err
        finally:
            self.lock.release()


_POOL = None


def pool() -> Pool:
    global _POOL
    if _POOL is None:
        _POOL = Pool(num_threads())
    return _POOL
