"""The executable of a Function with symbolic dimensions (``jit(f,
input_specs=...)`` with a ``None`` dimension, tracejit/ir/dims.py).

One trace serves every size: each call binds the symbolic dimensions from
its arguments' shapes (checking that arrays sharing a name agree), and runs
the plan of those sizes, built on the first call with them from the traced
Function (tracejit/transforms/specialize.py). Plans of other sizes share
their kernels: generated kernels take their sizes at run time, a mean's
count is passed to the plan as an argument (not baked into a kernel), and
the kernel cache keys kernels by source, so a new batch size compiles no
kernel; it only builds a plan (tens of milliseconds).
"""
from __future__ import annotations

import numpy as np

from .ir.core import Function
from .ir.dims import bind_dims
from .transforms.specialize import specialize


class SymbolicExecutable:
    """``run(flat_args)`` for a Function whose parameters have symbolic
    dimensions; ``build(concrete_function)`` makes the plan of one size."""

    def __init__(self, fn: Function, build, name: str = "f"):
        self.fn = fn
        self.build = build
        self.name = name
        self.plans = {}   # sorted ((name, size), ...) -> executable
        self.size_args = {}   # the same key -> the counts the plan takes (size_params)

    def plan(self, sizes: dict):
        """The executable for these sizes, and the extra arguments it takes."""
        key = tuple(sorted(sizes.items()))
        run = self.plans.get(key)
        if run is None:
            fn, self.size_args[key] = specialize(self.fn, sizes, size_params=True)
            run = self.plans[key] = self.build(fn)
        return run, self.size_args[key]

    def __call__(self, flat):
        sizes = bind_dims(self.fn.in_types, [np.shape(x) for x in flat],
                          lambda i: f"argument #{i}")
        run, extra = self.plan(sizes)
        return run(list(flat) + extra)
