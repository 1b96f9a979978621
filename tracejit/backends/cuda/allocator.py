"""The caching device allocator: every device array the CUDA plans create
(results, intermediates, uploads of NumPy arguments, library results and
scratch, sub-plan carries) comes from here, so that a training step whose
shapes do not change allocates nothing from the driver once its buffers
have been through the pool.

With CuPy importable (and not in Numba's simulator) the buffers are CuPy
arrays from CuPy's default memory pool, seen by Numba without a copy. Else
this module keeps its own size-class pool: a request is rounded up to its
size class (``size_class``: multiples of 512 bytes, at most 1/8 more than
asked above 4 KiB), served from that class's free list, or else allocated
from the driver (``cuda.device_array``). Each array handed out owns a
*lease*: every Numba view of the array (reshape, slice, row) keeps it alive,
and when the last one is gone the lease puts its block back on the free
list. Blocks are never returned to the driver, except by ``empty_cache()``
or when the driver reports out of memory (then the pool frees its idle
blocks and tries once more).

``stats()`` reports bytes in use, the peak and what the pool holds;
``TRACEJIT_LOG=compile`` prints them after the first call of each compiled
function.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from numba import cuda

from .snippets import SIMULATOR

if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

__all__ = ["empty", "upload", "stats", "empty_cache", "size_class", "use_cupy"]

GRANULE = 512


def size_class(nbytes: int) -> int:
    """The block size serving a request of ``nbytes``: a multiple of 512,
    rounded up to one of 8 steps per power of two above 4 KiB (at most 1/8
    wasted)."""
    n = max(int(nbytes), 1)
    step = max(GRANULE, 1 << max(n.bit_length() - 4, 0))
    return -(-n // step) * step


@functools.cache
def use_cupy():
    """CuPy's module when its pool serves the buffers, else None."""
    if SIMULATOR:
        return None
    try:
        import cupy as cp
        cp.empty(1, cp.uint8)
    except Exception:   # not installed, or built for another CUDA than the driver's
        return None
    return cp


class _Lease:
    """Owns one block while an array uses it (see the module docstring).
    Exposes the block as an array interface (``__array_interface__`` in the
    simulator, where a device array is a NumPy array, else
    ``__cuda_array_interface__``) of the requested shape and dtype."""

    __slots__ = ("pool", "cls", "block", "desc", "__weakref__")

    def __init__(self, pool, cls, block, ptr, shape, dtype):
        self.pool, self.cls, self.block = pool, cls, block
        self.desc = {"shape": shape, "typestr": dtype.str, "data": (ptr, False),
                     "strides": None, "version": 3}

    @property
    def __array_interface__(self):
        return self.desc

    @property
    def __cuda_array_interface__(self):
        return dict(self.desc, stream=None)

    def __del__(self):
        try:
            self.pool.release(self.cls, self.block)
        except Exception:   # interpreter shutdown: the pool may be gone
            pass


class Pool:
    """Size-class free lists of raw device blocks."""

    def __init__(self):
        self.free: dict[int, list] = {}
        self.lock = threading.Lock()
        self.released: list = []     # classes given back since the last count (lock-free)
        self.in_use = 0
        self.peak = 0
        self.held = 0
        self.driver_allocs = 0
        self.requests = 0

    def _count_released(self):
        while self.released:
            self.in_use -= self.released.pop()

    def _block(self, cls):
        """A block of ``cls`` bytes and its address: reused, or from the driver."""
        blocks = self.free.get(cls)
        if blocks:
            try:
                return blocks.pop()
            except IndexError:
                pass
        try:
            block = _driver_alloc(cls)
        except Exception as e:
            if "OUT_OF_MEMORY" not in str(e).upper().replace(" ", "_"):
                raise
            self._free_idle()
            block = _driver_alloc(cls)
        self.driver_allocs += 1
        self.held += cls
        return block

    def acquire(self, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        cls = size_class(nbytes)
        with self.lock:
            self._count_released()
            self.requests += 1
            block = self._block(cls)
            self.in_use += cls
            self.peak = max(self.peak, self.in_use)
        lease = _Lease(self, cls, block, _address(block), tuple(shape), dtype)
        if SIMULATOR:
            return FakeCUDAArray(np.asarray(lease))
        return cuda.from_cuda_array_interface(lease.__cuda_array_interface__, owner=lease,
                                              sync=False)

    def release(self, cls, block):
        # Runs from a finalizer, possibly inside acquire on this thread: no
        # lock, only atomic list appends.
        self.free.setdefault(cls, []).append(block)
        self.released.append(cls)

    def _free_idle(self):
        for cls, blocks in self.free.items():
            while blocks:
                try:
                    blocks.pop()
                except IndexError:
                    break
                self.held -= cls

    def empty_cache(self):
        with self.lock:
            self._count_released()
            self._free_idle()

    def stats(self) -> dict:
        with self.lock:
            self._count_released()
            return {"in_use": self.in_use, "peak": self.peak, "held": self.held,
                    "driver_allocs": self.driver_allocs, "requests": self.requests}


def _driver_alloc(nbytes):
    if SIMULATOR:
        return np.empty(nbytes, np.uint8)
    return cuda.device_array(nbytes, np.uint8)


def _address(block) -> int:
    if SIMULATOR:
        return block.__array_interface__["data"][0]
    return block.__cuda_array_interface__["data"][0]


POOL = Pool()
_cupy_peak = [0]


def empty(shape, dtype):
    """A C-contiguous device array of ``shape`` and ``dtype`` (uninitialized)."""
    shape = tuple(int(s) for s in shape)
    cp = use_cupy()
    if cp is None:
        return POOL.acquire(shape, dtype)
    a = cp.empty(shape, np.dtype(dtype))
    pool = cp.get_default_memory_pool()
    _cupy_peak[0] = max(_cupy_peak[0], pool.used_bytes())
    return cuda.from_cuda_array_interface(a.__cuda_array_interface__, owner=a, sync=False)


def upload(host, shape=None):
    """A device copy of the NumPy array ``host`` (viewed with ``shape``)."""
    a = np.asarray(host)
    if not a.flags.c_contiguous:
        a = a.copy(order="C")      # (np.ascontiguousarray would make a 0-d array 1-d)
    if shape is not None:
        a = a.reshape(shape)
    dev = empty(a.shape, a.dtype)
    if a.size:   # (a bfloat16 device buffer is two raw bytes, 'V2': device.host_view)
        dev.copy_to_device(a if a.dtype == dev.dtype else a.view(dev.dtype))
    return dev


def stats() -> dict:
    """Bytes in use by live arrays and their peak, bytes the pool holds, and
    (own pool only) driver allocations and requests so far."""
    cp = use_cupy()
    if cp is None:
        return dict(POOL.stats(), pool="tracejit")
    pool = cp.get_default_memory_pool()
    return {"in_use": pool.used_bytes(), "peak": max(_cupy_peak[0], pool.used_bytes()),
            "held": pool.total_bytes(), "pool": "cupy"}


def empty_cache():
    """Give the pool's idle blocks back to the driver."""
    cp = use_cupy()
    if cp is None:
        POOL.empty_cache()
    else:
        cp.get_default_memory_pool().free_all_blocks()


def _bytes(n) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def describe() -> str:
    """One line of ``stats()`` for the compile log."""
    s = stats()
    text = (f"device memory ({s['pool']} pool): {_bytes(s['in_use'])} in use, peak "
            f"{_bytes(s['peak'])}, pool holds {_bytes(s['held'])}")
    if "driver_allocs" in s:
        text += f", {s['driver_allocs']} driver allocations for {s['requests']} requests"
    return text
