"""Algebraic rewrites: local identities that autodiff and tracejit.numpy
leave behind (``x * 1``, ``x - 0``, identity reshapes, transposes of
transposes, ...).

Every rewrite is exact in IEEE arithmetic for every input, NaN, inf and the
sign of zero included, and keeps types (weak flag included). Hence what is
deliberately *not* rewritten:

- ``x * 0 -> 0``: inf * 0 and NaN * 0 are NaN.
- ``x + 0.0 -> x`` for floats: -0.0 + 0.0 is +0.0, and 1 / (x + 0.0)
  tells the two apart. ``x + (-0.0)``, ``x - 0.0`` and integer ``x + 0``
  are identities and are rewritten.
- a float ``reduce_sum`` over no (or only size-1) axes: it is ``x + 0.0``.
- ``convert(convert(x))``: the inner conversion may round.

A rule takes the instruction (operands already renamed) and the pass's
context, which answers ``ctx.splat(v)`` (the scalar every element of ``v``
equals when ``v`` is a constant or a broadcast of one, else None) and
``ctx.producer(v)`` (the instruction defining ``v``, None for parameters).
It returns None (no change), a Var that replaces the single result, or a
list of instructions that define the same result Var instead.
"""
from __future__ import annotations


import numpy as np

from ..ir.core import Function, Instr, Var
from ..ir.types import FLOATS, TensorType
from ..kernel.index import Const, Loop, ValueAt
from ..kernel.ranges import Facts

RULES: dict = {}


def rule(*prims):
    def register(fn):
        for p in prims:
            RULES[p] = fn
        return fn
    return register


def rewrite(ins, ctx):
    r = RULES.get(ins.prim)
    return r(ins, ctx) if r else None


def _same(x, ins):
    """``x`` replaces the result when it has exactly the result's type."""
    return x if x.type == ins.results[0].type else None


def _is(value, target, dtype) -> bool:
    """``value`` (a 0-d array or None) is ``target``; for float zeros the
    sign must match too."""
    if value is None or value != target:
        return False
    if dtype in FLOATS and target == 0:
        return bool(np.signbit(value)) == bool(np.signbit(target))
    return True


@rule("add")
def _add(ins, ctx):
    x, y = ins.operands
    # x + (-0.0) == x for every float x; for integers and bools any zero
    if _is(ctx.splat(y), -0.0, y.dtype):
        return _same(x, ins)
    if _is(ctx.splat(x), -0.0, x.dtype):
        return _same(y, ins)
    return None


@rule("sub")
def _sub(ins, ctx):
    x, y = ins.operands
    return _same(x, ins) if _is(ctx.splat(y), 0.0, y.dtype) else None


@rule("mul")
def _mul(ins, ctx):
    x, y = ins.operands
    if _is(ctx.splat(y), 1, y.dtype):
        return _same(x, ins)
    if _is(ctx.splat(x), 1, x.dtype):
        return _same(y, ins)
    return None


@rule("div")
def _div(ins, ctx):
    x, y = ins.operands
    return _same(x, ins) if _is(ctx.splat(y), 1, y.dtype) else None


@rule("neg")
def _neg(ins, ctx):
    inner = ctx.producer(ins.operands[0])
    if inner is not None and inner.prim == "neg":
        return _same(inner.operands[0], ins)
    return None


@rule("convert")
def _convert(ins, ctx):
    return _same(ins.operands[0], ins)


def _scalar_broadcast(ins, ctx):
    """A data movement of a broadcast scalar is a broadcast of that scalar."""
    inner = ctx.producer(ins.operands[0])
    if inner is None or inner.prim != "broadcast_in_dim" or inner.operands[0].shape != ():
        return None
    r = ins.results[0]
    if inner.operands[0].type.weak != r.type.weak:
        return None
    return [Instr("broadcast_in_dim", inner.operands[:1],
                  {"shape": r.shape, "broadcast_dimensions": ()}, [r])]


def _unit_reshape_dims(y, x, dims, rank):
    """broadcast_dimensions taking ``y`` straight to the output, when the
    reshape ``y -> x`` only inserts or removes size-1 dims and ``x`` maps
    by ``dims``; None when there is no such strictly increasing map."""
    if [d for d in y.shape if d != 1] != [d for d in x.shape if d != 1]:
        return None
    targets = [dims[j] for j, d in enumerate(x.shape) if d != 1]
    new, k = [], 0
    for d in y.shape:
        if d != 1:
            new.append(targets[k])
            k += 1
        else:   # a size-1 dim goes to any free output dim in order
            new.append(new[-1] + 1 if new else 0)
            if new[-1] >= (targets[k] if k < len(targets) else rank):
                return None
    return tuple(new)


@rule("broadcast_in_dim")
def _broadcast(ins, ctx):
    x = ins.operands[0]
    if x.shape == ins.results[0].shape:
        return _same(x, ins)   # sorted broadcast_dimensions: the identity
    inner = ctx.producer(x)
    dims, shape = ins.attrs["broadcast_dimensions"], ins.attrs["shape"]
    if inner is not None and inner.prim == "broadcast_in_dim":
        composed = tuple(dims[d] for d in inner.attrs["broadcast_dimensions"])
    elif inner is not None and inner.prim == "reshape":
        composed = _unit_reshape_dims(inner.operands[0], x, dims, len(shape))
        if composed is None:
            return None
    else:
        return None
    return [Instr("broadcast_in_dim", inner.operands[:1],
                  {"shape": shape, "broadcast_dimensions": composed}, ins.results)]


@rule("reshape")
def _reshape(ins, ctx):
    x, r = ins.operands[0], ins.results[0]
    if x.shape == r.shape:
        return _same(x, ins)
    inner = ctx.producer(x)
    if inner is not None and inner.prim == "reshape":
        return [Instr("reshape", inner.operands[:1], {"new_shape": r.shape}, ins.results)]
    return _scalar_broadcast(ins, ctx)


@rule("transpose")
def _transpose(ins, ctx):
    perm = tuple(ins.attrs["permutation"])
    if perm == tuple(range(len(perm))):
        return _same(ins.operands[0], ins)
    inner = ctx.producer(ins.operands[0])
    if inner is not None and inner.prim == "transpose":
        first = inner.attrs["permutation"]
        composed = tuple(first[p] for p in perm)
        y = inner.operands[0]
        if composed == tuple(range(len(composed))):
            return _same(y, ins)
        return [Instr("transpose", [y], {"permutation": composed}, ins.results)]
    return _scalar_broadcast(ins, ctx)


@rule("rev", "slice")
def _move(ins, ctx):
    return _scalar_broadcast(ins, ctx)


@rule("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")
def _reduce(ins, ctx):
    """Reducing only size-1 axes (or none) keeps every element: a reshape.
    Not a float reduce_sum, which starts from +0.0 (as NumPy and XLA do):
    a sum over no axes is ``x + 0.0``, +0.0 where x is -0.0."""
    x, r = ins.operands[0], ins.results[0]
    if any(x.shape[a] != 1 for a in ins.attrs["axes"]) or (
            ins.prim == "reduce_sum" and x.dtype in FLOATS):
        return None
    if x.shape == r.shape:
        return _same(x, ins)
    return [Instr("reshape", [x], {"new_shape": r.shape}, ins.results)]


@rule("select")
def _select(ins, ctx):
    pred, on_true, on_false = ins.operands
    if on_true is on_false:
        return _same(on_true, ins)
    p = ctx.splat(pred)
    if p is not None:
        return _same(on_true if p else on_false, ins)
    return None


@rule("guard")
def _guard(ins, ctx):
    """guard(g, v) is v where g is a nonzero constant (a cotangent of ones),
    and g itself (zeros) where g is a constant +0: a zero cotangent's whole
    product chain then folds away."""
    g, v = ins.operands
    cg = ctx.splat(g)
    if cg is None:
        return None
    if cg != 0:
        return _same(v, ins)
    return _same(g, ins) if _is(cg, 0.0, g.dtype) else None


# --- rewrites of whole bodies that help the backends (run by fusion) ------------------------

def absorb_transposes(body, producer):
    """dot_general reads a transposed operand directly (new dimension numbers)."""
    out = []
    for ins in body:
        if ins.prim == "dot_general":
            (lc, rc), (lb, rb) = ins.attrs["dimension_numbers"]
            ops = list(ins.operands)
            dims = [[lc, lb], [rc, rb]]
            for k in range(2):
                t = producer.get(ops[k])
                if t is not None and t.prim == "transpose":
                    perm = t.attrs["permutation"]
                    ops[k] = t.operands[0]
                    dims[k] = [tuple(perm[d] for d in ds) for ds in dims[k]]
            if ops != ins.operands:
                dn = ((tuple(dims[0][0]), tuple(dims[1][0])), (tuple(dims[0][1]), tuple(dims[1][1])))
                ins = Instr("dot_general", ops, dict(ins.attrs, dimension_numbers=dn), ins.results)
        out.append(ins)
    return out


def swap_transposed_dots(body, results):
    """``transpose(dot_general(a, b))`` that swaps the two free-dim groups of
    a dot used nowhere else becomes ``dot_general(b, a)``: BLAS writes the
    transposed layout directly (weight gradients ``x.T @ dy``)."""
    uses = {}
    for ins in body:
        for x in ins.operands:
            uses[x] = uses.get(x, 0) + 1
    for v in results:
        uses[v] = uses.get(v, 0) + 1
    producer = {r: ins for ins in body for r in ins.results}
    out = []
    for ins in body:
        d = producer.get(ins.operands[0]) if ins.prim == "transpose" else None
        if d is not None and d.prim == "dot_general" and uses[d.results[0]] == 1:
            (lc, rc), (lb, rb) = d.attrs["dimension_numbers"]
            a, b = d.operands
            nl = len(a.shape) - len(lc) - len(lb)
            nr = len(b.shape) - len(rc) - len(rb)
            nb = len(lb)
            want = tuple(range(nb)) + tuple(range(nb + nl, nb + nl + nr)) + \
                tuple(range(nb, nb + nl))
            if tuple(ins.attrs["permutation"]) == want:
                ins = Instr("dot_general", [b, a],
                            dict(d.attrs, dimension_numbers=((rc, lc), (rb, lb))), ins.results)
        out.append(ins)
    return out


def _emitter(body):
    """``emit(prim, operands, attrs, type)``: appends an instruction to
    ``body`` and returns its result."""
    def emit(prim, operands, attrs, type_):
        r = Var(type_)
        body.append(Instr(prim, operands, attrs, [r]))
        return r
    return emit


def one_hot_scatters(body, fn):
    """``scatter_add(x, i * n + q, u)`` on a flattened ``[m * n]`` array, with
    ``i`` the position in the index array and ``q`` in ``[0, n)``, adds ``u[i]``
    at column ``q[i]`` of row ``i``: it is ``x + select(iota == q, u, 0)`` on
    the ``[m, n]`` view, an elementwise computation that fuses (the gradient
    of picking ``logp[arange(m), labels]``). The index may have unit dims
    after the first (``[m, 1]``: ``take_along_axis(logp, labels[:, None], 1)``)."""
    facts = Facts(Function(fn.params, body, fn.results))
    out = []
    for ins in body:
        x = ins.operands[0] if ins.prim == "scatter_add" else None
        idx_shape = ins.operands[1].shape if x is not None else ()
        if x is None or len(x.shape) != 1 or not idx_shape or \
                any(d != 1 for d in idx_shape[1:]):
            out.append(ins)
            continue
        idx, upd = ins.operands[1], ins.operands[2]
        m = idx.shape[0]
        if m == 0 or x.shape[0] % m:
            out.append(ins)
            continue
        n = x.shape[0] // m
        comps = (Loop(0),) + (Const(0),) * (len(idx_shape) - 1)
        split = facts.split_linear(idx, comps, (m, n))
        q = split[1] if split is not None and split[0] == Loop(0) else None
        if not isinstance(q, ValueAt) or q.comps != comps or q.var.shape != idx_shape:
            out.append(ins)
            continue
        q = q.var
        t = x.type
        new = []
        emit = _emitter(new)
        if len(idx_shape) > 1:   # [m, 1, ...] -> [m]
            q = emit("reshape", [q], {"new_shape": (m,)}, TensorType((m,), q.dtype))
            upd = emit("reshape", [upd], {"new_shape": (m,)}, TensorType((m,), upd.dtype))
        shape = (m, n)
        x2 = emit("reshape", [x], {"new_shape": shape}, TensorType(shape, t.dtype))
        qb = emit("broadcast_in_dim", [q], {"shape": shape, "broadcast_dimensions": (0,)},
                  TensorType(shape, q.dtype))
        col = emit("iota", [], {"shape": shape, "dimension": 1, "dtype": q.dtype},
                   TensorType(shape, q.dtype))
        hit = emit("eq", [col, qb], {}, TensorType(shape, "bool"))
        ub = emit("broadcast_in_dim", [upd], {"shape": shape, "broadcast_dimensions": (0,)},
                  TensorType(shape, t.dtype))
        zero = emit("constant", [], {"value": False if t.dtype == "bool" else
                                     0.0 if t.dtype in FLOATS else 0,
                                     "dtype": t.dtype, "weak": False}, TensorType((), t.dtype))
        zb = emit("broadcast_in_dim", [zero], {"shape": shape, "broadcast_dimensions": ()},
                  TensorType(shape, t.dtype))
        added = emit("add", [x2, emit("select", [hit, ub, zb], {}, TensorType(shape, t.dtype))],
                     {}, TensorType(shape, t.dtype))
        new.append(Instr("reshape", [added], {"new_shape": x.shape}, ins.results))
        out.extend(new)
    return out
