"""The kernel instruction made by tracejit/transforms/fusion.py.

fusion(*loads; kind, body)
    One fused kernel: ``body`` is a closed sub-Function taking the values
    the kernel reads (``loads``, the operands) and returning the values it
    writes (the results). ``kind`` is ``'loop'`` or ``'reduction'``, the
    iteration space the backends generate for it. Its meaning is just
    ``body(*loads)``, which is also its reference implementation, so a
    fused Function verifies, prints, parses back and runs on the reference
    backend like any other. It appears only after fusion; should it be
    differentiated, its rules are those of the body, inlined.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, eval_function
from ..errors import ShapeError
from . import ad_interpreter as A
from . import batch_interpreter as B

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


def _fusion_vjp_fwd(primals, active, *, kind, body):
    return A.forward(body, primals, active)   # (outs, the body's tape)


def _fusion_vjp(cts, tape, outs, *, kind, body):
    return A.backward(tape, cts)


def _fusion_jvp(primals, tangents, outs, *, kind, body):
    return A.jvp_eval(body, primals, tangents)[1]


fusion.vjp_fwd = _fusion_vjp_fwd
fusion.def_vjp(_fusion_vjp)
fusion.def_jvp(_fusion_jvp)


# vmap of a kernel instruction: its body's instructions, batched and inlined
fusion.def_batch(lambda vals, batched, *, kind, body: B.batch_eval(body, vals, batched))
