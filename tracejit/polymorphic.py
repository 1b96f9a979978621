"""A jitted function traced once for every batch size (the training step of
``tracejit.train``, the augmentations of ``tracejit.data.augment``).

``BatchPolymorphicStep(step, data_argnums=(1, 2))`` jits ``step`` with a
symbolic batch dimension (``None``, tracejit/ir/dims.py) on the leading axis
of its data arguments, so the last, smaller batch of an epoch runs the same
trace as the full ones (``trace_count`` stays 1). The specs come from the
first call's arguments. A model whose operations need a concrete batch size
(a reshape that mixes the batch with other axes, ``int(x.shape[0])``) cannot
be traced that way: the step then falls back to one trace per batch shape,
as a plain ``jit``, and says why under ``TRACEJIT_LOG=retrace``.
"""
from __future__ import annotations

import numpy as np

from . import log
from .api import jit
from .errors import SymbolicDimensionError
from .ir.types import DTYPES
from .specs import ShapeDtypeStruct
from .tree import tree_map


def batch_spec(x):
    """``x``'s shape and dtype with a symbolic (``None``) leading axis; None
    (the shape of the call) for a scalar or a dtype tracejit does not take,
    which jit then reports as it always does."""
    x = np.asarray(x)
    if x.ndim == 0 or x.dtype.name not in DTYPES:
        return None
    return ShapeDtypeStruct((None,) + x.shape[1:], x.dtype)


class BatchPolymorphicStep:
    """``step`` jitted with a symbolic batch axis on ``data_argnums``
    (positional arguments: arrays or pytrees of arrays); other keywords go
    to :func:`tracejit.jit`."""

    def __init__(self, step, data_argnums, **jit_kwargs):
        self.step = step
        self.data_argnums = tuple(data_argnums)
        self.jit_kwargs = jit_kwargs
        self.jitted = None
        self.symbolic = True   # False once it fell back to concrete shapes

    @property
    def trace_count(self) -> int:
        return 0 if self.jitted is None else self.jitted.trace_count

    def __call__(self, *args, **kwargs):
        if self.jitted is None:
            specs = [tree_map(batch_spec, a) if i in self.data_argnums else None
                     for i, a in enumerate(args)]
            self.jitted = jit(self.step, input_specs=specs, **self.jit_kwargs)
            try:
                return self.jitted(*args, **kwargs)
            except SymbolicDimensionError as e:
                log.log("retrace", f"{getattr(self.step, '__name__', 'step')}: traced per batch "
                                   f"size, since a symbolic batch size does not work here: "
                                   f"{e.detail}")
                self.symbolic = False
                failed = self.jitted.trace_count
                self.jitted = jit(self.step, **self.jit_kwargs)
                self.jitted.trace_count = failed
        return self.jitted(*args, **kwargs)
