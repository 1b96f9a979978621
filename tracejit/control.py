"""Structured control flow: ``cond``, ``switch``, ``while_loop``,
``fori_loop``, ``scan``, ``map_``, and ``subfunction`` (a call kept as one
instruction).

Each traces its Python functions once into sub-Functions of one IR
instruction (no unrolling), so a loop of a million steps is one
instruction; values the functions close over become explicit operands.
Carries, operands and scanned inputs are pytrees. A carry must keep its
shape and dtype; a weakly typed initial value (a Python scalar) takes the
dtype the body gives it, as in JAX. Outside a trace they run eagerly.
The primitives' semantics are documented in tracejit/primitives/control.py.
"""
from __future__ import annotations

import functools

import numpy as np

from . import numpy as tnp
from .core import current_trace, leaf_types, trace_flat, trace_pytree
from .errors import DTypeError, ShapeError
from .ir.core import Instr, Var
from .ir.types import TensorType
from .naming import name_outputs, name_scope
from .primitives import control as ctl
from .primitives.ad_util import aval
from .tree import tree_flatten, tree_unflatten


def _coerce(fn, i, t: TensorType):
    """Make result ``i`` of ``fn`` a value of dtype ``t.dtype`` (it is weak)."""
    r = fn.results[i]
    v = Var(TensorType(r.type.shape, t.dtype, t.weak))
    fn.body.append(Instr("convert", [r], {"dtype": t.dtype, "weak": t.weak}, [v]))
    fn.results[i] = v


def _unify(fn, i, want: TensorType, what):
    """Result ``i`` must have ``want``'s shape and dtype; weak results are
    converted. Returns False where ``want`` itself is weak and should follow
    the result's dtype instead (the caller retraces)."""
    got = fn.results[i].type
    if got.shape != want.shape:
        raise ShapeError(f"{what} has shape {got.shape}, expected {want.shape}")
    if got.dtype == want.dtype:
        return True
    if want.weak:
        return False
    if got.weak:
        _coerce(fn, i, want)
        return True
    raise DTypeError(f"{what} has dtype {got.dtype}, expected {want.dtype}")


def _trace_loop_body(flat, types, extra_types, name):
    """Trace a loop body (flat, as for trace_flat) whose first results are the
    carry, letting weakly typed carries follow the dtype the body gives
    them (one retrace at most). Returns (fn, captured, meta, carry types)."""
    for _ in range(2):
        fn, captured, meta = trace_flat(flat, types + extra_types, name)
        ok = [_unify(fn, i, t, f"{name}: carry leaf {i}") for i, t in enumerate(types)]
        if all(ok):
            return fn, captured, meta, types
        types = [t if k else fn.results[i].type for i, (t, k) in enumerate(zip(types, ok))]
    raise DTypeError(f"{name}: the carry's dtypes do not settle")


def _cast(leaves, types):
    return [x if aval(x).dtype == t.dtype else tnp.astype(x, t.dtype)
            for x, t in zip(leaves, types)]


def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``; both
    are traced, and must return pytrees of the same structure and types."""
    pred = tnp.asarray(pred)
    if aval(pred).shape != ():
        raise ShapeError(f"cond: the predicate must be a scalar, got {aval(pred)}")
    if aval(pred).dtype != "bool":
        pred = tnp.not_equal(pred, 0)
    leaves, tree = tree_flatten(operands)
    types = leaf_types(leaves)
    t_fn, t_cap, t_tree = trace_pytree(true_fun, types, tree, "true_fun")
    f_fn, f_cap, f_tree = trace_pytree(false_fun, types, tree, "false_fun")
    if t_tree != f_tree:
        raise ShapeError(f"cond: the branches return different structures: true_fun "
                         f"{t_tree}, false_fun {f_tree}")
    for i, (a, b) in enumerate(zip(t_fn.results, f_fn.results)):
        what = f"cond: output leaf {i} of the branches"
        if a.type.weak and not b.type.weak:
            _unify(t_fn, i, b.type, what)
        else:
            _unify(f_fn, i, a.type, what)
    (t_fn, f_fn), consts = ctl.close_over([(t_fn, t_cap, len(leaves)), (f_fn, f_cap, len(leaves))])
    outs = ctl.cond.bind(pred, *consts, *leaves, true_fun=t_fn, false_fun=f_fn)
    return tree_unflatten(t_tree, outs)


def while_loop(cond_fun, body_fun, init_val):
    """Repeat ``val = body_fun(val)`` while ``cond_fun(val)``; returns ``val``.
    Not reverse-differentiable (use scan or fori_loop with static bounds)."""
    leaves, tree = tree_flatten(init_val)

    def body_flat(*carry):
        out_leaves, out_tree = tree_flatten(body_fun(tree_unflatten(tree, carry)))
        if out_tree != tree:
            raise ShapeError(f"while_loop: body_fun returns {out_tree}, but the carry is {tree}")
        return out_leaves, None
    body, b_cap, _, types = _trace_loop_body(body_flat, leaf_types(leaves), [],
                                             "while_loop body_fun")
    cond_f, c_cap, _ = trace_flat(lambda *c: tree_flatten(cond_fun(tree_unflatten(tree, c))),
                                  types, "cond_fun")
    if len(cond_f.results) != 1 or cond_f.results[0].type.shape != ():
        raise ShapeError(f"while_loop: cond_fun must return a scalar, returns "
                         f"{[str(r.type) for r in cond_f.results]}")
    if cond_f.results[0].type.dtype != "bool":
        raise DTypeError(f"while_loop: cond_fun must return a bool, returns "
                         f"{cond_f.results[0].type}")
    (cond_f, body), consts = ctl.close_over([(cond_f, c_cap, len(leaves)),
                                              (body, b_cap, len(leaves))])
    outs = ctl.while_.bind(*consts, *_cast(leaves, types), cond_fun=cond_f, body=body,
                            num_consts=len(consts))
    return tree_unflatten(tree, outs)


def _is_static_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def fori_loop(lower, upper, body_fun, init_val):
    """``val = body_fun(i, val)`` for i in range(lower, upper). With Python
    int bounds this is a scan (reverse-differentiable); with traced bounds
    a while_loop. ``i`` is a weakly typed int (it does not widen floats)."""
    if _is_static_int(lower) and _is_static_int(upper):
        def step(carry, _):
            i, val = carry
            return (i + 1, body_fun(i, val)), None
        (_, val), _ = scan(step, (int(lower), init_val), None, length=max(int(upper) - int(lower), 0))
        return val
    _, val = while_loop(lambda c: c[0] < upper,
                        lambda c: (c[0] + 1, body_fun(c[0], c[1])), (lower, init_val))
    return val


def scan(f, init, xs=None, length=None, reverse=False):
    """``f(carry, x) -> (carry, y)`` over the leading dim of ``xs``; returns
    ``(final_carry, stacked_ys)``. ``xs`` may be None (give ``length``); ``y``
    may be any pytree, None included. With ``reverse`` the iterations run
    from the end, and ys keep the positions of their xs."""
    init_leaves, init_tree = tree_flatten(init)
    xs_leaves, xs_tree = tree_flatten(xs)
    xs_leaves = [tnp.asarray(x) for x in xs_leaves]
    lengths = set()
    for x in xs_leaves:
        if not aval(x).shape:
            raise ShapeError(f"scan: scanned inputs need a leading dim, got {aval(x)}")
        lengths.add(aval(x).shape[0])
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        raise ShapeError("scan: " + (f"scanned inputs and length disagree: {sorted(lengths)}"
                                     if lengths else "give length when xs is None"))
    (n,) = lengths
    x_types = [TensorType(t.shape[1:], t.dtype) for t in map(aval, xs_leaves)]
    k = len(init_leaves)

    def body(*args):
        out = f(tree_unflatten(init_tree, args[:k]), tree_unflatten(xs_tree, args[k:]))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ShapeError(f"scan: f must return a pair (carry, y), got {type(out).__name__}")
        c_leaves, c_tree = tree_flatten(out[0])
        if c_tree != init_tree:
            raise ShapeError(f"scan: f returns the carry {c_tree}, but init is {init_tree}")
        y_leaves, y_tree = tree_flatten(out[1])
        return c_leaves + y_leaves, y_tree
    fn, captured, y_tree, types = _trace_loop_body(body, leaf_types(init_leaves), x_types,
                                                   "scan body")
    (fn,), consts = ctl.close_over([(fn, captured, k + len(xs_leaves))])
    fn, consts, xs_leaves = ctl.hoist_scanned(fn, consts, xs_leaves, len(consts), k)
    outs = ctl.scan.bind(*consts, *_cast(init_leaves, types), *xs_leaves, body=fn,
                          num_consts=len(consts), num_carry=k, length=n, reverse=bool(reverse))
    return tree_unflatten(init_tree, outs[:k]), tree_unflatten(y_tree, outs[k:])


def switch(index, branches, *operands):
    """``branches[index](*operands)``, with ``index`` clamped to the valid
    range as in ``jax.lax.switch``; every branch is traced and they must
    return the same structure and types (a chain of ``cond``)."""
    branches = list(branches)
    if not branches:
        raise ValueError("switch: branches must not be empty")
    if len(branches) == 1:
        return branches[0](*operands)
    index = tnp.clip(tnp.asarray(index), 0, len(branches) - 1)
    return cond(index == 0, branches[0],
                lambda *ops: switch(index - 1, branches[1:], *ops), *operands)


def map_(f, xs):
    """``f`` applied to each slice of ``xs`` along its leading axis, stacked
    (``jax.lax.map``, exported there as ``map``): a scan without carry, so
    the loop is not unrolled."""
    return scan(lambda carry, x: (carry, f(x)), (), xs)[1]


def subfunction(fun):
    """``fun``, kept as one ``call`` instruction when traced: TensorFlow's
    "subgraph-building function" with its boundary visible.

    Each call is traced in its own name scope, named after the function and
    made unique (``relu``, ``relu_1``, ...); its results take that name. The
    traced IR (``tracejit ir``) shows ``%relu_1 = call(%x) { fun = func
    @relu(...) }`` and the DOT graph one box per call. ``simplify`` inlines
    the calls before fusion, so a subfunction compiles exactly as the
    inlined code would; grad and vmap inline it too. Outside a trace (eager
    mode) it is just ``fun``::

        @tracejit.subfunction
        def relu(x):
            return tnp.maximum(x, 0.0)
    """
    name = getattr(fun, "__name__", "subfunction")
    scope = name if name.isidentifier() else "subfunction"

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        if current_trace() is None:
            return fun(*args, **kwargs)
        leaves, tree = tree_flatten((args, kwargs))
        with name_scope(scope) as full:
            fn, captured, out_tree = trace_pytree(lambda a, k: fun(*a, **k), leaf_types(leaves),
                                                  tree, name)
            (fn,), consts = ctl.close_over([(fn, captured, len(leaves))])
            outs = ctl.call.bind(*consts, *leaves, fun=fn, num_consts=len(consts))
        name_outputs(outs, full, leaves)
        return tree_unflatten(out_tree, outs)
    return wrapped
