"""The executable of a Function with symbolic dimensions (``jit(f,
input_specs=...)`` with a ``None`` dimension, tracejit/ir/dims.py).

One trace serves every size: each call binds the symbolic dimensions from
its arguments' shapes (checking that arrays sharing a name agree), and runs
the plan of those sizes, built on the first call with them from the traced
Function (tracejit/transforms/specialize.py). Plans of other sizes share
their kernels: generated kernels take their sizes at run time, and the
kernel cache keys them by source, so a new batch size compiles nothing.
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

    def plan(self, sizes: dict):
        key = tuple(sorted(sizes.items()))
        run = self.plans.get(key)
        if run is None:
            run = self.plans[key] = self.build(specialize(self.fn, sizes))
        return run

    def __call__(self, flat):
        sizes = bind_dims(self.fn.in_types, [np.shape(x) for x in flat],
                          lambda i: f"argument #{i}")
        return self.plan(sizes)(flat)
