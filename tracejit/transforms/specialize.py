"""Binding symbolic dimensions: a Function traced with symbolic sizes
(``f32[b,784]``, tracejit/ir/dims.py) becomes the concrete Function for
one set of sizes, which every backend compiles as it compiles any other.

``dimension_size`` instructions become constants here, so a compiled plan
divides a mean by a number it knows.
"""
from __future__ import annotations

from ..ir.core import Function, Instr, Var
from ..ir.dims import Dim
from ..ir.types import TensorType


def is_symbolic(fn: Function) -> bool:
    """Whether any value of ``fn`` (sub-Functions included) has a symbolic dimension."""
    for v in fn.params:
        if v.type.symbolic:
            return True
    for ins in fn.body:
        if any(r.type.symbolic for r in ins.results):
            return True
        if any(is_symbolic(f) for f in ins.subfunctions().values()):
            return True
    return False


def _size(d, sizes):
    return d.evaluate(sizes) if isinstance(d, Dim) else d


def _attr(value, sizes):
    if isinstance(value, Dim):
        return value.evaluate(sizes)
    if isinstance(value, tuple):
        return tuple(_attr(v, sizes) for v in value)
    if isinstance(value, Function):
        return specialize(value, sizes)
    return value


def specialize(fn: Function, sizes: dict) -> Function:
    """``fn`` with each symbolic dimension replaced by its size from
    ``sizes`` (``{name: int}``)."""
    env = {}

    def var(v: Var) -> Var:
        if v not in env:
            t = v.type
            shape = tuple(_size(d, sizes) for d in t.shape)
            env[v] = Var(TensorType(shape, t.dtype, t.weak), v.src, v.name)
        return env[v]

    body = []
    for ins in fn.body:
        if ins.prim == "dimension_size":
            x = ins.operands[0]
            n = 1
            for a in ins.attrs["axes"]:
                n *= _size(x.type.shape[a], sizes)
            dtype = ins.attrs["dtype"]
            value = float(n) if dtype.startswith("float") else int(n)
            body.append(Instr("constant", [], {"value": value, "dtype": dtype, "weak": False},
                              [var(ins.results[0])]))
            continue
        attrs = {k: _attr(v, sizes) for k, v in ins.attrs.items()}
        body.append(Instr(ins.prim, [var(v) for v in ins.operands], attrs,
                          [var(r) for r in ins.results]))
    return Function([var(v) for v in fn.params], body, [var(v) for v in fn.results], fn.name)


__all__ = ["is_symbolic", "specialize"]
