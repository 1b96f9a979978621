"""What the CPU and CUDA kernel writers share: naming dimensions and
constants, placing each statement in the outermost scope whose loop
variables it uses, rendering fusion's index components, memoizing a value
per (index, scope), pad and concatenate as index ops, and the order of a
reduction kernel's phases.

A subclass sets the class attributes ``snippets`` (its backend's snippet
table, for literals) and ``Block`` (its scope class), and in ``__init__``
the attributes ``dims``, ``consts``, ``deps``, ``ntmp``, ``stack`` (open
scopes, outermost first) and ``space`` (the iteration space); it implements
``_compute(v, comps)``, the code of value ``v`` at index ``comps``.
"""
from __future__ import annotations

from ..ir.core import Var
from ..transforms.fusion import REDUCTIONS, reads


class LoweringError(Exception):
    """A kernel body uses something the template cannot generate."""


class ScopedWriter:
    # --- names -----------------------------------------------------------------------------
    def dim(self, n) -> str:
        n = int(n)
        if n <= 1:
            return str(n)
        if n not in self.dims:
            self.dims[n] = f"d{len(self.dims)}"
        return self.dims[n]

    def const(self, value, dtype) -> str:
        text = self.snippets.literal(value, dtype)
        if text not in self.consts:
            self.consts[text] = f"K{len(self.consts)}"
        return self.consts[text]

    def loopvar(self, d):
        return "0" if self.space.shape[d] == 1 else f"i{d}"

    # --- placement -------------------------------------------------------------------------
    def _target(self, deps):
        for b in reversed(self.stack):
            if b.binds & deps:
                return b
        return self.stack[0]

    def emit(self, expr, deps, key=None):
        """A temporary holding ``expr``, placed in the outermost scope that
        binds every loop variable in ``deps``."""
        deps = frozenset(deps)
        block = self._target(deps)
        name = f"t{self.ntmp}"
        self.ntmp += 1
        block.add(f"{name} = {expr}")
        self.deps[name] = deps
        if key is not None:
            block.memo[key] = name
        return name

    def open(self, header, binds):
        b = self.Block(header, binds)
        parent = self.stack[-1]
        parent.add(b)
        b.prev_open, parent.open = parent.open, b
        self.stack.append(b)
        return b

    def close(self):
        b = self.stack.pop()
        self.stack[-1].open = b.prev_open
        return b

    def dep(self, code):
        return self.deps.get(code, frozenset())

    # --- index components ----------------------------------------------------------------
    def render(self, c):
        """(code, deps) of an index component (fusion's module docstring)."""
        tag = c[0]
        if tag == "L":
            v = self.loopvar(c[1])
            return v, (frozenset() if v == "0" else frozenset([v]))
        if tag == "C":
            return str(c[1]), frozenset()
        if tag == "W":
            return c[1], frozenset([c[1]])
        if tag == "A":
            x, d = self.render(c[1])
            m, a = c[2], c[3]
            code = x if m == 1 else f"{x} * {m}"
            if a:
                code = f"{code} + {a}" if a > 0 else f"{code} - {-a}"
            return f"({code})", d
        if tag == "ADD":
            (x, dx), (y, dy) = self.render(c[1]), self.render(c[2])
            return f"({x} + {y})", dx | dy
        if tag == "REV":
            x, d = self.render(c[1])
            return f"({self.dim(c[2])} - 1 - {x})", d
        if tag == "CL":
            x, d = self.render(c[1])
            return f"min(max({x}, 0), {self.dim(c[2])} - 1)", d
        if tag == "FD":
            x, d = self.render(c[1])
            return f"({x} // {self.dim(c[2])})", d
        if tag == "DM":
            x, d = self.render(c[1])
            if c[2] == 1:
                return f"({x} % {self.dim(c[3])})", d
            return f"(({x} // {self.dim(c[2])}) % {self.dim(c[3])})", d
        if tag == "LIN":
            terms, deps, stride = [], frozenset(), 1
            for comp, n in reversed(list(zip(c[1], c[2]))):
                x, d = self.render(comp)
                deps |= d
                if x != "0":
                    terms.append(x if stride == 1 else f"{x} * {self.dim(stride)}")
                stride *= n
            return ("(" + " + ".join(reversed(terms)) + ")") if terms else "0", deps
        if tag == "V":
            _, var, comps, n = c
            x = self.value(var, comps)
            d = self.dep(x)
            key = ("norm", x, n)
            for b in reversed(self.stack):
                if key in b.memo:
                    return b.memo[key], d
            N = self.dim(n)
            expr = (f"min(max(i64({x}) + {N} if {x} < 0 else i64({x}), 0), {N} - 1)"
                    if var.dtype != "uint32" else f"min(i64({x}), {N} - 1)")
            return self.emit(expr, d, key), d
        raise LoweringError(f"index component {tag}")

    def index(self, comps):
        """Index string (arrays of rank 0 are indexed with shape (1,))."""
        parts = [self.render(c) for c in comps]
        deps = frozenset().union(*[d for _, d in parts]) if parts else frozenset()
        return (", ".join(p for p, _ in parts) if parts else "0"), deps

    # --- values ----------------------------------------------------------------------------
    def value(self, v: Var, comps: tuple) -> str:
        key = (v, comps)
        for b in reversed(self.stack):
            if key in b.memo:
                return b.memo[key]
        code = self._compute(v, comps)
        if code in self.deps or code.startswith("K") or code in ("True", "False"):
            self._target(self.dep(code)).memo[key] = code
        return code

    # --- index ops and reduction phases ------------------------------------------------------
    def _pad(self, ins, comps):
        (x, oc), (pv, _) = reads(ins, comps, self.facts)
        xv, padv = self.value(x, oc), self.value(pv, ())
        conds, deps = [], self.dep(xv) | self.dep(padv)
        for c, n, (lo, hi, it) in zip(comps, x.shape, ins.attrs["config"]):
            if lo == 0 and hi <= 0 and it == 0:   # every position is inside
                continue
            code, d = self.render(c if lo == 0 else ("A", c, 1, -lo))
            deps |= d
            span = (n - 1) * (it + 1) + 1 if n else 0
            cond = f"{code} >= 0 and {code} < {span}"
            if it:
                cond += f" and {code} % {it + 1} == 0"
            conds.append(f"({cond})")
        if not conds:
            return xv
        return self.emit(f"{xv} if ({' and '.join(conds)}) else {padv}", deps,
                         (ins.results[0], comps))

    def _concatenate(self, ins, comps):
        ax = ins.attrs["axis"]
        vals = [self.value(x, oc) for x, oc in reads(ins, comps, self.facts)]
        c, deps = self.render(comps[ax])
        for val in vals:
            deps |= self.dep(val)
        expr, off = vals[-1], 0
        bounds = []
        for x in ins.operands[:-1]:
            off += x.shape[ax]
            bounds.append(off)
        for val, b in reversed(list(zip(vals[:-1], bounds))):
            expr = f"{val} if {c} < {b} else ({expr})"
        return self.emit(expr, deps, (ins.results[0], comps))

    def _phases(self):
        """Phase of each own reduction and the reductions each value depends on."""
        memo = {}

        def reds_of(v):
            if v in memo:
                return memo[v]
            ins = self.producer.get(v)
            if ins is None:
                r = frozenset()
            elif ins.prim in REDUCTIONS:
                r = frozenset([v])
            else:
                r = frozenset()
                for x in ins.operands:
                    r |= reds_of(x)
            memo[v] = r
            return r
        phase = {}
        for ins in self.fn.body:
            if ins.prim in REDUCTIONS:
                deps = reds_of(ins.operands[0])
                phase[ins.results[0]] = 1 + max((phase[r] for r in deps), default=0)
        return phase, reds_of
