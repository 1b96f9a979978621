"""The CUDA backend: fused kernels compiled by numba-cuda, library calls for
matrix products, convolutions and scatters.

``compile(fn, donate)`` fuses ``fn`` (transforms/fusion.py), generates one
CUDA kernel per fusion instruction (codegen.py, snippets.py), compiles each
through the on-disk kernel cache (cache.py) and returns the plan that runs
them (plan.py) on device arrays. The compiled function takes NumPy arrays
or device-resident :class:`~tracejit.device.Array` s (NumPy
ones are uploaded) and returns ``Array`` s, so a training loop's parameters
stay on the GPU. ``TRACEJIT_LOG=fusion`` prints the fused IR, ``source``
the generated kernels, ``compile`` the time of each stage, each kernel's
compile time and cache hit or miss, and the first call's host time per
step; ``fallback`` the instructions run on the host.

Under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1) the same code runs
as Python threads, for tests; it is used only when asked for (see
tracejit.backends.default_backend).
"""
from __future__ import annotations

import time

import numpy as np

from ... import log
from ...device import Array, cuda_available
from ...ir.core import Function
from ...ir.primitive import PRIMITIVES
from ...transforms import fusion

__all__ = ["available", "compile", "lowering", "Array", "simulator"]


def available() -> bool:
    """numba-cuda is installed and a GPU (or the simulator) is usable; never
    raises."""
    return cuda_available()


def simulator() -> bool:
    """Numba's CUDA simulator is on (fixed when numba.cuda is imported)."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def lowering(prim: str) -> str:
    """How this backend runs a primitive."""
    from .plan import library_lowerings
    if PRIMITIVES[prim].fusible or prim == "fusion":
        return "fused kernel"
    if prim in ("cond", "while", "scan"):
        return "sub-plans"
    if prim in library_lowerings():
        return "library"
    return "NumPy impl on the host (fallback)"


def _to_device(x, param):
    """A parameter's device array: an Array's own (viewed in kernel shape),
    or a NumPy value uploaded."""
    from . import allocator
    from .codegen import kernel_shape
    shape = kernel_shape(param.shape)
    if isinstance(x, Array):
        return x.device_array(shape)
    return allocator.upload(np.asarray(x, dtype=param.dtype), shape)


def compile(fn: Function, donate=()):
    from .plan import PlanBuilder

    if not available():
        raise RuntimeError("the cuda backend needs numba-cuda and a CUDA GPU (or "
                           "NUMBA_ENABLE_CUDASIM=1 for Numba's simulator); "
                           "install tracejit[cuda] or use backend='cpu'")
    start = time.perf_counter()
    fused = fusion.fuse(fn)   # through the module: bench_compile times it
    t_fuse = time.perf_counter() - start
    log.log("fusion", f"{fn.name}: {len(fn.body)} instructions -> {fusion.kernel_count(fused)} "
                      f"kernels, {len(fused.body)} steps\n{fused}")
    start = time.perf_counter()
    builder = PlanBuilder(fused, donate, fn.name)
    plan = builder.build()
    t_plan = time.perf_counter() - start
    tm = builder.timing
    log.log("compile", f"{fn.name} (cuda): fuse {1e3 * t_fuse:.1f} ms, codegen "
                       f"{1e3 * tm['codegen']:.1f} ms, compile/load kernels "
                       f"{1e3 * tm['compile']:.1f} ms, plan "
                       f"{1e3 * (t_plan - tm['codegen'] - tm['compile']):.1f} ms, "
                       f"intermediates {builder.device_bytes / 2**20:.1f} MiB")
    params, results = fn.params, fn.results

    def run(args):
        outs = plan([_to_device(x, p) for x, p in zip(args, params)])
        return [Array(o, v.shape) for o, v in zip(outs, results)]
    return run
