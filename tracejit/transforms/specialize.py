"""Binding symbolic dimensions: a Function traced with symbolic sizes
(``f32[b,784]``, tracejit/ir/dims.py) becomes the concrete Function for
one set of sizes, which every backend compiles as it compiles any other.

``dimension_size`` instructions become constants in sub-Functions; at the
top level, with ``size_params=True``, they become extra trailing parameters
instead, whose values the caller passes: the generated kernels then read
the count of a mean from memory, so their source (and the kernel cache's
entry) is the same for every batch size.
"""
from __future__ import annotations

import numpy as np

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


def specialize(fn: Function, sizes: dict, size_params: bool = False):
    """``fn`` with each symbolic dimension replaced by its size from
    ``sizes`` (``{name: int}``). With ``size_params``, returns ``(function,
    values)``: each ``dimension_size`` is a trailing parameter of the
    function, to be passed ``values`` (0-d arrays)."""
    env = {}
    extra_params, values, by_value = [], [], {}

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
            if not size_params:
                body.append(Instr("constant", [], {"value": value, "dtype": dtype, "weak": False},
                                  [var(ins.results[0])]))
            elif (value, dtype) in by_value:   # one parameter per distinct size
                env[ins.results[0]] = by_value[value, dtype]
            else:
                by_value[value, dtype] = var(ins.results[0])
                extra_params.append(by_value[value, dtype])
                values.append(np.asarray(value, dtype))
            continue
        attrs = {k: _attr(v, sizes) for k, v in ins.attrs.items()}
        body.append(Instr(ins.prim, [var(v) for v in ins.operands], attrs,
                          [var(r) for r in ins.results]))
    out = Function([var(v) for v in fn.params] + extra_params, body,
                   [var(v) for v in fn.results], fn.name)
    return (out, values) if size_params else out


__all__ = ["is_symbolic", "specialize"]
