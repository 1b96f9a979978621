"""The batching interpreter behind ``vmap``: :func:`batch_eval` binds a
Function's instructions on operands of which some carry a leading batch
dimension, calling each primitive's batching rule (``prim.batch``) where
one does; :func:`batch_function` traces the batched version of a Function.

It sits below the primitive families because the structured primitives
(cond, while, scan, fusion, custom_vjp_call, custom_jvp_call) batch their
sub-Functions with it; tracejit/transforms/batching.py explains the method
and builds ``vmap`` on top.
"""
from __future__ import annotations

import numpy as np

from ..core import constant_value, trace_function
from ..ir.core import Function
from ..ir.types import TensorType
from ..naming import name_outputs
from . import batch_util as bu


def batched_type(t: TensorType, size: int) -> TensorType:
    return TensorType((size,) + t.shape, t.dtype, t.weak)


def typed(v, var):
    """A weakly typed Python scalar as an array of its IR dtype (rules
    broadcast their unbatched operands, and must keep the dtype)."""
    if isinstance(v, (bool, int, float)):
        return np.asarray(v, dtype=var.type.dtype)
    return v


def batch_eval(fn: Function, args, batched):
    """Bind ``fn`` on ``args``, of which those flagged in ``batched`` carry a
    leading batch dimension; returns ``(outs, out_batched)``."""
    env = {p: (a, bool(b)) for p, a, b in zip(fn.params, args, batched)}
    for ins in fn.body:
        if ins.prim == "constant":
            env[ins.results[0]] = (constant_value(ins), False)
            continue
        vals = [env[v][0] for v in ins.operands]
        flags = [env[v][1] for v in ins.operands]
        prim = ins.primitive
        if not any(flags):
            outs, out_flags = prim.bind(*vals, **ins.attrs), [False] * len(ins.results)
        elif prim.batch is None:
            raise NotImplementedError(f"vmap: primitive {ins.prim} has no batching rule")
        else:
            vals = [typed(v, var) for v, var in zip(vals, ins.operands)]
            outs, out_flags = prim.batch(vals, flags, **ins.attrs)
        for r, o, b in zip(ins.results, outs, out_flags):
            if r.name:   # the batched value keeps the name of the value it batches
                name_outputs([o], r.name, vals)
            env[r] = (o, bool(b))
    return [env[v][0] for v in fn.results], [env[v][1] for v in fn.results]


def batch_function(fn: Function, batched_in, size: int, force_out=None, name=None):
    """Trace the batched version of ``fn``. Returns ``(Function, captured,
    out_batched)`` (as trace_function: captured values are trailing params;
    see primitives/control.close_over). Results flagged in ``force_out``
    are batched even where they do not depend on the batch."""
    in_types = [batched_type(t, size) if b else t for t, b in zip(fn.in_types, batched_in)]
    flags = []

    def run(*args):
        outs, out_b = batch_eval(fn, args, batched_in)
        if force_out is not None:
            outs = [bu.bcast(typed(o, r), size) if f and not b else o
                    for o, r, b, f in zip(outs, fn.results, out_b, force_out)]
            out_b = [b or f for b, f in zip(out_b, force_out)]
        flags.append(out_b)
        return outs
    g, captured = trace_function(run, in_types, name or fn.name + "_vmap")
    return g, captured, flags[0]


def carry_fixpoint(fn: Function, flags, carry_in, carry_out):
    """Which loop carries are batched: those batched on entry, and those the
    body makes batched, until nothing changes. ``carry_in`` are the
    positions of the carries among ``fn``'s params, ``carry_out`` among its
    results. Returns the full input flags."""
    flags = list(flags)
    while True:
        out = batch_function(fn, flags, 1)[2]
        changed = False
        for i, o in zip(carry_in, carry_out):
            if out[o] and not flags[i]:
                flags[i] = changed = True
        if not changed:
            return flags
