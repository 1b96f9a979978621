"""Devices and device residency.

``devices()`` lists where arrays can live: ``"cpu"`` always, ``"cuda:0"``
when numba-cuda finds a GPU (or runs its simulator). ``device_put(x,
"cuda")`` copies the arrays of a pytree to the GPU as
:class:`tracejit.Array` s, which jitted functions take without a copy and
(on the cuda backend) return; ``device_put(x, "cpu")`` brings them back as
NumPy arrays.
"""
from __future__ import annotations

import numpy as np

from .backends.cuda.array import Array
from .tree import tree_map


def _cuda_available() -> bool:
    from .backends.cuda import available
    return available()


def devices() -> list[str]:
    """Names of the available devices."""
    return ["cpu"] + (["cuda:0"] if _cuda_available() else [])


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
    shape = a.shape
    dev = cuda.to_device(np.ascontiguousarray(a).reshape(shape if shape else (1,)))
    return Array(dev, shape)


def device_put(x, device="cuda"):
    """``x`` (a pytree of arrays and scalars) with every leaf on ``device``:
    ``Array`` s on "cuda", NumPy arrays on "cpu"."""
    if _canonical(device) == "cpu":
        return tree_map(np.asarray, x)
    if not _cuda_available():
        raise RuntimeError("device_put(..., 'cuda'): no CUDA device (numba-cuda finds no GPU; "
                           "NUMBA_ENABLE_CUDASIM=1 runs Numba's simulator)")
    return tree_map(_put_cuda, x)
