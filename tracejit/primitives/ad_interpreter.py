"""The autodiff interpreters: reverse mode (:func:`forward` then
:func:`backward` over a :class:`Tape`) and forward mode (:func:`jvp_eval`)
of a closed Function, by binding each instruction and calling its
primitive's rules (tracejit/transforms/autodiff.py explains the method and
the zero-cotangent policy).

They sit below the primitive families because the structured primitives
(cond, scan, fusion, custom_vjp_call) differentiate their sub-Functions
with them; transforms/autodiff.py builds the user API (vjp, jvp, grad) on
top.
"""
from __future__ import annotations

import contextlib
import threading

from ..core import PRIMITIVES, constant_value, current_trace, eval_function, trace_function
from ..errors import NonDifferentiableError
from ..ir.core import Function
from ..naming import keep_names, name_scope
from . import ad_util as ad
from .ad_util import is_float_type

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


# Primitives that may record several instructions (or none) when bound.
_NOT_ONE_INSTRUCTION = ("stop_gradient", "custom_vjp_call", "custom_jvp_call")


def bind_named(ins, vals):
    """``bind_plain`` of instruction ``ins`` on ``vals``, its results keeping
    the names of ``ins``'s (tracejit.naming)."""
    names = [r.name for r in ins.results]
    if not any(names) or ins.prim in _NOT_ONE_INSTRUCTION or \
            ins.primitive.kind == "control":
        return bind_plain(ins.prim, vals, ins.attrs)
    with keep_names(names):
        return bind_plain(ins.prim, vals, ins.attrs)


def eval_plain(fn: Function, args):
    """Like core.eval_function, with differentiation markers removed."""
    env = dict(zip(fn.params, args))
    for ins in fn.body:
        outs = [constant_value(ins)] if ins.prim == "constant" else bind_named(
            ins, [env[v] for v in ins.operands])
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
            active.update(r for r in ins.results if is_float_type(r.type))
    return [v in active for v in fn.results]


# --- reverse mode -----------------------------------------------------------------
class Tape:
    """What the backward pass of one interpreted Function needs."""

    def __init__(self, fn, active):
        self.fn = fn
        self.active = active    # set of active Vars
        self.entries = []       # (instr, active operand flags, residuals, outs)


def forward(fn: Function, args, active_in, known=None):
    """Bind ``fn``'s instructions on ``args``; returns ``(outs, tape)``.
    ``active_in[i]`` says whether param ``i`` is differentiated. ``known``
    maps some results of plain (not structured) instructions to values
    already computed (a checkpoint's saved values): those instructions are
    not bound again, but still differentiated."""
    env = dict(zip(fn.params, args))
    tape = Tape(fn, {p for p, a in zip(fn.params, active_in) if a and is_float_type(p.type)})
    known = known or {}
    for ins in fn.body:
        if ins.prim == "constant":
            env[ins.results[0]] = constant_value(ins)
            continue
        vals = [env[v] for v in ins.operands]
        act = [v in tape.active for v in ins.operands]
        prim = ins.primitive
        if ins.results and all(r in known for r in ins.results):
            outs = [known[r] for r in ins.results]
            if any(act) and prim.differentiable:
                tape.entries.append((ins, act, vals, outs))
                tape.active.update(r for r in ins.results if is_float_type(r.type))
        elif not (any(act) and prim.differentiable):
            outs = bind_named(ins, vals)
        else:
            if prim.vjp_fwd is not None:
                outs, res = prim.vjp_fwd(vals, act, **ins.attrs)
            else:
                outs, res = bind_named(ins, vals), vals
            tape.entries.append((ins, act, res, outs))
            tape.active.update(r for r in ins.results if is_float_type(r.type))
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


def backward(tape: Tape, cts_out, scope: str | None = "gradients"):
    """Cotangents of the params of ``tape.fn`` (None = zero) given cotangents
    of its results. The values it computes are named under ``gradients/``,
    each rule's under ``gradients/<forward value's name>_grad`` (TensorFlow's
    names, tracejit.naming); ``scope=None`` for a tape whose backward pass
    is already inside that scope (an inlined call's)."""
    if scope is None:
        return _backward(tape, cts_out)
    with name_scope(scope):
        return _backward(tape, cts_out)


def _backward(tape: Tape, cts_out):
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
        prim = ins.primitive
        if prim.vjp is None:
            raise NonDifferentiableError(f"reverse-mode differentiation of {ins.prim} "
                                         f"is not implemented")
        with name_scope((ins.results[0].name or ins.prim) + "_grad"):
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
    tan = {p: t for p, t in zip(fn.params, tangents) if t is not None and is_float_type(p.type)}
    for ins in fn.body:
        if ins.prim == "constant":
            env[ins.results[0]] = constant_value(ins)
            continue
        vals = [env[v] for v in ins.operands]
        ts = [tan.get(v) for v in ins.operands]
        prim = ins.primitive
        if all(t is None for t in ts) or not prim.differentiable:
            outs, touts = bind_named(ins, vals), []
        elif prim.jvp is None:
            raise NonDifferentiableError(f"forward-mode differentiation of {ins.prim} "
                                         f"is not implemented")
        elif prim.kind == "control":
            outs, touts = prim.jvp(vals, ts, None, **ins.attrs)
        else:
            outs = bind_named(ins, vals)
            touts = prim.jvp(vals, ts, outs, **ins.attrs)
        env.update(zip(ins.results, outs))
        for r, t in zip(ins.results, touts):
            if t is not None and is_float_type(r.type):
                tan[r] = t
    return [env[v] for v in fn.results], [tan.get(v) for v in fn.results]
