"""Devices, device residency, and the device-resident :class:`Array`.

``devices()`` lists where arrays can live: ``"cpu"`` always, ``"cuda:0"``
when numba-cuda finds a GPU (or runs its simulator). ``device_put(x,
"cuda")`` copies the arrays of a pytree to the GPU as
:class:`tracejit.Array` s, which jitted functions take without a copy and
(on the cuda backend) return; ``device_put(x, "cpu")`` brings them back as
NumPy arrays.

An :class:`Array` wraps a Numba device array, so the results of a jitted
function (updated parameters, optimizer state) stay on the GPU and the next
call takes them without a copy. NumPy sees its values through
``__array__`` (a copy to the host). The wrapped array may have shape (1,)
where the Array is 0-d: kernels take rank-0 values that way.

This module imports Numba only when a GPU is used: ``import tracejit``
stays cheap, and ``isinstance(x, Array)`` works without CUDA. It sits below
tracing (which takes Arrays as arguments), so it imports no other layer.
"""
from __future__ import annotations

import numpy as np

from .tree import tree_map


def host_view(a: np.ndarray) -> np.ndarray:
    """A host copy of a device array with its dtype: device buffers describe
    bfloat16 as two raw bytes ('V2'), the one such dtype tracejit has."""
    if a.dtype.kind == "V" and a.dtype.itemsize == 2:
        import ml_dtypes   # slow to import: only here (tracejit/ir/dtypes.py)
        return a.view(ml_dtypes.bfloat16)
    return a


def cuda_available() -> bool:
    """numba-cuda is installed and a GPU (or the simulator) is usable; never
    raises."""
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:   # no numba-cuda, no driver, a broken install
        return False


class Array:
    """A device array with a shape and dtype (see the module docstring)."""

    __slots__ = ("_dev", "_shape", "__weakref__")
    __array_priority__ = 100

    def __init__(self, dev, shape=None):
        self._dev = dev
        self._shape = tuple(dev.shape) if shape is None else tuple(shape)

    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        d = np.dtype(self._dev.dtype)
        return host_view(np.empty(0, d)).dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def device(self) -> str:
        return "cuda:0"

    def device_array(self, shape=None):
        """The Numba device array, viewed with ``shape`` (default: its own)."""
        shape = self._shape if shape is None else tuple(shape)
        return self._dev if tuple(self._dev.shape) == shape else self._dev.reshape(shape)

    def copy_to_host(self) -> np.ndarray:
        return host_view(self._dev.copy_to_host()).reshape(self._shape)

    to_numpy = copy_to_host

    def __array__(self, dtype=None, copy=None):
        a = self.copy_to_host()
        return a if dtype is None else a.astype(dtype, copy=False)

    def block_until_ready(self):
        """Wait for the kernels computing this array (Numba launches on the
        default stream, so a device synchronization)."""
        from numba import cuda
        cuda.synchronize()
        return self

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d array")
        return self._shape[0]

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __bool__(self):
        return bool(self._scalar())

    def _scalar(self):
        if self.size != 1:
            raise TypeError(f"only arrays of one element convert to Python scalars, "
                            f"not shape {self._shape}")
        return self.copy_to_host().reshape(())[()]

    def __repr__(self):
        return f"Array({np.array2string(self.copy_to_host(), separator=', ')}, " \
               f"dtype={self.dtype.name}, device={self.device!r})"


def devices() -> list[str]:
    """Names of the available devices."""
    return ["cpu"] + (["cuda:0"] if cuda_available() else [])


def _canonical(device) -> str:
    name = str(device)
    if name in ("cpu",):
        return "cpu"
    if name in ("cuda", "cuda:0", "gpu"):
        return "cuda"
    raise ValueError(f"unknown device {device!r}; choose one of {', '.join(devices())}")


def _put_cuda(x):
    from numba import cuda
    if isinstance(x, Array):
        return x
    a = np.asarray(x)
    if a.dtype.byteorder in ("<", ">"):   # kernels read raw bytes: native order only
        a = a.astype(a.dtype.newbyteorder("="))
    shape = a.shape
    dev = cuda.to_device(np.ascontiguousarray(a).reshape(shape if shape else (1,)))
    return Array(dev, shape)


def device_put(x, device="cuda"):
    """``x`` (a pytree of arrays and scalars) with every leaf on ``device``:
    ``Array`` s on "cuda", NumPy arrays on "cpu"."""
    if _canonical(device) == "cpu":
        return tree_map(np.asarray, x)
    if not cuda_available():
        raise RuntimeError("device_put(..., 'cuda'): no CUDA device (numba-cuda finds no GPU; "
                           "NUMBA_ENABLE_CUDASIM=1 runs Numba's simulator)")
    return tree_map(_put_cuda, x)
