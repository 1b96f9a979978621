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

``policy`` (tracejit/transforms/checkpoint_policies.py, JAX's names) picks
values to save as well: they are residuals too, and the recomputation
takes them instead of computing them again (``dots_saveable`` recomputes
only the elementwise work between the saved matrix products).
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


def checkpoint(fun=None, *, policy=None):
    """``fun``, whose intermediates are recomputed in the backward pass
    instead of stored, except those ``policy`` saves (see the module
    docstring). Usable as ``@checkpoint`` and
    ``@checkpoint(policy=checkpoint_policies.dots_saveable)``."""
    if fun is None:
        return functools.partial(checkpoint, policy=policy)

    @functools.wraps(fun)
    def wrapped(*args):
        if not A.is_differentiating():
            return fun(*args)
        return _bind(fun, args, policy)
    return wrapped


remat = checkpoint


def _saved(fn: Function, policy) -> list:
    """The values of ``fn`` that ``policy`` saves: results of plain
    (unstructured) float instructions it accepts."""
    if policy is None:
        return []
    return [r for ins in fn.body
            if ins.prim != "constant" and ins.primitive.vjp_fwd is None and policy(ins)
            for r in ins.results if r.type.dtype in FLOATS]


def _bind(fun, args, policy):
    name = getattr(fun, "__name__", "f")
    leaves, in_tree = tree_flatten(args)
    fn, captured, out_tree = trace_pytree(fun, [ad.aval(x) for x in leaves], in_tree, name)
    inputs = list(leaves) + list(captured)   # closed-over values are inputs too
    saved = _saved(fn, policy)
    n, n_out, n_saved = len(fn.params), len(fn.results), len(saved)
    fwd = Function(fn.params, fn.body, fn.results + fn.params + saved, name + "_fwd")
    bwd, bwd_captured = trace_function(
        lambda *xs: _recompute_vjp(fn, xs[:n], saved, xs[n:n + n_saved], xs[n + n_saved:]),
        fn.in_types + [v.type for v in saved] + fn.out_types, name + "_bwd")
    (fn, fwd, bwd), consts = ctl.close_over([(fn, [], n), (fwd, [], n),
                                             (bwd, bwd_captured, n + n_saved + n_out)])
    outs = ctl.custom_vjp_call.bind(*consts, *inputs, fun=fn, fwd=fwd, bwd=bwd,
                                    num_consts=len(consts))
    return tree_unflatten(out_tree, outs)


def _recompute_vjp(fn, inputs, saved, saved_values, cts):
    """Cotangents of ``fn``'s inputs: its forward pass re-run from
    ``inputs`` (taking the ``saved`` values as given) and its VJP, in a
    one-iteration scan (the barrier)."""
    floats = [t.dtype in FLOATS for t in fn.in_types]
    n, n_out, n_saved = len(inputs), len(cts), len(saved)
    out_float = [t.dtype in FLOATS for t in fn.out_types]
    carry_types = [t for t, f in zip(fn.in_types, floats) if f]

    def trace_body(saved):
        def body(*args):
            xs, kept = args[:n], args[n:n + len(saved)]
            gs = args[n + len(saved):n + len(saved) + n_out]
            _, tape = A.forward(fn, list(xs), floats, known=dict(zip(saved, kept)))
            in_cts = A.backward(tape, [g if f else None for g, f in zip(gs, out_float)])
            return [ad.instantiate(c, x) for c, x, f in zip(in_cts, xs, floats) if f]
        return ctl.trace_closed(
            body, fn.in_types + [v.type for v in saved] + fn.out_types + carry_types,
            fn.name + "_remat")
    body_fn, extra = trace_body(saved)
    # A saved value the backward pass never reads (a product feeding only a
    # tanh, whose derivative reads its output) is not kept after all.
    read = {v for ins in body_fn.body for v in ins.operands} | set(body_fn.results)
    first = len(extra) + n
    kept = [i for i in range(n_saved) if body_fn.params[first + i] in read]
    if len(kept) < n_saved:
        saved, saved_values = [saved[i] for i in kept], [saved_values[i] for i in kept]
        n_saved = len(saved)
        body_fn, extra = trace_body(saved)
    init = [ad.zeros_like(x) if ad.aval(x).shape else np.zeros((), ad.aval(x).dtype)
            for x, f in zip(inputs, floats) if f]
    res = ctl.scan.bind(*extra, *inputs, *saved_values, *cts, *init, body=body_fn,
                        num_consts=len(extra) + n + n_saved + n_out, num_carry=len(init),
                        length=1, reverse=False)
    it = iter(res)
    return [next(it) if f else np.zeros(t.shape, t.dtype)
            for f, t in zip(floats, fn.in_types)]
