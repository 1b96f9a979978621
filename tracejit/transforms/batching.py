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
custom_vjp_call) batch their sub-Functions with ``batch_function``
(tracejit/primitives/batch_interpreter.py);
a loop carry that becomes batched in the body is batched from the start
(a fixpoint over the carries, as JAX does).
"""
from __future__ import annotations

import functools

import numpy as np

from ..core import Tracer, trace_pytree
from ..errors import ShapeError, api_boundary
from ..ir.types import TensorType
from ..primitives import batch_util as bu
from ..primitives.ad_util import aval
from ..primitives.batch_interpreter import batch_eval, typed
from ..tree import tree_flatten, tree_unflatten


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
    fn, captured, out_tree = trace_pytree(lambda *a: fun(*a, **kwargs), types, in_tree, name)
    outs, out_b = batch_eval(fn, moved + list(captured),
                             [a is not None for a in axes] + [False] * len(captured))
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
        o = o if b else bu.bcast(typed(o, r), size)
        results.append(bu.moveaxis(o, 0, ax))
    return tree_unflatten(out_tree, results)
