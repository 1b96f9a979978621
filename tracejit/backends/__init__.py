"""Backends compile an IR Function into a callable on a flat list of arrays.

Each backend module exposes ``compile(fn, donate=()) -> callable(list) -> list``.
"""
from __future__ import annotations

import ctypes.util
import functools
import importlib
import importlib.util
import os

BACKENDS = ("reference", "cpu", "cuda")


def get_backend(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f".{name}", __name__)


def available(name: str) -> bool:
    """Whether backend ``name`` can run here (each backend module says; none
    imports Numba or CUDA to say it)."""
    return bool(get_backend(name).available())


@functools.cache
def real_gpu() -> bool:
    """numba-cuda finds a real GPU. Numba's CUDA simulator does not count:
    it runs kernels as Python threads, for tests, and is used only when
    asked for (backend='cuda' or TRACEJIT_BACKEND=cuda). Checked once per
    process, without importing Numba when the simulator is on, numba-cuda
    is missing or there is no CUDA driver library."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return False
    if importlib.util.find_spec("numba_cuda") is None:
        return False
    if not os.environ.get("NUMBA_CUDA_DRIVER") and ctypes.util.find_library("cuda") is None:
        return False
    try:
        from numba import config
        if config.ENABLE_CUDASIM:
            return False
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:   # no driver, a broken install
        return False


def default_backend() -> str:
    """$TRACEJIT_BACKEND, else cuda on a real GPU, else cpu."""
    env = os.environ.get("TRACEJIT_BACKEND")
    if env:
        return env
    if real_gpu():
        return "cuda"
    return "cpu" if available("cpu") else "reference"
