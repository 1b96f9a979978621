"""Batching (``vmap``) as an IR -> IR transform.

``vmap(f)(xs)`` traces ``f`` once on *one example* (the arguments with
their batch axis removed) into a closed Function ``F``, then interprets
``F`` on the whole batch: each instruction whose operands carry the batch
is replaced by its primitive's batching rule (``prim.batch``, written next
to the primitive's other rules in tracejit/primitives/<family>.py); the
others are bound unchanged, so values that do not depend on the batch
(parameters shared by every example) are computed once. A batched value
always carries the batch as its leading dimension: ``in_axes`` are moved
there on entry and the results' batch moved to ``out_axes`` on exit, so a
rule needs only one flag per operand (see primitives/batch_util.py).

Rules bind primitives, so the batched program is recorded into whatever
trace is active or runs eagerly: ``vmap`` composes with ``jit`` (either
way round), ``grad`` (per-example gradients are ``vmap(grad(loss))``),
``scan`` and itself. Primitives with sub-Functions (cond, while, scan,
custom_vjp_call) batch their sub-Functions with :func:`batch_function`;
a loop carry that becomes batched in the body is batched from the start
(a fixpoint over the carries, as JAX does).
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import ShapeError, api_boundary
from ..ir.core import Function
from ..ir.types import TensorType
from ..primitives import batch_util as bu
from ..primitives.ad_util import aval
from ..primitives.core import PRIMITIVES
from ..tracing import Tracer, trace_function
from ..tree import tree_flatten, tree_unflatten


def batched_type(t: TensorType, size: int) -> TensorType:
    return TensorType((size,) + t.shape, t.dtype, t.weak)


def _constant(ins):
    t = ins.results[0].type
    val = ins.attrs["value"]
    return val if t.weak else np.asarray(val, dtype=t.dtype)


def _typed(v, var):
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
            env[ins.results[0]] = (_constant(ins), False)
            continue
        vals = [env[v][0] for v in ins.operands]
        flags = [env[v][1] for v in ins.operands]
        prim = PRIMITIVES[ins.prim]
        if not any(flags):
            outs, out_flags = prim.bind(*vals, **ins.attrs), [False] * len(ins.results)
        elif prim.batch is None:
            raise NotImplementedError(f"vmap: primitive {ins.prim} has no batching rule")
        else:
            vals = [_typed(v, var) for v, var in zip(vals, ins.operands)]
            outs, out_flags = prim.batch(vals, flags, **ins.attrs)
        for r, o, b in zip(ins.results, outs, out_flags):
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
            outs = [bu.bcast(_typed(o, r), size) if f and not b else o
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


# --- the user API -------------------------------------------------------------------
def _prefix(spec, tree, what):
    """One axis (int or None) per leaf of ``tree``: ``spec`` is an int or
    None for the whole tree, or a container of the tree's structure whose
    entries are specs for the subtrees (a pytree prefix, as in JAX)."""
    if spec is None or isinstance(spec, int):
        return [spec] * len(tree_flatten(tree)[0])
    if isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(spec) != len(tree):
            raise ValueError(f"vmap: {what} has {len(spec)} entries for {len(tree)} values")
        return [a for s, t in zip(spec, tree) for a in _prefix(s, t, what)]
    if isinstance(spec, dict) and isinstance(tree, dict):
        if set(spec) != set(tree):
            raise ValueError(f"vmap: {what} has keys {sorted(spec)}, the value has "
                             f"{sorted(tree)}")
        keys = tree_flatten(tree)[1].aux
        return [a for k in keys for a in _prefix(spec[k], tree[k], what)]
    raise ValueError(f"vmap: {what} must be an int, None, or a tuple/list/dict matching "
                     f"the structure of the values, got {spec!r}")


def _as_value(x):
    if isinstance(x, (Tracer, bool, int, float)):
        return x
    return np.asarray(x)


def vmap(fun, in_axes=0, out_axes=0, axis_size=None):
    """Vectorize ``fun`` over a batch axis of its arguments, as ``jax.vmap``.

    ``in_axes``: the batch axis of each positional argument, an int, None
    (not batched: shared by every example) or, per argument, a pytree prefix
    of it (``in_axes=(None, 0, {"x": 0, "y": None})``). ``out_axes``: where
    the batch goes in the results, likewise (None: the result must not
    depend on the batch). ``axis_size`` is needed only when no argument is
    batched. ``vmap(f)(xs)`` equals ``stack([f(x) for x in xs])``.

    Wrap it in ``jit`` to compile the batched program: eagerly (outside
    ``jit``) the batched operations run one by one on the reference
    interpreter, like any eager tracejit code.
    """
    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            return _vmap(fun, in_axes, out_axes, axis_size, args, kwargs)
    return wrapped


def _vmap(fun, in_axes, out_axes, axis_size, args, kwargs):
    name = getattr(fun, "__name__", "f")
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if isinstance(in_axes, tuple) and len(in_axes) != len(args):
        raise ValueError(f"vmap({name}): in_axes has {len(in_axes)} entries for "
                         f"{len(args)} positional arguments")
    leaves, in_tree = tree_flatten(args)
    axes = _prefix(in_axes, args, "in_axes")
    leaves = [_as_value(x) for x in leaves]
    size = axis_size
    types, moved = [], []
    for i, (x, ax) in enumerate(zip(leaves, axes)):
        t = aval(x)
        if ax is None:
            types.append(t)
            moved.append(x)
            continue
        if not -t.ndim <= ax < max(t.ndim, 1) or t.ndim == 0:
            raise ShapeError(f"vmap({name}): in_axes {ax} is out of range for argument "
                             f"leaf {i} of type {t}")
        ax %= t.ndim
        if size is None:
            size = t.shape[ax]
        elif t.shape[ax] != size:
            raise ShapeError(f"vmap({name}): batch sizes differ: argument leaf {i} of type "
                             f"{t} has {t.shape[ax]} along axis {ax}, expected {size}")
        types.append(TensorType(t.shape[:ax] + t.shape[ax + 1:], t.dtype, t.weak))
        moved.append(bu.moveaxis(x, ax, 0))
    if size is None:
        raise ValueError(f"vmap({name}): no argument is batched (in_axes={in_axes!r}); "
                         f"pass axis_size")
    trees = []

    def flat(*tracers):
        out_leaves, out_tree = tree_flatten(fun(*tree_unflatten(in_tree, tracers), **kwargs))
        trees.append(out_tree)
        return out_leaves
    fn, captured = trace_function(flat, types, name)
    outs, out_b = batch_eval(fn, moved + list(captured),
                             [a is not None for a in axes] + [False] * len(captured))
    out_tree = trees[0]
    o_axes = _prefix(tuple(out_axes) if isinstance(out_axes, list) else out_axes,
                     tree_unflatten(out_tree, outs), "out_axes")
    results = []
    for i, (o, r, b, ax) in enumerate(zip(outs, fn.results, out_b, o_axes)):
        if ax is None:
            if b:
                raise ValueError(f"vmap({name}): out_axes is None for result leaf {i}, "
                                 f"but it depends on the batch")
            results.append(o)
            continue
        o = o if b else bu.bcast(_typed(o, r), size)
        results.append(bu.moveaxis(o, 0, ax))
    return tree_unflatten(out_tree, results)
