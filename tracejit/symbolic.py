"""The executable of a Function with symbolic dimensions (``jit(f,
input_specs=...)`` with a ``None`` dimension, tracejit/ir/dims.py).

One trace serves every size: each call binds the symbolic dimensions from
its arguments' shapes (checking that arrays sharing a name agree), and runs
the plan of those sizes, built on the first call with them from the traced
Function (tracejit/transforms/specialize.py). Plans of other sizes share
their kernels: generated kernels take their sizes at run time, a mean's
count is passed to the plan as an argument (not baked into a kernel), and
the kernel cache keys kernels by source, so a new batch size compiles no
kernel; it only builds a plan (tens of milliseconds). The plans of the
``MAX_PLANS`` most recently used sizes are kept (each holds its buffers),
so a stream of ever-new sizes does not grow memory without bound.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .ir.core import Function
from .ir.dims import bind_dims
from .transforms.specialize import specialize


#: Plans kept per traced Function, least recently used dropped first.
MAX_PLANS = 32


class SymbolicExecutable:
    """``run(flat_args)`` for a Function whose parameters have symbolic
    dimensions; ``build(concrete_function)`` makes the plan of one size."""

    def __init__(self, fn: Function, build, name: str = "f"):
        self.fn = fn
        self.build = build
        self.name = name
        # sorted ((name, size), ...) -> (executable, the counts it takes: size_params)
        self.entries: OrderedDict = OrderedDict()

    @property
    def plans(self) -> dict:
        """The executables kept, by sizes."""
        return {key: run for key, (run, _) in self.entries.items()}

    def plan(self, sizes: dict):
        """The executable for these sizes, and the extra arguments it takes."""
        key = tuple(sorted(sizes.items()))
        entry = self.entries.get(key)
        if entry is None:
            fn, size_args = specialize(self.fn, sizes, size_params=True)
            entry = self.entries[key] = (self.build(fn), size_args)
            while len(self.entries) > MAX_PLANS:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        return entry

    def __call__(self, flat):
        sizes = bind_dims(self.fn.in_types, [np.shape(x) for x in flat],
                          lambda i: f"argument #{i}")
        run, extra = self.plan(sizes)
        return run(list(flat) + extra)
