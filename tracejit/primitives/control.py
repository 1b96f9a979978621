"""Structured control flow, and the markers of differentiation.

Each primitive here holds closed sub-Functions in its attributes: values a
body closes over are explicit operands (``consts``), passed first. The
user API is tracejit/control.py and tracejit/transforms/custom_derivatives.py.

cond(pred, *ops; true_fun, false_fun)
    ``pred`` is a bool scalar; both branches take ``ops`` (consts first,
    then the user's operands) and return values of the same types; the
    result is the chosen branch's results.
while(*consts, *carries; cond_fun, body, num_consts)
    ``cond_fun(*consts, *carries) -> bool[]`` and
    ``body(*consts, *carries) -> carries``; loops while cond_fun holds and
    returns the final carries.
scan(*consts, *carries, *xs; body, num_consts, num_carry, length, reverse)
    every x in xs has leading dim ``length``. Iteration i runs
    ``body(*consts, *carries, *[x[i] for x in xs]) -> (*carries, *ys)`` for
    i = 0 .. length-1 (length-1 .. 0 when ``reverse``). Results: the final
    carries, then each y stacked on a new leading dim of size ``length``
    (ys[i] is the y of the iteration that saw xs[i]).
call(*consts, *args; fun, num_consts)
    ``fun(*consts, *args)``: a function kept as one instruction
    (``tracejit.subfunction``), so the traced IR shows the call boundary.
    ``simplify`` inlines it (tracejit/transforms/inline.py), so backends
    never see it; autodiff and vmap inline it too, as they transform it.
stop_gradient(x), custom_vjp_call(*consts, *args; fun, fwd, bwd, num_consts)
    Markers recorded only while a function is being traced for
    differentiation; the interpreters of tracejit/primitives/ad_interpreter.py
    remove them, so backends never see them. Their reference impls are the
    identity and ``fun``. ``fwd(*consts, *args) -> (*outs, *residuals)``,
    ``bwd(*consts, *residuals, *out_cts) -> arg_cts``.

Reverse mode: scan's forward pass (``vjp_fwd``) differentiates the body
as it runs and also outputs, per iteration, the values the body's backward
pass reads (stacked; loop-invariant ones as extra carries); its vjp is a
scan in the opposite direction applying each iteration's VJP to those saved
values, without recomputing the forward step (cotangents of carries and
consts are carried, cotangents of xs stacked). The IR size does not depend
on ``length``. cond's vjp is a cond of the
branches' vjps. while has no vjp (its trip count is unknown in advance):
use scan, or fori_loop with static bounds. Forward mode is supported for
all three (a structured op carrying the tangents along).
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, current_trace, eval_function, trace_function
from ..errors import DTypeError, NonDifferentiableError, ShapeError
from ..ir.core import Function, Var
from ..ir.types import FLOATS, TensorType
from . import ad_interpreter as A
from . import batch_interpreter as B
from . import ad_util as ad
from . import batch_util as bu


def _fmt(types):
    return "(" + ", ".join(str(t) for t in types) + ")"


def _check_types(name, what, want, got):
    if len(want) != len(got) or any(a.shape != b.shape or a.dtype != b.dtype
                                    for a, b in zip(want, got)):
        raise ShapeError(f"{name}: {what} takes {_fmt(want)} but is given {_fmt(got)}")


def close_over(traced):
    """Give Functions traced separately one shared list of consts.

    ``traced`` is a list of ``(fn, captured, n_in)`` from trace_function (the
    first ``n_in`` params are inputs, the rest captured values). Returns the
    Functions rewritten to take ``(*consts, *inputs)`` (each ignoring the
    others' consts) and the consts."""
    consts, index = [], {}
    for _, captured, _ in traced:
        for c in captured:
            if id(c) not in index:
                index[id(c)] = len(consts)
                consts.append(c)
    fns = []
    for fn, captured, n in traced:
        own = {index[id(c)]: v for c, v in zip(captured, fn.params[n:])}
        params = [own[i] if i in own else Var(ad.aval(c).strong() if isinstance(c, np.ndarray)
                                              else ad.aval(c))
                  for i, c in enumerate(consts)]
        fns.append(Function(params + fn.params[:n], fn.body, fn.results, fn.name))
    return fns, consts


def trace_closed(run, in_types, name):
    """Trace ``run`` into a Function taking ``(*consts, *in_types)``."""
    fn, captured = trace_function(run, in_types, name)
    (fn,), consts = close_over([(fn, captured, len(in_types))])
    return fn, consts


def _types(vals):
    return [ad.aval(v) for v in vals]


def _pick(vals, flags):
    return [v for v, f in zip(vals, flags) if f]


def _spread(flags, vals):
    """Inverse of _pick: values at the flagged positions, None elsewhere."""
    it = iter(vals)
    return [next(it) if f else None for f in flags]


def _split(args, sizes):
    """``args`` cut into consecutive lists of the given sizes."""
    out, i = [], 0
    for n in sizes:
        out.append(list(args[i:i + n]))
        i += n
    return out


def _float_types(types):
    return [t.dtype in FLOATS for t in types]


# --- call ---------------------------------------------------------------------------
def _call_rule(*ops, fun, num_consts):
    _check_types("call", fun.name, fun.in_types, ops)
    return fun.out_types


call = Primitive("call", "control", _call_rule,
                 lambda *ops, fun, num_consts: eval_function(fun, list(ops)))


def _call_vjp_fwd(primals, active, *, fun, num_consts):
    # the call is inlined into the differentiated program: its instructions
    # are bound one by one, and the tape of their rules is the residual
    return A.forward(fun, primals, active)


def _call_vjp(cts, tape, outs, *, fun, num_consts):
    return A.backward(tape, cts, scope=None)


def _call_jvp(primals, tangents, outs, *, fun, num_consts):
    return A.jvp_eval(fun, primals, tangents)


def _call_batch(vals, batched, *, fun, num_consts):
    return B.batch_eval(fun, vals, list(batched))


call.vjp_fwd = _call_vjp_fwd
call.def_vjp(_call_vjp)
call.def_jvp(_call_jvp)
call.def_batch(_call_batch)


# --- cond ---------------------------------------------------------------------------
def _cond_rule(pred, *ops, true_fun, false_fun):
    if pred.shape != () or pred.dtype != "bool":
        raise DTypeError(f"cond: the predicate must be a bool scalar, got {pred}")
    _check_types("cond", "true_fun", true_fun.in_types, ops)
    _check_types("cond", "false_fun", false_fun.in_types, ops)
    t, f = true_fun.out_types, false_fun.out_types
    if [(a.shape, a.dtype) for a in t] != [(b.shape, b.dtype) for b in f]:
        raise ShapeError(f"cond: the branches return different types: true_fun "
                         f"{_fmt(t)}, false_fun {_fmt(f)}")
    return [TensorType(a.shape, a.dtype, a.weak and b.weak) for a, b in zip(t, f)]


def _cond_impl(pred, *ops, true_fun, false_fun):
    return eval_function(true_fun if bool(pred) else false_fun, list(ops))


cond = Primitive("cond", "control", _cond_rule, _cond_impl)


def _cond_vjp_fwd(primals, active, *, true_fun, false_fun):
    outs = cond.bind(*primals, true_fun=A.strip(true_fun), false_fun=A.strip(false_fun))
    return outs, (primals, active)


def _cond_vjp(cts, residuals, outs, *, true_fun, false_fun):
    primals, active = residuals
    pred, ops, act = primals[0], primals[1:], active[1:]
    has_ct = [c is not None for c in cts]
    n = len(ops)

    def branch(fn):
        def run(*args):
            x, g = args[:n], _spread(has_ct, args[n:])
            _, tape = A.forward(fn, x, act)
            in_cts = A.backward(tape, g)
            return [ad.instantiate(c, xi) for c, xi, a in zip(in_cts, x, act) if a]
        return trace_function(run, _types(ops) + _types(_pick(cts, has_ct)), fn.name + "_vjp")
    (bt, bf), consts = close_over([(*branch(true_fun), len(ops) + sum(has_ct)),
                                   (*branch(false_fun), len(ops) + sum(has_ct))])
    res = cond.bind(pred, *consts, *ops, *_pick(cts, has_ct), true_fun=bt, false_fun=bf)
    return [None] + _spread(act, res)


def _cond_jvp(primals, tangents, outs, *, true_fun, false_fun):
    pred, ops, ts = primals[0], primals[1:], tangents[1:]
    on = [t is not None for t in ts]
    n, out_f = len(ops), _float_types(true_fun.out_types)

    def branch(fn):
        def run(*args):
            o, to = A.jvp_eval(fn, args[:n], _spread(on, args[n:]))
            return o + [ad.instantiate(t, oi) for t, oi, f in zip(to, o, out_f) if f]
        return trace_function(run, _types(ops) + _types(_pick(ts, on)), fn.name + "_jvp")
    (bt, bf), consts = close_over([(*branch(true_fun), n + sum(on)),
                                   (*branch(false_fun), n + sum(on))])
    res = cond.bind(pred, *consts, *ops, *_pick(ts, on), true_fun=bt, false_fun=bf)
    k = len(out_f)
    return res[:k], _spread(out_f, res[k:])


cond.vjp_fwd = _cond_vjp_fwd
cond.def_vjp(_cond_vjp)
cond.def_jvp(_cond_jvp)


# --- while --------------------------------------------------------------------------
def _while_rule(*ops, cond_fun, body, num_consts):
    carries = ops[num_consts:]
    _check_types("while", "cond_fun", cond_fun.in_types, ops)
    _check_types("while", "body", body.in_types, ops)
    if len(cond_fun.out_types) != 1 or cond_fun.out_types[0].shape != () or \
            cond_fun.out_types[0].dtype != "bool":
        raise DTypeError(f"while: cond_fun must return one bool scalar, returns "
                         f"{_fmt(cond_fun.out_types)}")
    _check_types("while", "the carry (body's results)", body.out_types, carries)
    return list(carries)


def _while_impl(*ops, cond_fun, body, num_consts):
    consts, carries = list(ops[:num_consts]), list(ops[num_consts:])
    while bool(eval_function(cond_fun, consts + carries)[0]):
        carries = eval_function(body, consts + carries)
    return [np.asarray(c, dtype=o.dtype) for c, o in zip(carries, ops[num_consts:])]


while_ = Primitive("while", "control", _while_rule, _while_impl)


def _while_vjp(cts, primals, outs, **attrs):
    raise NonDifferentiableError(
        "reverse-mode differentiation of while_loop is not supported (its number of "
        "iterations is only known at run time); use tracejit.scan, or fori_loop with "
        "static Python int bounds, or jvp for forward mode")


def _while_jvp(primals, tangents, outs, *, cond_fun, body, num_consts):
    nc = num_consts
    consts, carries = primals[:nc], primals[nc:]
    c_on = [t is not None for t in tangents[:nc]]
    k_on = [t is not None for t in tangents[nc:]]
    while True:   # carries whose tangents may become nonzero
        out_on = A.active_outputs(body, c_on + k_on)
        new = [a or b for a, b in zip(k_on, out_on)]
        if new == k_on:
            break
        k_on = new
    tc = _pick(tangents[:nc], c_on)
    tk = [ad.instantiate(t, c) for t, c, f in zip(tangents[nc:], carries, k_on) if f]
    n_in = len(primals) + len(tc) + len(tk)
    in_types = _types(consts) + _types(tc) + _types(carries) + _types(tk)

    sizes = [nc, len(tc), len(carries), len(tk)]

    def run_cond(*args):
        cs, _, ks, _ = _split(args, sizes)
        return A.eval_plain(cond_fun, cs + ks)

    def run_body(*args):
        cs, tcs, ks, tks = _split(args, sizes)
        o, to = A.jvp_eval(body, cs + ks, _spread(c_on, tcs) + _spread(k_on, tks))
        return o + [ad.instantiate(t, oi) for t, oi, f in zip(to, o, k_on) if f]
    (fc, fb), extra = close_over([(*trace_function(run_cond, in_types, "cond_fun"), n_in),
                                  (*trace_function(run_body, in_types, "body"), n_in)])
    res = while_.bind(*extra, *consts, *tc, *carries, *tk, cond_fun=fc, body=fb,
                      num_consts=len(extra) + nc + len(tc))
    return res[:len(carries)], _spread(k_on, res[len(carries):])


while_.def_vjp(_while_vjp)
while_.def_jvp(_while_jvp)


# --- scan ---------------------------------------------------------------------------
def _scan_rule(*ops, body, num_consts, num_carry, length, reverse):
    carries, xs = ops[num_consts:num_consts + num_carry], ops[num_consts + num_carry:]
    for x in xs:
        if not x.shape or x.shape[0] != length:
            raise ShapeError(f"scan: every scanned input needs leading dim {length}, got {x}")
    slices = [TensorType(x.shape[1:], x.dtype, x.weak) for x in xs]
    _check_types("scan", "body", body.in_types, list(ops[:num_consts + num_carry]) + slices)
    outs = body.out_types
    _check_types("scan", "the carry (body's first results)", outs[:num_carry], carries)
    return list(carries) + [TensorType((length,) + y.shape, y.dtype, y.weak)
                            for y in outs[num_carry:]]


def _scan_impl(*ops, body, num_consts, num_carry, length, reverse):
    nc, nk = num_consts, num_carry
    consts, carries, xs = list(ops[:nc]), list(ops[nc:nc + nk]), ops[nc + nk:]
    ys = []
    for i in (reversed(range(length)) if reverse else range(length)):
        out = eval_function(body, consts + carries + [x[i] for x in xs])
        carries, y = out[:nk], out[nk:]
        ys.append(y)
    if reverse:
        ys.reverse()
    y_types = body.out_types[nk:]
    stacked = [np.stack([np.asarray(y[j], dtype=t.dtype) for y in ys]) if ys else
               np.zeros((0,) + t.shape, t.dtype) for j, t in enumerate(y_types)]
    return [np.asarray(c, dtype=o.dtype) for c, o in zip(carries, ops[nc:nc + nk])] + stacked


scan = Primitive("scan", "control", _scan_rule, _scan_impl)


def hoist_scanned(body, consts, xs, num_consts, num_carry):
    """Move a scan body's products of scanned inputs out of the loop.

    The body's instructions that depend on the scanned inputs but not on
    the carries (an RNN's input projection ``x_t @ W_x``) are computed for
    all iterations at once, before the loop, by batching them over the
    scan axis (one matrix product instead of ``length`` small ones); the
    body then reads their results as extra scanned inputs. Reverse mode
    follows: their weight gradient becomes one product after the backward
    loop. Done only where a ``dot_general`` or ``conv_general`` moves out.
    Consts and scanned inputs the loop no longer reads are dropped.
    Returns ``(body, consts, xs)``, unchanged when there is nothing to hoist.
    """
    nc, nk = num_consts, num_carry
    carry_dep = set(body.params[nc:nc + nk])
    x_dep = set(body.params[nc + nk:])
    outside, hoisted = [], []
    for ins in body.body:
        if any(v in carry_dep for v in ins.operands):
            carry_dep.update(ins.results)
            continue
        outside.append(ins)
        if any(v in x_dep for v in ins.operands):
            x_dep.update(ins.results)
            hoisted.append(ins)
    if not any(ins.prim in ("dot_general", "conv_general") for ins in hoisted):
        return body, list(consts), list(xs)
    moved = {id(ins) for ins in hoisted}
    defined = {r for ins in hoisted for r in ins.results}
    kept = [ins for ins in body.body if id(ins) not in moved]
    needed = [v for v in dict.fromkeys(
        [v for ins in kept for v in ins.operands] + list(body.results)) if v in defined]
    params = body.params[:nc] + body.params[nc + nk:]
    pre = Function(params, outside, needed, body.name + "_hoisted")
    stacked, flags = B.batch_eval(pre, list(consts) + list(xs),
                                  [False] * nc + [True] * (len(params) - nc))
    length = ad.aval(xs[0]).shape[0]
    stacked = [v if f else bu.bcast(v, length) for v, f in zip(stacked, flags)]
    used = {v for ins in kept for v in ins.operands} | set(body.results)
    keep_c = [v in used for v in body.params[:nc]]
    keep_x = [v in used for v in body.params[nc + nk:]]
    new_body = Function(_pick(body.params[:nc], keep_c) + body.params[nc:nc + nk]
                        + _pick(body.params[nc + nk:], keep_x) + needed,
                        kept, body.results, body.name)
    return new_body, _pick(consts, keep_c), _pick(xs, keep_x) + stacked


def sink_accumulated(body, num_consts, num_carry, carries):
    """Move the matrix products a scan only accumulates out of the loop.

    A carry (among the indices ``carries``) that the body only updates as
    ``c + dot_general(a, b)``, where ``a`` and ``b`` are scanned inputs or
    values the body computes, ends as its initial value plus one product
    of the stacked operands that also contracts the scan axis: a recurrent
    weight's gradient becomes one (hidden x steps*batch) product after the
    backward loop instead of a small product and an add per step. Such
    carries leave the loop; operands the body computes become extra ys (a
    value that already is a y is not stacked twice).

    Returns ``(body, sunk)``: the new body (the other carries in order, its
    ys then the extra ones) and, per carry moved out, ``(carry, lhs, rhs,
    dimension_numbers, after)``, where ``lhs`` and ``rhs`` are ``("x", i)``
    or ``("y", j)``: the new scan's i-th scanned input or j-th stacked y,
    ``dimension_numbers`` are those of the product of the stacked operands,
    and ``after`` lists the ``(primitive, attrs)`` (transposes, reshapes)
    that the body applied to its product, to apply to this one in order.
    """
    nc, nk = num_consts, num_carry
    params, results = body.params, body.results
    producer = {r: ins for ins in body.body for r in ins.results}
    uses = {}
    for v in [v for ins in body.body for v in ins.operands] + list(results):
        uses[v] = uses.get(v, 0) + 1
    index = {v: i for i, v in enumerate(params)}
    ys = list(results[nk:])
    dropped, sunk = set(), []
    for j in carries:
        c, r = params[nc + j], results[j]
        add = producer.get(r)
        if add is None or add.prim != "add" or c not in add.operands or uses.get(c) != 1 \
                or uses.get(r) != 1:
            continue
        d = add.operands[1] if add.operands[0] is c else add.operands[0]
        if d.type != r.type:
            continue
        after = []   # transposes and reshapes of the product commute with the sum
        while d in producer and producer[d].prim in ("transpose", "reshape"):
            after.append((producer[d].prim, producer[d].attrs))
            d = producer[d].operands[0]
        dot = producer.get(d)
        if dot is None or dot.prim != "dot_general":
            continue
        sources, pending = [], []
        for v in dot.operands:
            i = index.get(v)
            if i is not None:   # a param: only a scanned input varies per iteration
                sources.append(("x", i - nc - nk) if i >= nc + nk else None)
            else:
                if v not in ys + pending:
                    pending.append(v)
                sources.append(("y", (ys + pending).index(v)))
        if None in sources:
            continue
        ys += pending
        (lc, rc), (lb, rb) = dot.attrs["dimension_numbers"]
        up = lambda dims: tuple(x + 1 for x in dims)   # noqa: E731
        dims = (((0,) + up(lc), (0,) + up(rc)), (up(lb), up(rb)))
        dropped.add(id(add))
        sunk.append((j, sources[0], sources[1], dims, after[::-1]))
    if not sunk:
        return body, []
    moved = {j for j, *_ in sunk}
    kept = [ins for ins in body.body if id(ins) not in dropped]
    new_results = [r for j, r in enumerate(results[:nk]) if j not in moved] + ys
    live, instrs = set(new_results), []
    for ins in reversed(kept):   # drop what only the moved updates read
        if any(r in live for r in ins.results):
            instrs.append(ins)
            live.update(ins.operands)
    new_params = params[:nc] + [p_ for j, p_ in enumerate(params[nc:nc + nk]) if j not in moved] \
        + params[nc + nk:]
    return Function(new_params, instrs[::-1], new_results, body.name), sunk


class _ScanResiduals:
    """What scan's backward pass needs: the forward body's tape (a template
    whose traced values are replaced, per iteration, by the saved ones),
    where each of its values comes from (``refs``: Var -> ('const'|'x'|
    'inv'|'var', index)), the saved values, and the activity flags."""

    def __init__(self, primals, flags, tape, refs, inv, var):
        self.primals, self.flags, self.tape, self.refs = primals, flags, tape, refs
        self.inv, self.var = inv, var


def _tape_values(obj, out):
    """Every traced value a tape's entries hold (residuals and outputs)."""
    if isinstance(obj, (list, tuple)):
        for o in obj:
            _tape_values(o, out)
    elif isinstance(obj, _ScanResiduals):
        _tape_values([obj.primals, obj.inv, obj.var], out)
    elif hasattr(obj, "entries") and hasattr(obj, "active"):   # an autodiff Tape
        for _, _, res, outs in obj.entries:
            _tape_values([res, outs], out)
    elif hasattr(obj, "_var") and hasattr(obj, "_trace"):      # a Tracer
        out.setdefault(obj._var, obj)


def _substitute(obj, values):
    """``obj`` (a tape or part of one) with traced values replaced by
    ``values[var]`` where given."""
    if isinstance(obj, list):
        return [_substitute(o, values) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_substitute(o, values) for o in obj)
    if isinstance(obj, _ScanResiduals):
        return _ScanResiduals(_substitute(obj.primals, values), obj.flags, obj.tape, obj.refs,
                              _substitute(obj.inv, values), _substitute(obj.var, values))
    if hasattr(obj, "entries") and hasattr(obj, "active"):
        new = type(obj)(obj.fn, obj.active)
        new.entries = [(ins, act, _substitute(res, values), _substitute(outs, values))
                       for ins, act, res, outs in obj.entries]
        return new
    if hasattr(obj, "_var") and hasattr(obj, "_trace"):
        return values.get(obj._var, obj)
    return obj


def _scan_activity(body, active, nc, nk):
    """Activity of (consts, carries, xs) and of the ys: a carry is active if
    its initial value is, or if the body makes it depend on active inputs."""
    c_act, k_act, x_act = list(active[:nc]), list(active[nc:nc + nk]), list(active[nc + nk:])
    while True:
        out_act = A.active_outputs(body, c_act + k_act + x_act)
        new = [a or b for a, b in zip(k_act, out_act[:nk])]
        if new == k_act:
            return c_act, k_act, x_act, out_act[nk:], list(active[nc:nc + nk])
        k_act = new


def _zeros(t):
    z = np.zeros((), t.dtype)
    return ad.p("broadcast_in_dim", z, shape=t.shape, broadcast_dimensions=()) if t.shape else z


def _variant(trace, seeds):
    """Vars of ``trace`` that depend on the ``seeds`` Vars."""
    out = set(seeds)
    for ins in trace.body:
        if any(v in out for v in ins.operands):
            out.update(ins.results)
    return out


def _needed(tape, held, body, nk, k_act):
    """Which of the values ``held`` by a tape its backward pass reads: a dry
    run of the backward pass (traced, never executed), every carry and
    float y given a cotangent."""
    out_types = body.out_types
    on = k_act + _float_types(out_types[nk:])
    ct_types = [t for t, f in zip(out_types, on) if f]
    n = len(held)

    def dry(*args):
        values = {t._var: a for t, a in zip(held, args[:n])}
        in_cts = A.backward(_substitute(tape, values), _spread(on, args[n:]))
        return [c for c in in_cts if c is not None]
    fn, _ = trace_function(dry, [t.aval for t in held] + ct_types, "dry_vjp")
    used = {v for ins in fn.body for v in ins.operands} | set(fn.results)
    return [p_ in used for p_ in fn.params[:n]]


def _scan_vjp_fwd(primals, active, *, body, num_consts, num_carry, length, reverse):
    """The forward scan, also returning what each iteration's backward pass
    needs (partial evaluation: the body's VJP residuals are computed once,
    here, instead of recomputed by the backward scan). Residuals that vary
    per iteration are stacked as extra ys; loop-invariant ones (computed
    from consts only) leave the loop as extra carries; the body's own
    consts and scanned inputs are referred to, not copied."""
    nc, nk = num_consts, num_carry
    flags = _scan_activity(body, active, nc, nk)
    c_act, k_act, x_act = flags[:3]
    xs = primals[nc + nk:]
    x_slices = [TensorType(t.shape[1:], t.dtype, t.weak) for t in _types(xs)]
    info = {}

    def run(*args):
        outs, tape = A.forward(body, list(args), c_act + k_act + x_act)
        trace = current_trace()
        params = {t._var: i for i, t in enumerate(args)}
        varying = _variant(trace, [t._var for t in args[nc:]])
        held = {}
        _tape_values(tape, held)
        held = [t for t in held.values() if t._trace is trace]
        refs, inv, var = {}, [], []
        for t, needed in zip(held, _needed(tape, held, body, nk, k_act)):
            v = t._var
            if not needed:
                continue
            i = params.get(v)
            if i is not None and (i < nc or i >= nc + nk):
                refs[v] = ("const", i) if i < nc else ("x", i - nc - nk)
            elif v in varying:
                refs[v] = ("var", len(var))
                var.append(t)
            else:
                refs[v] = ("inv", len(inv))
                inv.append(t)
        info.update(tape=tape, refs=refs, inv_types=[t.aval for t in inv],
                    var_types=[t.aval for t in var])
        return list(outs[:nk]) + inv + list(outs[nk:]) + var
    in_types = _types(primals[:nc]) + body.in_types[nc:nc + nk] + x_slices
    fwd, extra = trace_closed(run, in_types, body.name + "_fwd")
    n_inv = len(info["inv_types"])
    k = len(extra) + nc + nk   # the invariant residuals' carries come in unused
    fwd = Function(fwd.params[:k] + [Var(t) for t in info["inv_types"]] + fwd.params[k:],
                   fwd.body, fwd.results, fwd.name)
    init_inv = [_zeros(t) for t in info["inv_types"]]
    res = scan.bind(*extra, *primals[:nc + nk], *init_inv, *xs, body=fwd,
                    num_consts=len(extra) + nc, num_carry=nk + n_inv, length=length,
                    reverse=reverse)
    ny = len(body.results) - nk
    outs = res[:nk] + res[nk + n_inv:nk + n_inv + ny]
    return outs, _ScanResiduals(primals, flags, info["tape"], info["refs"],
                                res[nk:nk + n_inv], res[nk + n_inv + ny:])


def _scan_vjp(cts, residuals, outs, *, body, num_consts, num_carry, length, reverse):
    r = residuals
    primals = r.primals
    c_act, k_act, x_act, y_act, init_act = r.flags
    nc, nk = num_consts, num_carry
    consts, xs = primals[:nc], primals[nc + nk:]
    y_on = [a and c is not None for a, c in zip(y_act, cts[nk:])]
    g_k = [ad.instantiate(c, o) for c, o, a in zip(cts[:nk], outs[:nk], k_act) if a]
    g_y = _pick(cts[nk:], y_on)
    acc0 = [ad.zeros_like(c) for c in _pick(consts, c_act)]
    x_slices = [TensorType(t.shape[1:], t.dtype, t.weak) for t in _types(xs)]
    var_slices = [TensorType(t.shape[1:], t.dtype, t.weak) for t in _types(r.var)]
    y_slices = [TensorType(t.shape[1:], t.dtype, t.weak) for t in _types(g_y)]
    in_types = (_types(consts) + _types(r.inv) + _types(g_k) + _types(acc0) + x_slices
                + var_slices + y_slices)
    sizes = [nc, len(r.inv), len(g_k), len(acc0), len(xs), len(r.var), len(g_y)]

    def run(*args):
        cs, inv, gk, acc, xi, var, gy = _split(args, sizes)
        source = {"const": cs, "x": xi, "inv": inv, "var": var}
        values = {v: source[kind][i] for v, (kind, i) in r.refs.items()}
        in_cts = A.backward(_substitute(r.tape, values),
                            _spread(k_act, gk) + _spread(y_on, gy))
        ct_c, ct_k, ct_x = in_cts[:nc], in_cts[nc:nc + nk], in_cts[nc + nk:]
        return ([_zeros(k.type) if c is None else c for c, k, a in
                 zip(ct_k, body.params[nc:nc + nk], k_act) if a]
                + [ad.add(a, c) for a, c in zip(acc, _pick(ct_c, c_act))]
                + [ad.instantiate(c, x) for c, x, a in zip(ct_x, xi, x_act) if a])
    bwd, extra = trace_closed(run, in_types, body.name + "_vjp")
    # A const's cotangent accumulated as a product per step (a recurrent
    # weight's) becomes one product of stacked operands after the loop.
    n_gk, n_acc, n_const = len(g_k), len(acc0), len(extra) + nc + len(r.inv)
    bwd, sunk = sink_accumulated(bwd, n_const, n_gk + n_acc, range(n_gk, n_gk + n_acc))
    moved = {j - n_gk: rest for j, *rest in sunk}
    kept_acc = [a for i, a in enumerate(acc0) if i not in moved]
    scanned = [*xs, *r.var, *g_y]
    res = scan.bind(*extra, *consts, *r.inv, *g_k, *kept_acc, *scanned, body=bwd,
                    num_consts=n_const, num_carry=n_gk + len(kept_acc),
                    length=length, reverse=not reverse)
    ct_k, acc_out = res[:n_gk], iter(res[n_gk:n_gk + len(kept_acc)])
    ys = res[n_gk + len(kept_acc):]
    ct_x = ys[:sum(x_act)]

    def stacked(source):
        kind, i = source
        return scanned[i] if kind == "x" else ys[i]
    # the initial accumulators are zeros: the product is the whole cotangent
    def product(lhs, rhs, dims, after):
        out = ad.p("dot_general", stacked(lhs), stacked(rhs), dimension_numbers=dims)
        for prim, attrs in after:
            out = ad.p(prim, out, **attrs)
        return out
    ct_c = [product(*moved[i]) if i in moved else next(acc_out) for i in range(n_acc)]
    ct_init = [c if a else None for c, a in zip(_spread(k_act, ct_k), init_act)]
    return _spread(c_act, ct_c) + ct_init + _spread(x_act, ct_x)


def _scan_jvp(primals, tangents, outs, *, body, num_consts, num_carry, length, reverse):
    nc, nk = num_consts, num_carry
    consts, init, xs = primals[:nc], primals[nc:nc + nk], primals[nc + nk:]
    on = [t is not None for t in tangents]
    c_on, k_on, x_on = on[:nc], on[nc:nc + nk], on[nc + nk:]
    while True:   # carries whose tangents may become nonzero
        out_on = A.active_outputs(body, c_on + k_on + x_on)
        new = [a or b for a, b in zip(k_on, out_on[:nk])]
        if new == k_on:
            break
        k_on = new
    y_on = [a and f for a, f in zip(out_on[nk:], _float_types(body.out_types[nk:]))]
    tc, tx = _pick(tangents[:nc], c_on), _pick(tangents[nc + nk:], x_on)
    tk = [ad.instantiate(t, c) for t, c, f in zip(tangents[nc:nc + nk], init, k_on) if f]
    x_slices = [TensorType(t.shape[1:], t.dtype, t.weak) for t in _types(xs) + _types(tx)]
    in_types = _types(consts) + _types(tc) + _types(init) + _types(tk) + x_slices
    sizes = [nc, len(tc), nk, len(tk), len(xs), len(tx)]

    def run(*args):
        cs, tcs, ks, tks, xi, txi = _split(args, sizes)
        o, to = A.jvp_eval(body, cs + ks + xi,
                           _spread(c_on, tcs) + _spread(k_on, tks) + _spread(x_on, txi))
        return (o[:nk] + [ad.instantiate(t, oi) for t, oi, f in zip(to[:nk], o[:nk], k_on) if f]
                + o[nk:] + [ad.instantiate(t, oi) for t, oi, f in zip(to[nk:], o[nk:], y_on) if f])
    fn, extra = trace_closed(run, in_types, body.name + "_jvp")
    res = scan.bind(*extra, *consts, *tc, *init, *tk, *xs, *tx, body=fn,
                    num_consts=len(extra) + nc + len(tc), num_carry=nk + len(tk),
                    length=length, reverse=reverse)
    ny = len(body.results) - nk
    k_out, tk_out = res[:nk], res[nk:nk + len(tk)]
    y_out, ty_out = res[nk + len(tk):nk + len(tk) + ny], res[nk + len(tk) + ny:]
    return k_out + y_out, _spread(k_on, tk_out) + _spread(y_on, ty_out)


scan.vjp_fwd = _scan_vjp_fwd
scan.def_vjp(_scan_vjp)
scan.def_jvp(_scan_jvp)


# --- differentiation markers -----------------------------------------------------------
stop_gradient = Primitive("stop_gradient", "other", lambda x: x, lambda x: [x],
                          differentiable=False)


def _custom_rule(*ops, fun, fwd, bwd, num_consts):
    _check_types("custom_vjp_call", "fun", fun.in_types, ops)
    return fun.out_types


def _custom_impl(*ops, fun, fwd, bwd, num_consts):
    return eval_function(fun, list(ops))


custom_vjp_call = Primitive("custom_vjp_call", "control", _custom_rule, _custom_impl)


def _custom_vjp_fwd(primals, active, *, fun, fwd, bwd, num_consts):
    if any(active[:num_consts]):
        raise NonDifferentiableError(
            f"custom_vjp function {fun.name} closes over a value that is being "
            f"differentiated; pass that value as an argument instead")
    res = A.eval_rule(fwd, primals)
    n_out = len(fun.results)
    return res[:n_out], (primals, res[n_out:])


def _custom_vjp(cts, residuals, outs, *, fun, fwd, bwd, num_consts):
    primals, res = residuals
    cts = [ad.instantiate(c, o) for c, o in zip(cts, outs)]
    arg_cts = A.eval_rule(bwd, list(primals[:num_consts]) + list(res) + cts)
    return [None] * num_consts + [c if ad.is_float(x) else None
                                  for c, x in zip(arg_cts, primals[num_consts:])]


def _custom_jvp(primals, tangents, outs, *, fun, fwd, bwd, num_consts):
    return A.jvp_eval(fun, primals, tangents)


custom_vjp_call.vjp_fwd = _custom_vjp_fwd
custom_vjp_call.def_vjp(_custom_vjp)
custom_vjp_call.def_jvp(_custom_jvp)


# custom_jvp_call(*consts, *args; fun, jvp, num_consts): a function with a
# hand-written forward-mode rule ``jvp(*consts, *args, *arg_tangents) ->
# (*outs, *out_tangents)``, linear in the tangents. Forward mode calls the
# rule. Reverse mode transposes it: the rule is linear in the tangents, so
# its reverse-mode derivative with respect to them (taken at zero tangents,
# by the autodiff interpreter) is exactly its transpose.
custom_jvp_call = Primitive("custom_jvp_call", "control",
                            lambda *ops, fun, jvp, num_consts: _custom_rule(
                                *ops, fun=fun, fwd=None, bwd=None, num_consts=num_consts),
                            lambda *ops, fun, jvp, num_consts: eval_function(fun, list(ops)))


def _closed_over_error(fun):
    return NonDifferentiableError(
        f"custom_jvp function {fun.name} closes over a value that is being "
        f"differentiated; pass that value as an argument instead")


def _zero_tangents(args):
    return [ad.zeros_like(x) if ad.aval(x).shape else np.zeros((), ad.aval(x).dtype)
            for x in args]


def _custom_jvp_jvp(primals, tangents, outs, *, fun, jvp, num_consts):
    if any(t is not None for t in tangents[:num_consts]):
        raise _closed_over_error(fun)
    args = primals[num_consts:]
    ts = [ad.instantiate(t, x) if ad.is_float(x) else z
          for t, x, z in zip(tangents[num_consts:], args, _zero_tangents(args))]
    res = A.eval_rule(jvp, list(primals) + ts)
    n = len(fun.results)
    return res[:n], [t if ad.is_float(o) else None for t, o in zip(res[n:], res[:n])]


def _custom_jvp_vjp_fwd(primals, active, *, fun, jvp, num_consts):
    if any(active[:num_consts]):
        raise _closed_over_error(fun)
    return A.eval_rule(fun, primals), (primals, active)


def _custom_jvp_vjp(cts, residuals, outs, *, fun, jvp, num_consts):
    primals, active = residuals
    args = primals[num_consts:]
    n_ops, n = len(primals), len(fun.results)
    flags = [False] * n_ops + [a and ad.is_float(x) for a, x in zip(active[num_consts:], args)]
    _, tape = A.forward(jvp, list(primals) + _zero_tangents(args), flags)
    in_cts = A.backward(tape, [None] * n + list(cts))
    return [None] * num_consts + in_cts[n_ops:]


custom_jvp_call.vjp_fwd = _custom_jvp_vjp_fwd
custom_jvp_call.def_vjp(_custom_jvp_vjp)
custom_jvp_call.def_jvp(_custom_jvp_jvp)


# --- batching rules (vmap) ---------------------------------------------------------------
# Sub-Functions are batched with batch_interpreter.batch_function. A loop
# carry is batched if it is on entry or if the body makes it so (a fixpoint).
# A batched predicate runs every example's path: cond evaluates both
# branches and selects; while loops until no example's predicate holds,
# freezing (by select) the carries of the examples that are done.


def _select_batched(pred, on_true, on_false):
    """Per example: ``on_true`` where ``pred`` (shape (B,)) holds."""
    p_ = ad.p("broadcast_in_dim", pred, shape=ad.shape(on_true), broadcast_dimensions=(0,))
    return ad.p("select", p_, on_true, on_false)


def _cond_batch(vals, batched, *, true_fun, false_fun):
    size = bu.axis_size(vals, batched)
    ops, flags = vals[1:], list(batched[1:])
    if batched[0]:
        t, tb = B.batch_eval(true_fun, ops, flags)
        f, fb = B.batch_eval(false_fun, ops, flags)
        t = bu.materialize(t, tb, size)
        f = bu.materialize(f, fb, size)
        return [_select_batched(vals[0], a, b) for a, b in zip(t, f)], [True] * len(t)
    outs = [a or b for a, b in zip(B.batch_function(true_fun, flags, size)[2],
                                   B.batch_function(false_fun, flags, size)[2])]
    traced = [B.batch_function(f, flags, size, force_out=outs)[:2] + (len(ops),)
              for f in (true_fun, false_fun)]
    (bt, bf), consts = close_over(traced)
    return cond.bind(vals[0], *consts, *ops, true_fun=bt, false_fun=bf), outs


def _any(pred):
    """True if any example's bool predicate (shape (B,)) holds."""
    n = ad.p("reduce_max", ad.p("convert", pred, dtype="int32"), axes=(0,))
    return ad.p("gt", n, np.zeros((), np.int32))


def _while_batch(vals, batched, *, cond_fun, body, num_consts):
    size = bu.axis_size(vals, batched)
    nc, nk = num_consts, len(vals) - num_consts
    flags = B.carry_fixpoint(body, batched, range(nc, nc + nk), range(nk))
    if B.batch_function(cond_fun, flags, size)[2][0]:
        flags = list(flags[:nc]) + [True] * nk
    vals = [bu.bcast(v, size) if f and not b else v for v, b, f in zip(vals, batched, flags)]
    types = [B.batched_type(t, size) if f else t for t, f in zip(body.in_types, flags)]
    if not B.batch_function(cond_fun, flags, size)[2][0]:
        traced = [B.batch_function(cond_fun, flags, size)[:2] + (len(vals),),
                  B.batch_function(body, flags, size, force_out=flags[nc:])[:2] + (len(vals),)]
    else:
        def run_cond(*args):
            return [_any(B.batch_eval(cond_fun, args, flags)[0][0])]

        def run_body(*args):
            pred = B.batch_eval(cond_fun, args, flags)[0][0]
            new, nb = B.batch_eval(body, args, flags)
            new = bu.materialize(new, nb, size)
            return [_select_batched(pred, n, o) for n, o in zip(new, args[nc:])]
        traced = [trace_function(run_cond, types, cond_fun.name + "_vmap") + (len(vals),),
                  trace_function(run_body, types, body.name + "_vmap") + (len(vals),)]
    (fc, fb), consts = close_over(traced)
    outs = while_.bind(*consts, *vals, cond_fun=fc, body=fb, num_consts=len(consts) + nc)
    return outs, flags[nc:]


def _scan_batch(vals, batched, *, body, num_consts, num_carry, length, reverse):
    size = bu.axis_size(vals, batched)
    nc, nk = num_consts, num_carry
    flags = B.carry_fixpoint(body, batched, range(nc, nc + nk), range(nk))
    vals = [bu.bcast(v, size) if f and not b else v for v, b, f in zip(vals, batched, flags)]
    # scanned inputs: (B, length, ...) -> (length, B, ...), so a slice is batched
    vals = vals[:nc + nk] + [bu.moveaxis(x, 0, 1) if f else x
                             for x, f in zip(vals[nc + nk:], flags[nc + nk:])]
    n_y = len(body.results) - nk
    y_flags = B.batch_function(body, flags, size)[2][nk:]
    fn, captured, _ = B.batch_function(body, flags, size, force_out=flags[nc:nc + nk] + y_flags)
    (fn,), consts = close_over([(fn, captured, len(vals))])
    outs = scan.bind(*consts, *vals, body=fn, num_consts=len(consts) + nc, num_carry=nk,
                     length=length, reverse=reverse)
    ys = [bu.moveaxis(y, 1, 0) if f else y for y, f in zip(outs[nk:], y_flags)]
    assert len(ys) == n_y
    return outs[:nk] + ys, flags[nc:nc + nk] + y_flags


def _custom_vjp_batch(vals, batched, *, fun, fwd, bwd, num_consts):
    size = bu.axis_size(vals, batched)
    flags = list(batched)
    n_out, n_in = len(fun.results), len(vals)
    fun_t = B.batch_function(fun, flags, size, force_out=[True] * n_out)
    fwd_t = B.batch_function(fwd, flags, size, force_out=[True] * len(fwd.results))
    # bwd takes (*consts, *residuals, *cts): residuals and cts are batched;
    # an argument shared by the batch gets the sum of the examples' cotangents
    bwd_flags = flags[:num_consts] + [True] * (len(bwd.params) - num_consts)
    args = vals[num_consts:]

    def run_bwd(*a):
        cts, cb = B.batch_eval(bwd, a, bwd_flags)
        return [ad.p("reduce_sum", c, axes=(0,)) if b and not f else
                (bu.bcast(c, size) if f and not b else c)
                for c, b, f in zip(cts, cb, flags[num_consts:])]
    bwd_types = [B.batched_type(t, size) if f else t for t, f in zip(bwd.in_types, bwd_flags)]
    bwd_t = trace_function(run_bwd, bwd_types, bwd.name + "_vmap")
    assert len(args) == len(bwd.results)
    (fb, ff, fw), consts = close_over([fun_t[:2] + (n_in,), fwd_t[:2] + (n_in,),
                                       bwd_t + (len(bwd.params),)])
    outs = custom_vjp_call.bind(*consts, *vals, fun=fb, fwd=ff, bwd=fw,
                                num_consts=len(consts) + num_consts)
    return outs, [True] * n_out


cond.def_batch(_cond_batch)
while_.def_batch(_while_batch)
scan.def_batch(_scan_batch)
custom_vjp_call.def_batch(_custom_vjp_batch)


def _custom_jvp_batch(vals, batched, *, fun, jvp, num_consts):
    # tangents are batched as their primals; every result is batched
    size = bu.axis_size(vals, batched)
    flags = list(batched)
    fun_t = B.batch_function(fun, flags, size, force_out=[True] * len(fun.results))
    jvp_t = B.batch_function(jvp, flags + flags[num_consts:], size,
                             force_out=[True] * len(jvp.results))
    (ff, fj), consts = close_over([fun_t[:2] + (len(vals),),
                                   jvp_t[:2] + (len(vals) + len(vals) - num_consts,)])
    outs = custom_jvp_call.bind(*consts, *vals, fun=ff, jvp=fj,
                                num_consts=len(consts) + num_consts)
    return outs, [True] * len(outs)


custom_jvp_call.def_batch(_custom_jvp_batch)
stop_gradient.def_batch(lambda vals, batched: ([stop_gradient(vals[0])], [True]))
