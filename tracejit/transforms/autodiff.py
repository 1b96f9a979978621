"""Reverse- and forward-mode automatic differentiation, as IR -> IR transforms.

How it works
------------
``vjp(f, *primals)`` traces ``f`` into a closed Function ``F`` and then
*interprets* ``F``: the forward pass binds every instruction again (so it
records into whatever trace is active, or runs eagerly on NumPy arrays), and
the backward pass walks the recorded instructions in reverse, calling each
primitive's ``vjp`` rule. Rules are written with primitive binds too, so the
backward pass is ordinary IR that is simplified, fused and compiled with the
forward pass, works eagerly, inside ``jit``, and composes: ``grad(grad(f))``
traces the inner grad's forward and backward passes into the outer trace
and differentiates them in turn. ``jvp`` interprets ``F`` once, calling each
primitive's ``jvp`` rule next to it.

Only *active* values (float values that depend on a differentiated input)
get cotangents: instructions on inactive values are bound unchanged and
skipped by the backward pass. Integer and boolean values are never active.
Cotangents are accumulated with ``add``; ``None`` is a symbolic zero.

Primitives with sub-Functions (``scan``, ``cond``, ``custom_vjp_call``) have
a ``vjp_fwd`` hook that replaces their forward binding and saves residuals
(a scan stacks its carries); see tracejit/primitives/control.py. Structured
primitives (kind ``'control'``) compute their primal outputs together with
the tangents: their ``jvp`` rules are called with ``outs=None`` and return
``(outs, tangents)``.

Zero-cotangent policy (NaN-free gradients of guarded expressions)
-----------------------------------------------------------------
``where(x > 0, sqrt(x), 0.)`` is differentiable at ``x = 0``, but the
untaken branch's derivative is ``0.5 / sqrt(0) = inf``, and the chain rule
gives it ``0 * inf = NaN``. tracejit treats a zero cotangent as a *strong*
zero: every elementwise rule that multiplies the incoming cotangent (or
tangent) ``g`` by a local derivative computes ``where(g == 0, 0, g * d)``
(``primitives/ad_util.guard``), so an exactly-zero cotangent stays exactly
zero through any chain of elementwise operations (sqrt, log, pow, div, mul,
exp, sin, ...), even where the derivative is inf or NaN (including NaN
*values* computed by the untaken branch). ``select`` gives the untaken
branch an exact zero, hence gradients through ``where`` never pick up NaN or
inf from the branch not taken. Contractions (dot_general, conv_general) are
not guarded: a NaN operand of a matrix product still propagates. Where a
derivative is genuinely infinite on the taken path, the gradient is inf or
NaN, as in IEEE arithmetic. Derivative conventions at kinks: ``abs'(0) = 0``;
``max``/``min`` split the cotangent equally between tied operands; reductions
``reduce_max``/``reduce_min`` share it equally among tied elements;
``pow``'s derivative is 0 where the exponent is 0 (w.r.t. the base) and
where the base is 0 (w.r.t. the exponent). See docs/autodiff.md.
"""
from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np

from ..errors import DTypeError, NonDifferentiableError, ShapeError, api_boundary
from ..ir.core import Function
from ..ir.types import FLOATS, TensorType
from ..primitives import ad_util as ad
from ..primitives.core import PRIMITIVES
from ..tracing import current_trace, eval_function, trace_function
from ..tree import tree_flatten, tree_flatten_with_path, tree_unflatten

_local = threading.local()

#: Primitives that only exist while a function is being differentiated
#: (tracejit.stop_gradient and tracejit.custom_vjp): every interpreter here
#: removes them, so compiled programs never contain them.
MARKERS = ("stop_gradient", "custom_vjp_call", "custom_jvp_call")


@contextlib.contextmanager
def differentiating():
    """Mark the tracing of a function that is about to be differentiated."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def is_differentiating() -> bool:
    """True while tracing a function under vjp/jvp/grad: only then do
    stop_gradient and custom_vjp record their marker primitives."""
    return getattr(_local, "depth", 0) > 0 and current_trace() is not None


def _float(t: TensorType) -> bool:
    return t.dtype in FLOATS


def _constant(ins):
    t = ins.results[0].type
    val = ins.attrs["value"]
    return val if t.weak else np.asarray(val, dtype=t.dtype)


# --- binding with the markers removed -------------------------------------------
def _has_markers(fn: Function) -> bool:
    return any(ins.prim in MARKERS or any(_has_markers(f) for f in ins.subfunctions().values())
               for ins in fn.body)


def strip(fn: Function) -> Function:
    """``fn`` without stop_gradient and custom_vjp_call (inlined), recursively."""
    if not _has_markers(fn):
        return fn
    out, captured = trace_function(lambda *a: eval_plain(fn, a), fn.in_types, fn.name)
    assert not captured, "a closed Function captured a value when re-traced"
    return out


def bind_plain(name, vals, attrs):
    """Bind primitive ``name``, removing differentiation markers."""
    if name == "stop_gradient":
        return [vals[0]]
    if name in ("custom_vjp_call", "custom_jvp_call"):
        return eval_plain(attrs["fun"], vals)
    attrs = {k: strip(v) if isinstance(v, Function) else v for k, v in attrs.items()}
    return PRIMITIVES[name].bind(*vals, **attrs)


def eval_plain(fn: Function, args):
    """Like tracing.eval_function, with differentiation markers removed."""
    env = dict(zip(fn.params, args))
    for ins in fn.body:
        outs = [_constant(ins)] if ins.prim == "constant" else bind_plain(
            ins.prim, [env[v] for v in ins.operands], ins.attrs)
        env.update(zip(ins.results, outs))
    return [env[v] for v in fn.results]


def eval_rule(fn: Function, args):
    """Evaluate a custom rule's traced fwd or bwd. While an enclosing trace is
    being differentiated (a higher-order derivative), its stop_gradient and
    custom_vjp markers are kept for that differentiation to honour;
    otherwise they are removed."""
    return eval_function(fn, args) if is_differentiating() else eval_plain(fn, args)


def active_outputs(fn: Function, active_in) -> list[bool]:
    """Which results of ``fn`` may depend on the active params (conservative
    through sub-Functions)."""
    active = {p for p, a in zip(fn.params, active_in) if a}
    for ins in fn.body:
        prim = PRIMITIVES.get(ins.prim)
        if prim is not None and prim.differentiable and any(v in active for v in ins.operands):
            active.update(r for r in ins.results if _float(r.type))
    return [v in active for v in fn.results]


# --- reverse mode -----------------------------------------------------------------
class Tape:
    """What the backward pass of one interpreted Function needs."""

    def __init__(self, fn, active):
        self.fn = fn
        self.active = active    # set of active Vars
        self.entries = []       # (instr, active operand flags, residuals, outs)


def forward(fn: Function, args, active_in):
    """Bind ``fn``'s instructions on ``args``; returns ``(outs, tape)``.
    ``active_in[i]`` says whether param ``i`` is differentiated."""
    env = dict(zip(fn.params, args))
    tape = Tape(fn, {p for p, a in zip(fn.params, active_in) if a and _float(p.type)})
    for ins in fn.body:
        if ins.prim == "constant":
            env[ins.results[0]] = _constant(ins)
            continue
        vals = [env[v] for v in ins.operands]
        act = [v in tape.active for v in ins.operands]
        prim = PRIMITIVES[ins.prim]
        if not (any(act) and prim.differentiable):
            outs = bind_plain(ins.prim, vals, ins.attrs)
        else:
            if prim.vjp_fwd is not None:
                outs, res = prim.vjp_fwd(vals, act, **ins.attrs)
            else:
                outs, res = bind_plain(ins.prim, vals, ins.attrs), vals
            tape.entries.append((ins, act, res, outs))
            tape.active.update(r for r in ins.results if _float(r.type))
        env.update(zip(ins.results, outs))
    return [env[v] for v in fn.results], tape


def _fit(ct, var, prim_name):
    t = ad.aval(ct)
    if t.shape != var.type.shape:
        raise AssertionError(f"the vjp rule of {prim_name} returned a cotangent of shape "
                             f"{t.shape} for an operand of type {var.type}")
    if t.dtype != var.type.dtype:
        ct = PRIMITIVES["convert"](ct, dtype=var.type.dtype, weak=var.type.weak)
    return ct


def backward(tape: Tape, cts_out):
    """Cotangents of the params of ``tape.fn`` (None = zero) given cotangents
    of its results."""
    ct = {}

    def accumulate(v, c, prim_name):
        if c is not None and v in tape.active:
            ct[v] = ad.add(ct.get(v), _fit(c, v, prim_name))

    for v, c in zip(tape.fn.results, cts_out):
        accumulate(v, c, "the output")
    for ins, act, res, outs in reversed(tape.entries):
        cts = [ct.pop(r, None) for r in ins.results]
        if all(c is None for c in cts):
            continue
        prim = PRIMITIVES[ins.prim]
        if prim.vjp is None:
            raise NonDifferentiableError(f"reverse-mode differentiation of {ins.prim} "
                                         f"is not implemented")
        in_cts = prim.vjp(cts, res, outs, **ins.attrs)
        for v, a, c in zip(ins.operands, act, in_cts):
            if a and c is not None:
                accumulate(v, c() if callable(c) else c, ins.prim)
    return [ct.get(p) for p in tape.fn.params]


# --- forward mode -----------------------------------------------------------------
def jvp_eval(fn: Function, args, tangents):
    """Bind ``fn`` on ``args`` with tangents (None = zero) pushed alongside;
    returns ``(outs, out_tangents)``."""
    env = dict(zip(fn.params, args))
    tan = {p: t for p, t in zip(fn.params, tangents) if t is not None and _float(p.type)}
    for ins in fn.body:
        if ins.prim == "constant":
            env[ins.results[0]] = _constant(ins)
            continue
        vals = [env[v] for v in ins.operands]
        ts = [tan.get(v) for v in ins.operands]
        prim = PRIMITIVES[ins.prim]
        if all(t is None for t in ts) or not prim.differentiable:
            outs, touts = bind_plain(ins.prim, vals, ins.attrs), []
        elif prim.jvp is None:
            raise NonDifferentiableError(f"forward-mode differentiation of {ins.prim} "
                                         f"is not implemented")
        elif prim.kind == "control":
            outs, touts = prim.jvp(vals, ts, None, **ins.attrs)
        else:
            outs = bind_plain(ins.prim, vals, ins.attrs)
            touts = prim.jvp(vals, ts, outs, **ins.attrs)
        env.update(zip(ins.results, outs))
        for r, t in zip(ins.results, touts):
            if t is not None and _float(r.type):
                tan[r] = t
    return [env[v] for v in fn.results], [tan.get(v) for v in fn.results]


# --- the user API -------------------------------------------------------------------
def _trace_user(fun, leaves, in_tree, has_aux, name):
    """Trace ``fun(*unflatten(leaves))`` while differentiating; returns
    (Function, captured values, out tree, aux tree). The Function returns
    the output leaves followed by the aux leaves."""
    from ..api import _leaf_type
    in_types = [_leaf_type(x, f"#{i}") for i, x in enumerate(leaves)]
    trees = {}

    def flat(*tracers):
        out = fun(*tree_unflatten(in_tree, tracers))
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"{name} with has_aux=True: the function must return a "
                                f"pair (output, aux), got {type(out).__name__}")
            out, aux = out
        else:
            aux = None
        out_leaves, trees["out"] = tree_flatten(out)
        aux_leaves, trees["aux"] = tree_flatten(aux)
        return out_leaves + aux_leaves
    with differentiating():
        fn, captured = trace_function(flat, in_types, getattr(fun, "__name__", "f"))
    return fn, captured, trees["out"], trees["aux"]


def _zeros(x):
    t = ad.aval(x)
    return ad.full_like(x, 0) if t.shape else np.zeros((), t.dtype)


def _as_ct(c, var, what):
    """A user-given cotangent/tangent for a value of type ``var.type``."""
    if not _float(var.type):
        return None
    t = ad.aval(c)
    if t.shape != var.type.shape:
        raise ShapeError(f"{what} has shape {t.shape}, but the value it goes with has "
                         f"shape {var.type.shape}")
    if t.dtype != var.type.dtype:
        from .. import numpy as tnp
        c = tnp.astype(c, var.type.dtype)
    return c


def vjp(fun, *primals, has_aux=False):
    """``(out, vjp_fn)`` (and ``aux`` when ``has_aux``): ``vjp_fn(ct)``
    returns the cotangents of ``primals`` (a tuple, same pytree structure) for
    an output cotangent ``ct`` shaped like ``out``. Integer and boolean
    primals get zero cotangents."""
    with api_boundary():
        leaves, in_tree = tree_flatten(primals)
        fn, captured, out_tree, aux_tree = _trace_user(fun, leaves, in_tree, has_aux, "vjp")
        active = [True] * len(leaves) + [False] * len(captured)
        outs, tape = forward(fn, list(leaves) + list(captured), active)
        n_out = out_tree.num_leaves

        def vjp_fn(ct):
            with api_boundary():
                ct_leaves, ct_tree = tree_flatten(ct)
                if ct_tree != out_tree:
                    raise ShapeError(f"vjp_fn: the cotangent's structure {ct_tree} differs "
                                     f"from the output's {out_tree}")
                cts = [_as_ct(c, v, f"cotangent {i}")
                       for i, (c, v) in enumerate(zip(ct_leaves, fn.results))]
                in_cts = backward(tape, cts + [None] * (len(fn.results) - n_out))
                return tree_unflatten(in_tree, [_zeros(x) if c is None else c
                                                for x, c in zip(leaves, in_cts)])
        out = tree_unflatten(out_tree, outs[:n_out])
        if has_aux:
            return out, vjp_fn, tree_unflatten(aux_tree, outs[n_out:])
        return out, vjp_fn


def jvp(fun, primals, tangents, has_aux=False):
    """``(out, tangent_out)``: ``fun(*primals)`` and its directional derivative
    along ``tangents`` (a sequence shaped like ``primals``)."""
    with api_boundary():
        primals, tangents = tuple(primals), tuple(tangents)
        leaves, in_tree = tree_flatten(primals)
        t_leaves, t_tree = tree_flatten(tangents)
        if t_tree != in_tree:
            raise ShapeError(f"jvp: tangents' structure {t_tree} differs from the "
                             f"primals' {in_tree}")
        fn, captured, out_tree, aux_tree = _trace_user(fun, leaves, in_tree, has_aux, "jvp")
        ts = [_as_ct(t, p, f"tangent {i}") for i, (t, p) in enumerate(zip(t_leaves, fn.params))]
        outs, touts = jvp_eval(fn, list(leaves) + list(captured), ts + [None] * len(captured))
        n_out = out_tree.num_leaves
        out = tree_unflatten(out_tree, outs[:n_out])
        tout = tree_unflatten(out_tree, [_zeros(o) if t is None else t
                                         for o, t in zip(outs[:n_out], touts)])
        if has_aux:
            return out, tout, tree_unflatten(aux_tree, outs[n_out:])
        return out, tout


def _check_float_args(args, argnums, who):
    from ..api import _leaf_type
    for i in argnums:
        for path, leaf in tree_flatten_with_path(args[i]):
            t = _leaf_type(leaf, f"{i}")
            if not _float(t):
                where = f"argument {i}" + (f" at {path!r}" if path else "")
                raise NonDifferentiableError(
                    f"{who}: {where} has dtype {t.dtype}; gradients are only defined for "
                    f"float inputs (leave it out of argnums, or pass it as a float array)")


def value_and_grad(fun, argnums=0, has_aux=False):
    """``f`` -> ``(value, grad)`` (``((value, aux), grad)`` with has_aux).
    ``argnums`` (int or tuple) selects the arguments to differentiate; each
    gradient has its argument's pytree structure. ``fun`` must return a
    float scalar."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            return _value_and_grad(fun, single, nums, has_aux, args, kwargs)
    return wrapped


def _value_and_grad(fun, single, nums, has_aux, args, kwargs):
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"argnums {nums[0] if single else nums} out of range for "
                             f"{len(args)} positional argument(s)")
    idx = tuple(i % len(args) for i in nums)
    _check_float_args(args, idx, getattr(fun, "__name__", "grad"))

    def partial(*diff):
        full = list(args)
        for i, a in zip(idx, diff):
            full[i] = a
        return fun(*full, **kwargs)
    res = vjp(partial, *[args[i] for i in idx], has_aux=has_aux)
    out, vjp_fn = res[0], res[1]
    t = ad.aval(out) if not isinstance(out, (list, tuple, dict)) else None
    if t is None or t.shape != ():
        raise ShapeError(f"grad needs a function returning a scalar, got "
                         f"{t if t is not None else type(out).__name__}; use vjp for "
                         f"non-scalar outputs")
    if not _float(t):
        raise DTypeError(f"grad needs a function returning a float scalar, got {t}")
    grads = vjp_fn(np.ones((), t.dtype))
    grads = grads[0] if single else grads
    return ((out, res[2]) if has_aux else out), grads


def grad(fun, argnums=0, has_aux=False):
    """The gradient of a float-scalar function (see :func:`value_and_grad`);
    with ``has_aux`` returns ``(grad, aux)``."""
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            value, g = vg(*args, **kwargs)
            return (g, value[1]) if has_aux else g
    return wrapped
