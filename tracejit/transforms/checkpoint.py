"""``checkpoint`` (alias ``remat``): gradient checkpointing.

Reverse mode normally keeps every intermediate of the forward pass that the
backward pass reads (an MLP keeps each layer's activations). A function
wrapped in ``checkpoint`` keeps only its *inputs*: its backward pass runs
its forward pass again from them and differentiates that, trading one
more forward evaluation for the memory of its intermediates::

    block = tracejit.checkpoint(lambda h, w: tnp.tanh(h @ w) * 2)
    def loss(ws, x):
        for w in ws:
            x = block(x, w)
        return tnp.sum(x)

How: while a function is being differentiated, the wrapped function is
recorded as a ``custom_vjp_call`` (the marker of tracejit.custom_vjp)
whose residuals are its inputs, and whose ``bwd`` re-runs the forward
pass and its VJP inside a one-iteration ``scan``. The ``scan`` is the
optimization barrier: its body is a closed sub-Function, so common
subexpression elimination cannot merge the recomputation with the
original forward pass (which would bring the stored intermediates back).
Values the function closes over are inputs too, and get their cotangents.
Outside differentiation ``checkpoint(f)`` is just ``f``; forward mode
differentiates ``f`` directly.
"""
from __future__ import annotations

import functools

import numpy as np

from ..core import trace_function, trace_pytree
from ..ir.core import Function
from ..ir.types import FLOATS
from ..primitives import ad_util as ad
from ..primitives import ad_interpreter as A
from ..primitives import control as ctl
from ..tree import tree_flatten, tree_unflatten


def checkpoint(fun):
    """``fun``, whose intermediates are recomputed in the backward pass
    instead of stored (see the module docstring)."""
    @functools.wraps(fun)
    def wrapped(*args):
        if not A.is_differentiating():
            return fun(*args)
        return _bind(fun, args)
    return wrapped


remat = checkpoint


def _bind(fun, args):
    name = getattr(fun, "__name__", "f")
    leaves, in_tree = tree_flatten(args)
    fn, captured, out_tree = trace_pytree(fun, [ad.aval(x) for x in leaves], in_tree, name)
    inputs = list(leaves) + list(captured)   # closed-over values are inputs too
    n, n_out = len(fn.params), len(fn.results)
    fwd = Function(fn.params, fn.body, fn.results + fn.params, name + "_fwd")
    bwd, bwd_captured = trace_function(lambda *xs: _recompute_vjp(fn, xs[:n], xs[n:]),
                                       fn.in_types + fn.out_types, name + "_bwd")
    (fn, fwd, bwd), consts = ctl.close_over([(fn, [], n), (fwd, [], n),
                                             (bwd, bwd_captured, n + n_out)])
    outs = ctl.custom_vjp_call.bind(*consts, *inputs, fun=fn, fwd=fwd, bwd=bwd,
                                    num_consts=len(consts))
    return tree_unflatten(out_tree, outs)


def _recompute_vjp(fn, inputs, cts):
    """Cotangents of ``fn``'s inputs: its forward pass re-run from
    ``inputs`` and its VJP, in a one-iteration scan (the barrier)."""
    floats = [t.dtype in FLOATS for t in fn.in_types]
    n, n_out = len(inputs), len(cts)
    out_float = [t.dtype in FLOATS for t in fn.out_types]

    def body(*args):
        xs, gs = args[:n], args[n:n + n_out]
        _, tape = A.forward(fn, list(xs), floats)
        in_cts = A.backward(tape, [g if f else None for g, f in zip(gs, out_float)])
        return [ad.instantiate(c, x) for c, x, f in zip(in_cts, xs, floats) if f]
    carry_types = [t for t, f in zip(fn.in_types, floats) if f]
    body_fn, extra = ctl.trace_closed(body, fn.in_types + fn.out_types + carry_types,
                                      fn.name + "_remat")
    init = [ad.zeros_like(x) if ad.aval(x).shape else np.zeros((), ad.aval(x).dtype)
            for x, f in zip(inputs, floats) if f]
    res = ctl.scan.bind(*extra, *inputs, *cts, *init, body=body_fn,
                        num_consts=len(extra) + n + n_out, num_carry=len(init), length=1,
                        reverse=False)
    it = iter(res)
    return [next(it) if f else np.zeros(t.shape, t.dtype)
            for f, t in zip(floats, fn.in_types)]
