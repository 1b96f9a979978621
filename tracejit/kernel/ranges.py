"""Value ranges: what a kernel can know about its integer values.

``Facts`` knows the instruction producing each value of a Function and
bounds integer values (iotas, constants, and what clamps, selects,
converts and arithmetic make of them). With that it turns a gather's index
into an index component (tracejit/kernel/index.py) when the index is an
iota, a constant or a clamp of one, and splits a row-major linear index
``row * n + col`` into its row and column: a ``logp[arange(n), labels]``
pick reads the current row, which lets fusion keep it in the row's kernel.
"""
from __future__ import annotations

import math

from ..ir.core import Function, Instr, Var
from .index import Const, ValueAt, reads

_INT_RANGE = {"bool": (0, 1), "uint32": (0, 2**32 - 1), "int32": (-2**31, 2**31 - 1),
              "int64": (-2**63, 2**63 - 1)}


class Facts:
    """Producers of values and integer value ranges, for the whole program."""

    def __init__(self, fn: Function, opaque=()):
        self.producer: dict[Var, Instr] = {}
        for ins in fn.body:
            for r in ins.results:
                if r not in opaque:
                    self.producer[r] = ins
        self._ranges: dict[Var, tuple] = {}

    def range(self, v: Var) -> tuple:
        """(lo, hi) bounds of an integer value (±inf when unknown)."""
        r = self._ranges.get(v)
        if r is None:
            r = self._ranges[v] = self._compute_range(v)
        return r

    def _compute_range(self, v: Var):
        full = _INT_RANGE.get(v.dtype, (-math.inf, math.inf))
        ins = self.producer.get(v)
        if ins is None:
            return full
        p, ops = ins.prim, ins.operands
        if p == "constant":
            val = ins.attrs["value"]
            return (val, val) if isinstance(val, (int, bool)) else full
        if p == "iota":
            return (0, max(ins.attrs["shape"][ins.attrs["dimension"]] - 1, 0))
        if p in ("broadcast_in_dim", "reshape", "transpose", "slice", "rev", "gather") or \
                (p == "convert" and v.dtype in _INT_RANGE and ops[0].dtype in _INT_RANGE):
            lo, hi = self.range(ops[0])
            return (lo, hi) if full[0] <= lo and hi <= full[1] else full
        if p == "select":
            known = self.truth(ops[0])
            if known is not None:
                return self.range(ops[1] if known else ops[2])
            (a, b), (c, d) = self.range(ops[1]), self.range(ops[2])
            return (min(a, c), max(b, d))
        if p in ("max", "min", "add", "mul", "sub"):
            (a, b), (c, d) = self.range(ops[0]), self.range(ops[1])
            if p == "max":
                return (max(a, c), max(b, d))
            if p == "min":
                return (min(a, c), min(b, d))
            if p == "add":
                lo, hi = a + c, b + d
            elif p == "sub":
                lo, hi = a - d, b - c
            else:
                if any(math.isinf(x) for x in (a, b, c, d)):
                    return full
                prods = (a * c, a * d, b * c, b * d)
                lo, hi = min(prods), max(prods)
            return (lo, hi) if full[0] <= lo and hi <= full[1] else full
        return full

    def truth(self, pred: Var):
        """True/False when a comparison's outcome follows from ranges, else None."""
        ins = self.producer.get(pred)
        if ins is None or ins.prim not in ("lt", "le", "gt", "ge") or \
                ins.operands[0].dtype not in _INT_RANGE:
            return None
        (a, b), (c, d) = self.range(ins.operands[0]), self.range(ins.operands[1])
        if ins.prim in ("gt", "ge"):
            (a, b), (c, d) = (c, d), (a, b)   # x > y  <=>  y < x
            strict = ins.prim == "gt"
        else:
            strict = ins.prim == "lt"
        if (b < c) if strict else (b <= c):
            return True
        if (a >= d) if strict else (a > d):
            return False
        return None

    def resolve(self, v: Var, comps: tuple):
        """An index component equal to the value of integer ``v`` at ``comps``,
        when it is an iota, a constant or a clamp/convert/wrap of one."""
        ins = self.producer.get(v)
        if ins is None or v.dtype not in _INT_RANGE or v.dtype == "bool":
            return None
        p, ops = ins.prim, ins.operands
        if p == "iota":
            return comps[ins.attrs["dimension"]]
        if p == "constant":
            return Const(int(ins.attrs["value"]))
        if p in ("broadcast_in_dim", "reshape", "transpose"):
            return self.resolve(ops[0], reads(ins, comps, self)[0][1])
        if p == "convert" and ops[0].dtype in _INT_RANGE and ops[0].dtype != "bool":
            lo, hi = self.range(ops[0])
            lo_t, hi_t = _INT_RANGE[v.dtype]
            return self.resolve(ops[0], comps) if lo_t <= lo and hi <= hi_t else None
        if p == "select":
            known = self.truth(ops[0])
            return None if known is None else self.resolve(ops[1 if known else 2], comps)
        if p in ("max", "min"):
            (a, b), (c, d) = self.range(ops[0]), self.range(ops[1])
            if (p == "max" and a >= d) or (p == "min" and b <= c):
                return self.resolve(ops[0], comps)
            if (p == "max" and c >= b) or (p == "min" and d <= a):
                return self.resolve(ops[1], comps)
        return None

    def index(self, v: Var, comps: tuple, n: int):
        """The component for a gather index: ``v`` at ``comps`` wrapped and
        clamped into [0, n), resolved when its range needs neither."""
        lo, hi = self.range(v)
        if 0 <= lo and hi <= n - 1:
            c = self.resolve(v, comps)
            if c is not None:
                return c
        return ValueAt(v, comps, n)

    def split_linear(self, v: Var, comps: tuple, dims: tuple):
        """Components (one per dim) of a row-major linear index ``v`` into an
        array of shape ``dims``, when v = p * dims[-1] + q with q in
        [0, dims[-1]) (recursively), else None."""
        if len(dims) == 1:
            lo, hi = self.range(v)
            return (self.index(v, comps, dims[0]),) if 0 <= lo and hi < dims[0] else None
        ins = self.producer.get(v)
        while ins is not None and ins.prim in ("broadcast_in_dim", "convert") and \
                ins.operands[0].dtype in _INT_RANGE:
            if ins.prim == "convert":
                lo, hi = self.range(ins.operands[0])
                if not (0 <= lo and hi <= _INT_RANGE[v.dtype][1]):
                    return None
            comps = reads(ins, comps, self)[0][1]
            v = ins.operands[0]
            ins = self.producer.get(v)
        if ins is None or ins.prim != "add":
            return None
        for p_var, q in (ins.operands, ins.operands[::-1]):
            mul = self.producer.get(p_var)
            lo, hi = self.range(q)
            if mul is None or mul.prim != "mul" or not (0 <= lo and hi < dims[-1]):
                continue
            for a, k in (mul.operands, mul.operands[::-1]):
                if self.range(k) == (dims[-1], dims[-1]):
                    head = self.split_linear(a, comps, dims[:-1])
                    if head is not None:
                        return head + (self.index(q, comps, dims[-1]),)
        return None
