"""The CPU backend: fused kernels compiled to native code, BLAS for matrix products.

``compile(fn, donate)`` fuses ``fn`` (transforms/fusion.py), generates one
kernel per fusion instruction (codegen.py, from the snippet table in
snippets.py), loads each through the on-disk kernel cache (cache.py:
translated to LLVM IR by irgen.py, or compiled by Numba, compiler.py, where
irgen.py does not cover the kernel) and returns the plan that runs them
(plan.py). ``TRACEJIT_LOG=fusion`` prints
the fused IR, ``source`` the generated kernels and plans, ``compile`` the
time of each stage and each kernel's cache hit or miss.
"""
from __future__ import annotations

import functools
import importlib.util
import time

from ... import log
from ...ir.core import Function
from ...ir.primitive import PRIMITIVES
from ...transforms import fusion
from . import worker
from .cache import cache_dir, stats
from .plan import PlanBuilder

__all__ = ["available", "compile", "lowering", "stats", "cache_dir"]


@functools.cache
def available() -> bool:
    """Numba and llvmlite are installed (neither is imported: a process whose
    kernels are all in the disk cache never imports Numba)."""
    return all(importlib.util.find_spec(m) is not None for m in ("numba", "llvmlite"))


def lowering(prim: str) -> str:
    """How this backend runs a primitive (the test of the fallback list
    enumerates every primitive with this)."""
    if PRIMITIVES[prim].fusible or prim == "fusion":   # fusion: a kernel the plan compiles
        return "fused kernel"
    return {"dot_general": "BLAS", "conv_general": "im2col kernel + BLAS",
            "scatter_add": "scatter kernel", "select_and_scatter_add": "pooling-gradient kernel",
            "cond": "sub-plans", "while": "sub-plans", "scan": "sub-plans",
            }.get(prim, "NumPy impl (fallback)")


def compile(fn: Function, donate=(), background=False):
    """The plan running ``fn``; ``background=True`` (a tiered function's
    build, tracejit/tiered.py) compiles its kernels in a worker process
    (worker.py), so that the caller's thread keeps the GIL."""
    token = worker.IN_WORKER.set(True) if background else None
    try:
        return _compile(fn, donate)
    finally:
        if token is not None:
            worker.IN_WORKER.reset(token)


def _compile(fn: Function, donate):
    start = time.perf_counter()
    fused = fusion.fuse(fn)   # through the module: bench_compile times it
    t_fuse = time.perf_counter() - start
    log.log("fusion", f"{fn.name}: {len(fn.body)} instructions -> {fusion.kernel_count(fused)} "
                      f"kernels, {len(fused.body)} steps\n{fused}")
    start = time.perf_counter()
    builder = PlanBuilder(fused, donate, fn.name)
    run = builder.build()
    t_plan = time.perf_counter() - start
    tm = builder.timing
    t_rest = t_plan - tm["codegen"] - tm["kernels"]
    log.log("compile", f"{fn.name}: fuse {1e3 * t_fuse:.1f} ms, codegen {1e3 * tm['codegen']:.1f} ms, "
                       f"compile/load kernels {1e3 * tm['kernels']:.1f} ms, plan {1e3 * t_rest:.1f} ms, "
                       f"arena {builder.arena_bytes / 2**20:.1f} MiB")
    return run
