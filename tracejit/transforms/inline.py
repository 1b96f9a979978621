"""Inlining of ``call`` instructions (``tracejit.subfunction``).

A subfunction is kept as one ``call`` instruction in the traced IR so that
a reader (``tracejit ir``, the DOT graph, TensorBoard) sees the call
boundary; the optimizer wants the opposite, one flat program to simplify
and fuse across the boundary. :func:`inline_calls` replaces each call by
a copy of its body, with fresh values (a sub-Function called twice is
copied twice) that keep their names, recursively (calls inside calls,
calls inside the sub-Functions of cond, while and scan).
"""
from __future__ import annotations

from ..ir.core import Function, Instr, Var


def has_calls(fn: Function) -> bool:
    return any(ins.prim == "call" or any(has_calls(f) for f in _functions(ins))
               for ins in fn.body)


def inline_calls(fn: Function) -> Function:
    """``fn`` with every ``call`` instruction replaced by its body."""
    if not has_calls(fn):
        return fn
    body: list[Instr] = []
    env: dict = {}
    _inline_into(body, fn.body, env)
    return Function(fn.params, body, [env.get(v, v) for v in fn.results], fn.name)


def _functions(ins: Instr):
    for value in ins.attrs.values():
        yield from functions_in(value)


def functions_in(value):
    """The sub-Functions in an attribute value (a Function, or tuples holding them)."""
    if isinstance(value, Function):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from functions_in(v)


def map_functions(value, transform):
    """An attribute value with each sub-Function ``f`` in it replaced by ``transform(f)``."""
    if isinstance(value, Function):
        return transform(value)
    if isinstance(value, tuple):
        return tuple(map_functions(v, transform) for v in value)
    return value


def _inline_into(out: list, instrs, env: dict) -> None:
    """Append ``instrs`` to ``out`` with operands renamed by ``env`` (Var ->
    Var; a Var not in it stands for itself) and calls expanded."""
    for ins in instrs:
        operands = [env.get(v, v) for v in ins.operands]
        if ins.prim == "call":
            fun = ins.attrs["fun"]
            inner = dict(zip(fun.params, operands))
            for ins_ in fun.body:   # fresh values: the same body may be inlined twice
                for r in ins_.results:
                    inner[r] = Var(r.type, r.src, r.name)
            _inline_into(out, fun.body, inner)
            env.update((r, inner.get(v, v)) for r, v in zip(ins.results, fun.results))
            continue
        attrs = {k: map_functions(v, inline_calls) for k, v in ins.attrs.items()}
        results = [env.get(r, r) for r in ins.results]
        out.append(Instr(ins.prim, operands, attrs, results))
