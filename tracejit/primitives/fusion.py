"""The kernel instruction made by tracejit/transforms/fusion.py.

fusion(*loads; kind, body)
    One fused kernel: ``body`` is a closed sub-Function taking the values
    the kernel reads (``loads``, the operands) and returning the values it
    writes (the results). ``kind`` is ``'loop'`` or ``'reduction'``, the
    iteration space the backends generate for it. Its meaning is just
    ``body(*loads)``, which is also its reference implementation, so a
    fused Function verifies, prints, parses back and runs on the reference
    backend like any other. It appears only after fusion, so it has no
    differentiation rules (autodiff says so if it meets one).
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tracing import eval_function
from .core import Primitive

KINDS = ("loop", "reduction")


def _fmt(types):
    return "(" + ", ".join(str(t) for t in types) + ")"


def _fusion_rule(*loads, kind, body):
    if kind not in KINDS:
        raise ShapeError(f"fusion: kind must be one of {', '.join(map(repr, KINDS))}, "
                         f"got {kind!r}")
    want = body.in_types
    if len(want) != len(loads) or any(a.shape != b.shape or a.dtype != b.dtype
                                      for a, b in zip(want, loads)):
        raise ShapeError(f"fusion: kernel {body.name} takes {_fmt(want)} but is given "
                         f"{_fmt(loads)}")
    return body.out_types


def _fusion_impl(*loads, kind, body):
    outs = eval_function(body, list(loads))
    return [np.asarray(o, dtype=t.dtype) for o, t in zip(outs, body.out_types)]


fusion = Primitive("fusion", "other", _fusion_rule, _fusion_impl)
