"""Fusion: group a Function's instructions into kernels.

The result is an ordinary Function in which each kernel is one instruction

    %5: f32[8,5], %6: f32[8] = fusion[kind='reduction'](%0, %1) {
      body = func @kernel0(...) -> (...) { ...the fused instructions... }
    }

``kind`` is ``'loop'`` (every output has the kernel's iteration shape) or
``'reduction'`` (reductions that share one operand shape and one set of
axes, their elementwise producers, and consumers at the full or at the
reduced shape: a row softmax, a log-softmax cross-entropy, a mean and a
variance). Everything else stays as it is: library calls (``dot_general``,
``conv_general``), scatters, control flow (whose sub-Functions are fused
recursively), and ``reshape`` of a materialized value (a view).

How kernels are chosen. A value is *materialized* (written to memory) when
a function result, an operand of a non-fusible instruction, or a reduction
result needs it; every other value is computed inline, at the index where a
consumer reads it (elementwise ops, broadcasts, reshapes, transposes,
slices, pads, concatenations, gathers, iotas, windowed reductions and
random bits are all index maps or computations at an index). Each
materialized value starts as a kernel of its own; kernels then merge
greedily (a reduction with the reductions it depends on, consumers with
the reductions they read, same-shape outputs that share inputs) when the
merged kernel has one iteration space, creates no cycle through another
kernel, and reads each of its own reduction results only at the current
row: the index analysis below (``reads``) follows indices symbolically,
including a gather whose flat index is ``row * n + label`` with ``label``
clamped into ``[0, n)``, which therefore reads the current row. Finally an
expensive value (``EXPENSIVE``: transcendental functions, windowed
reductions) that would be recomputed at two different indices or in two
kernels is materialized instead, and the kernels are formed again.

Before grouping, three rewrites help the backends: a transpose feeding a
``dot_general`` becomes its dimension numbers, a transpose of a dot's result
swaps the dot's operands, and a scatter-add of one value per row into a
flattened zero array (the gradient of ``logp[arange(n), labels]``) becomes
an elementwise one-hot select, which fuses.

Index components (``comps``, one per dimension of the value read) are small
tuples shared with the code generator, which renders them:

    ('L', d)              loop variable of iteration dimension d
    ('C', k)              the integer k
    ('A', c, m, a)        c * m + a             (slice)
    ('REV', c, n)         n - 1 - c             (rev)
    ('CL', c, n)          c clamped into [0, n) (pad, concatenate, windows)
    ('FD', c, k)          c // k                (pad with interior padding)
    ('ADD', c1, c2)       c1 + c2               (windows)
    ('LIN', comps, dims)  row-major linear index (reshape)
    ('DM', c, s, n)       (c // s) % n          (reshape)
    ('V', var, comps, n)  integer value of var at comps, wrapped and clamped
                          into [0, n) (gather)
    ('W', w, d)           loop variable d of windowed reduction w
"""
from __future__ import annotations

import math
import sys
from contextlib import contextmanager

import numpy as np

from ..ir.core import Function, Instr, Var
from ..ir.types import TensorType
from ..core import PRIMITIVES

REDUCTIONS = frozenset({"reduce_sum", "reduce_prod", "reduce_max", "reduce_min",
                        "argmax", "argmin"})
#: Computable at any index from their operands read at derived indices.
INDEX_OPS = frozenset({"broadcast_in_dim", "reshape", "transpose", "slice", "rev", "pad",
                       "concatenate", "iota", "gather", "reduce_window", "random_bits"})
#: Computed once and stored rather than recomputed at several indices.
EXPENSIVE = frozenset({"exp", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos",
                       "erf", "pow", "reduce_window", "random_bits"})


@contextmanager
def deep_recursion(body: Function):
    """Room for the code generators, which render a value by recursing into
    its operands (a few frames a level): a kernel that is one long chain,
    such as a Python loop of 100 iterations unrolled by tracing, nests as
    deep as it has instructions."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, old + 4 * len(body.body)))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def is_elementwise(prim: str) -> bool:
    p = PRIMITIVES.get(prim)
    return p is not None and p.kind == "elementwise"


def is_fusible(prim: str) -> bool:
    return prim in INDEX_OPS or prim in REDUCTIONS or is_elementwise(prim)


# --- value ranges and index resolution ----------------------------------------------

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
            return ("C", int(ins.attrs["value"]))
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
        return ("V", v, comps, n)

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


# --- which indices an instruction reads its operands at ---------------------------------

def _reshape_comps(in_shape, out_shape, comps, facts):
    """Components of a reshape's operand for its result read at ``comps``."""
    ins_nz = [d for d, n in enumerate(in_shape) if n != 1]
    outs_nz = [d for d, n in enumerate(out_shape) if n != 1]
    result = [("C", 0)] * len(in_shape)
    i = j = 0
    while i < len(ins_nz) or j < len(outs_nz):
        gi, gj = [ins_nz[i]], [outs_nz[j]]
        pi, pj = in_shape[ins_nz[i]], out_shape[outs_nz[j]]
        i, j = i + 1, j + 1
        while pi != pj:
            if pi < pj:
                gi.append(ins_nz[i])
                pi *= in_shape[ins_nz[i]]
                i += 1
            else:
                gj.append(outs_nz[j])
                pj *= out_shape[outs_nz[j]]
                j += 1
        if len(gi) == 1 and len(gj) == 1:
            result[gi[0]] = comps[gj[0]]
            continue
        dims = tuple(in_shape[d] for d in gi)
        split = None
        flat = comps[gj[0]] if len(gj) == 1 else None
        if flat is not None and flat[0] == "LIN" and \
                tuple(n for n in flat[2] if n != 1) == dims:   # a reshape undone
            split = tuple(c for c, n in zip(flat[1], flat[2]) if n != 1)
        elif flat is not None and flat[0] == "V" and facts is not None:
            _, var, vcomps, _ = comps[gj[0]]
            split = facts.split_linear(var, vcomps, dims)
        if split is None:
            lin = comps[gj[0]] if len(gj) == 1 else \
                ("LIN", tuple(comps[d] for d in gj), tuple(out_shape[d] for d in gj))
            split = [lin] if len(dims) == 1 else []
            if len(dims) > 1:
                strides = [int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(len(dims))]
                split = [("FD", lin, strides[0])] + \
                    [("DM", lin, s, n) for s, n in zip(strides[1:], dims[1:])]
        for d, c in zip(gi, split):
            result[d] = c
    return tuple(result)


def reads(ins: Instr, comps: tuple, facts=None, window=None):
    """``[(operand, comps), ...]``: where computing ``ins``'s (first) result
    at ``comps`` reads its operands. ``window`` names the loop variables of
    a reduce_window (the code generator opens that loop); without it the
    window offsets are the opaque components ``('W', None, d)``."""
    p, ops, a = ins.prim, ins.operands, ins.attrs
    out = ins.results[0].type
    if p == "broadcast_in_dim":
        x = ops[0]
        return [(x, tuple(comps[d] if x.shape[i] == out.shape[d] else ("C", 0)
                          for i, d in enumerate(a["broadcast_dimensions"])))]
    if p == "reshape":
        return [(ops[0], _reshape_comps(ops[0].shape, out.shape, comps, facts))]
    if p == "transpose":
        oc = [None] * len(comps)
        for j, q in enumerate(a["permutation"]):
            oc[q] = comps[j]
        return [(ops[0], tuple(oc))]
    if p == "slice":
        return [(ops[0], tuple(c if (s, st) == (0, 1) else ("A", c, st, s)
                               for c, s, st in zip(comps, a["start"], a["strides"])))]
    if p == "rev":
        return [(ops[0], tuple(("REV", c, n) if d in a["dimensions"] else c
                               for d, (c, n) in enumerate(zip(comps, out.shape))))]
    if p == "pad":
        oc = []
        for c, n, (lo, _, it) in zip(comps, ops[0].shape, a["config"]):
            pos = c if lo == 0 else ("A", c, 1, -lo)
            oc.append(("CL", pos if it == 0 else ("FD", pos, it + 1), n))
        return [(ops[0], tuple(oc)), (ops[1], ())]
    if p == "concatenate":
        ax, off, res = a["axis"], 0, []
        for x in ops:
            c = comps[ax] if off == 0 else ("A", comps[ax], 1, -off)
            res.append((x, comps[:ax] + (("CL", c, x.shape[ax]),) + comps[ax + 1:]))
            off += x.shape[ax]
        return res
    if p == "gather":
        x, idx = ops
        ax, k = a["axis"], len(idx.shape)
        ic = comps[ax:ax + k]
        f = facts.index(idx, ic, x.shape[ax]) if facts is not None else ("V", idx, ic, x.shape[ax])
        return [(x, comps[:ax] + (f,) + comps[ax + k:]), (idx, ic)]
    if p == "reduce_window":
        oc = []
        for d, (c, s, (lo, _), n) in enumerate(zip(comps, a["window_strides"], a["padding"],
                                                   ops[0].shape)):
            if a["window_dimensions"][d] == 1 and s == 1 and lo == 0 and out.shape[d] <= n:
                oc.append(c)   # not pooled along this dim
                continue
            w = window[d] if window is not None else ("W", None, d)
            base = c if s == 1 else ("A", c, s, 0)
            pos = ("ADD", base, w)
            oc.append(("CL", ("A", pos, 1, -lo) if lo else pos, n))
        return [(ops[0], tuple(oc))]
    if p == "random_bits":
        return [(ops[0], (("C", 0),)), (ops[0], (("C", 1),))]
    if p == "iota" or p == "constant":
        return []
    # elementwise: operands have the result's shape
    return [(x, comps) for x in ops]


def comp_values(comp):
    """The ``(var, comps)`` pairs whose values an index component uses."""
    if not isinstance(comp, tuple):
        return
    if comp[0] == "V":
        yield comp[1], comp[2]
        for c in comp[2]:
            yield from comp_values(c)
        return
    for part in comp[1:]:
        if isinstance(part, tuple):
            if part and isinstance(part[0], str):
                yield from comp_values(part)
            else:
                for c in part:
                    yield from comp_values(c)


# --- kernels -------------------------------------------------------------------------------

def _squeeze(shape):
    return tuple(n for n in shape if n != 1)


class Space:
    """The iteration space of a kernel: ``shape`` (the full space), and for a
    reduction kernel its reduced ``axes``. Gives the components at which a
    value of a given shape is the current element (``identity``)."""

    def __init__(self, shape, axes=None):
        self.shape = tuple(shape)
        self.axes = None if axes is None else tuple(sorted(axes))
        kept = [d for d in range(len(shape)) if axes is None or d not in self.axes]
        self.kept = tuple(kept)
        self.kept_shape = tuple(self.shape[d] for d in kept)

    @property
    def is_reduction(self):
        return self.axes is not None

    def identity(self, shape):
        """Components of a value of ``shape`` at the current element (full
        space first, then the reduced one), or None if it is neither."""
        shape = tuple(shape)
        for dims in ([range(len(self.shape))] +
                     ([self.kept] if self.is_reduction else [])):
            dims = list(dims)
            full = tuple(self.shape[d] for d in dims)
            if shape == full:
                return tuple(("L", d) for d in dims)
            if _squeeze(shape) == _squeeze(full):
                nz = iter(d for d in dims if self.shape[d] != 1)
                return tuple(("C", 0) if n == 1 else ("L", next(nz)) for n in shape)
        return None

    def key(self):
        return (self.shape, self.axes)


def reduction_space(ins: Instr) -> Space:
    axes = (ins.attrs["axis"],) if ins.prim in ("argmax", "argmin") else ins.attrs["axes"]
    return Space(ins.operands[0].shape, axes)


class _Grouping:
    """Greedy grouping of materialized values into kernels."""

    def __init__(self, fn: Function, materialized: set, views: set):
        self.fn = fn
        self.producer = {r: ins for ins in fn.body for r in ins.results}
        # Index resolution only looks through values computed inline, as the
        # code generator, which sees one kernel body, does.
        self.facts = Facts(fn, opaque=materialized)
        self.M = materialized
        self.views = views
        self.order = {r: i for i, ins in enumerate(fn.body) for r in ins.results}
        self.roots = [v for ins in fn.body for v in ins.results
                      if v in materialized and v not in views and is_fusible(ins.prim)]
        self.kernel = {v: (v,) for v in self.roots}   # root -> the roots of its kernel
        self._analyzed = {}
        self.visits = {}   # kernel -> the (value, index) pairs it computes or loads

    # -- analysis of one candidate kernel --
    def space(self, roots):
        reds = [self.producer[v] for v in roots if self.producer[v].prim in REDUCTIONS]
        if reds:
            spaces = {reduction_space(r).key() for r in reds}
            if len(spaces) != 1:
                return None
            return reduction_space(reds[0])
        shapes = {v.shape for v in roots}
        return Space(shapes.pop()) if len(shapes) == 1 else None

    def analyze(self, roots):
        """``(space, loads)`` if ``roots`` can be one kernel, else None.
        ``loads`` are the materialized values it reads from elsewhere."""
        roots = tuple(roots)
        if roots not in self._analyzed:
            self._analyzed[roots] = self._analyze(roots)
        return self._analyzed[roots]

    def _analyze(self, roots):
        space = self.space(roots)
        if space is None:
            return None
        own = set(roots)
        loads, seen = set(), set()
        ident_k = tuple(("L", d) for d in space.kept) if space.is_reduction else None
        stack = []
        for v in roots:
            ins = self.producer[v]
            if ins.prim in REDUCTIONS:
                stack.append((ins.operands[0], tuple(("L", d) for d in range(len(space.shape)))))
            else:
                comps = space.identity(v.shape)
                if comps is None:
                    return None
                stack.append((v, comps))
        while stack:
            v, comps = stack.pop()
            if (v, comps) in seen:
                continue
            seen.add((v, comps))
            ins = self.producer.get(v)
            if ins is None or (v in self.M and v not in own):
                loads.add(v)
                continue
            if ins.prim in REDUCTIONS:   # one of ours: only at the current row
                if _squeeze_comps(comps, v.shape) != _squeeze_comps(ident_k, v.shape):
                    return None
                continue
            for x, oc in reads(ins, comps, self.facts):
                stack.append((x, oc))
                for c in oc:
                    for vv, cc in comp_values(c):
                        stack.append((vv, cc))
        self.visits[roots] = seen
        return space, loads

    def recomputed(self, kernels):
        """Expensive values (transcendental functions, windowed reductions)
        that some kernel computes at two different indices, or that two
        kernels compute: worth materializing once instead."""
        where = {}
        for k in kernels:
            for v, comps in self.visits[k]:
                ins = self.producer.get(v)
                # (a scalar is computed once per kernel call anyway)
                if ins is not None and ins.prim in EXPENSIVE and v not in self.M and v.shape:
                    where.setdefault(v, set()).add((k, _squeeze_comps(comps, v.shape)))
        return {v for v, places in where.items() if len(places) > 1}

    def merge(self, a, b):
        ka, kb = self.kernel[a], self.kernel[b]
        if ka == kb:
            return False
        merged = tuple(sorted(set(ka) | set(kb), key=self.order.__getitem__))
        if self.analyze(merged) is None or self._creates_cycle(ka, kb):
            return False
        for v in merged:
            self.kernel[v] = merged
        return True

    # -- dependency graph between kernels and other instructions --
    def _node(self, v):
        """The node computing materialized value v: its kernel, or its
        producing instruction, or None for a parameter."""
        if v in self.kernel:
            return self.kernel[v]
        return self.producer.get(v)

    def _succ_map(self):
        succ = {}
        for ins in self.fn.body:
            if ins.results and ins.results[0] in self.kernel:
                continue
            if not is_fusible(ins.prim) or ins.results[0] in self.views:
                for x in ins.operands:
                    n = self._node(x)
                    if n is not None:
                        succ.setdefault(n, set()).add(ins)
        for k in set(self.kernel.values()):
            res = self.analyze(k)
            for x in res[1] if res else ():
                n = self._node(x)
                if n is not None and n != k:
                    succ.setdefault(n, set()).add(k)
        return succ

    def _creates_cycle(self, ka, kb):
        succ = self._succ_map()
        for src, dst in ((ka, kb), (kb, ka)):
            stack = [n for n in succ.get(src, ()) if n != dst]
            seen = set()
            while stack:
                n = stack.pop()
                if n == dst:
                    return True
                if n in seen:
                    continue
                seen.add(n)
                stack.extend(succ.get(n, ()))
        return False

    def run(self):
        P = self.producer
        reds = [v for v in self.roots if P[v].prim in REDUCTIONS]
        others = [v for v in self.roots if P[v].prim not in REDUCTIONS]
        # 1. reductions with the reductions (of the same space) they read
        for r in reds:
            res = self.analyze((r,))
            for x in sorted(res[1] if res else (), key=lambda v: -self.order.get(v, -1)):
                if x in self.kernel and P[x].prim in REDUCTIONS:
                    self.merge(r, x)
        # 2. consumers with the reductions they read (latest first)
        for v in others:
            res = self.analyze(self.kernel[v])
            for x in sorted(res[1] if res else (), key=lambda v: -self.order.get(v, -1)):
                if x in self.kernel and P[x].prim in REDUCTIONS:
                    if self.merge(v, x):
                        break
        # 3. reductions with the full-shape values they read
        for r in reds:
            res = self.analyze(self.kernel[r])
            for x in res[1] if res else ():
                if x in self.kernel and P[x].prim not in REDUCTIONS:
                    self.merge(r, x)
        # 4. kernels of one space that share an input or feed one another
        by_space = {}
        for k in dict.fromkeys(self.kernel[v] for v in self.roots):
            res = self.analyze(k)
            by_space.setdefault(res[0].key(), []).append((k, res[1]))
        for group in by_space.values():
            for i, (ka, la) in enumerate(group):
                for kb, lb in group[i + 1:]:
                    if (la & lb) or (la & set(kb)) or (lb & set(ka)):
                        self.merge(ka[0], kb[0])
        return list(dict.fromkeys(self.kernel[v] for v in self.roots))


def _squeeze_comps(comps, shape):
    return tuple(c for c, n in zip(comps, shape) if n != 1) if comps is not None else None


# --- the pass ------------------------------------------------------------------------------

def _dce(fn: Function) -> list:
    live = set(fn.results)
    body = []
    for ins in reversed(fn.body):
        if any(r in live for r in ins.results) or not ins.results:
            body.append(ins)
            live.update(ins.operands)
    return body[::-1]


def _absorb_transposes(body, producer):
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


def _swap_transposed_dots(body, results):
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


def _one_hot_scatters(body, fn):
    """``scatter_add(x, i * n + q, u)`` on a flattened ``[m * n]`` array, with
    ``i`` the position in the index array and ``q`` in ``[0, n)``, adds ``u[i]``
    at column ``q[i]`` of row ``i``: it is ``x + select(iota == q, u, 0)`` on
    the ``[m, n]`` view, an elementwise computation that fuses (the gradient
    of picking ``logp[arange(m), labels]``)."""
    facts = Facts(Function(fn.params, body, fn.results))
    out = []
    for ins in body:
        x = ins.operands[0] if ins.prim == "scatter_add" else None
        if x is None or len(x.shape) != 1 or len(ins.operands[1].shape) != 1:
            out.append(ins)
            continue
        idx, upd = ins.operands[1], ins.operands[2]
        m = idx.shape[0]
        if m == 0 or x.shape[0] % m:
            out.append(ins)
            continue
        n = x.shape[0] // m
        split = facts.split_linear(idx, (("L", 0),), (m, n))
        q = split[1] if split is not None and split[0] == ("L", 0) else None
        if q is None or q[0] != "V" or q[2] != (("L", 0),) or q[1].shape != (m,):
            out.append(ins)
            continue
        q = q[1]
        t = x.type
        new = []

        def emit(prim, operands, attrs, type_):
            r = Var(type_)
            new.append(Instr(prim, operands, attrs, [r]))
            return r
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
                                     0.0 if t.dtype.startswith("float") else 0,
                                     "dtype": t.dtype, "weak": False}, TensorType((), t.dtype))
        zb = emit("broadcast_in_dim", [zero], {"shape": shape, "broadcast_dimensions": ()},
                  TensorType(shape, t.dtype))
        added = emit("add", [x2, emit("select", [hit, ub, zb], {}, TensorType(shape, t.dtype))],
                     {}, TensorType(shape, t.dtype))
        new.append(Instr("reshape", [added], {"new_shape": x.shape}, ins.results))
        out.extend(new)
    return out


def _clone_kernel(roots, loads, producer, name):
    """The closed body Function of a kernel computing ``roots`` from ``loads``."""
    params = {v: Var(v.type) for v in loads}
    needed, order = set(), []

    def visit(v):
        stack = [(v, False)]
        while stack:
            u, done = stack.pop()
            if u in params:
                continue
            if done:
                if u not in needed:
                    needed.add(u)
                    order.append(producer[u])
                continue
            if u in needed:
                continue
            stack.append((u, True))
            for x in producer[u].operands:
                stack.append((x, False))
    for r in roots:
        visit(r)
    env = dict(params)
    body = []
    seen = set()
    for ins in order:
        if id(ins) in seen:
            continue
        seen.add(id(ins))
        results = [Var(r.type) for r in ins.results]
        for r, n in zip(ins.results, results):
            env[r] = n
        body.append(Instr(ins.prim, [env[x] for x in ins.operands], ins.attrs, results))
    return Function([params[v] for v in loads], body, [env[r] for r in roots], name)


def _prepare(fn: Function) -> Function:
    """Dead code out, and the rewrites that help backends (module docstring)."""
    body = _dce(fn)
    producer = {r: ins for ins in body for r in ins.results}
    body = _absorb_transposes(body, producer)
    body = _dce(Function(fn.params, body, fn.results, fn.name))
    body = _swap_transposed_dots(body, fn.results)
    body = _one_hot_scatters(body, fn)
    return Function(fn.params, _dce(Function(fn.params, body, fn.results, fn.name)),
                    fn.results, fn.name)


def _materialized(fn: Function):
    """(values that must be arrays, reshapes that are views of arrays)."""
    producer = {r: ins for ins in fn.body for r in ins.results}
    M = set(fn.params) | set(fn.results)
    for ins in fn.body:
        if not is_fusible(ins.prim):
            M.update(ins.operands)
            M.update(ins.results)
        elif ins.prim in REDUCTIONS:
            M.update(ins.results)
    # A reshaped value is materialized in its own shape, and the reshape is a
    # view of it: kernels loop over natural shapes (a pooled feature map, not
    # its flattened copy indexed with divisions).
    for ins in fn.body:
        if ins.prim == "reshape" and ins.results[0] in M and ins.operands[0] in producer \
                and is_fusible(producer[ins.operands[0]].prim):
            M.add(ins.operands[0])
    views = {ins.results[0] for ins in fn.body
             if ins.prim == "reshape" and ins.results[0] in M and
             (ins.operands[0] in M or ins.operands[0] not in producer)}
    M.update(ins.operands[0] for ins in fn.body if ins.results and ins.results[0] in views)
    return M, views


def fuse(fn: Function, _counter=None) -> Function:
    """The fused form of ``fn`` (see the module docstring)."""
    counter = _counter if _counter is not None else [0]
    fn = _prepare(fn)
    M, views = _materialized(fn)
    for _ in range(4):   # materialize expensive recomputed values, then regroup
        grouping = _Grouping(fn, M, views)
        kernels = grouping.run()
        again = grouping.recomputed(kernels)
        if not again:
            break
        M |= again
    return _emit(fn, grouping, kernels, views, counter)


def _emit(fn, grouping, kernels, views, counter) -> Function:
    """The fused Function: kernels and the other instructions, in an order
    where every value is defined before it is used."""
    producer = grouping.producer
    kernel_of = {v: k for k in kernels for v in k}
    # users outside each kernel decide which roots are outputs
    used_outside = set(fn.results)
    for ins in fn.body:
        if not is_fusible(ins.prim) or (ins.results and ins.results[0] in views):
            used_outside.update(ins.operands)
    for k in kernels:
        used_outside.update(grouping.analyze(k)[1])

    new_body, emitted, done = [], set(), set(fn.params)
    pending = []
    for ins in fn.body:
        r0 = ins.results[0] if ins.results else None
        if r0 in kernel_of:
            k = kernel_of[r0]
            if k not in emitted:
                emitted.add(k)
                pending.append(("kernel", k))
        elif r0 is None or r0 in views or not is_fusible(ins.prim):
            pending.append(("instr", ins))
    while pending:
        rest = []
        for kind, obj in pending:
            if kind == "kernel":
                space, loads = grouping.analyze(obj)
                loads = sorted(loads, key=lambda v: (grouping.order.get(v, -1),
                                                     fn.params.index(v) if v in fn.params else 0))
                if not all(v in done for v in loads):
                    rest.append((kind, obj))
                    continue
                outs = [v for v in obj if v in used_outside]
                sub = _clone_kernel(outs, loads, producer, f"kernel{counter[0]}")
                counter[0] += 1
                kind_attr = "reduction" if space.is_reduction else "loop"
                new_body.append(Instr("fusion", loads, {"kind": kind_attr, "body": sub}, outs))
                done.update(obj)
            else:
                ins = obj
                if not all(v in done for v in ins.operands):
                    rest.append((kind, obj))
                    continue
                subs = ins.subfunctions()
                if subs:   # sub-Functions are fused on their own
                    attrs = dict(ins.attrs)
                    attrs.update((key, fuse(f, counter)) for key, f in subs.items())
                    ins = Instr(ins.prim, ins.operands, attrs, ins.results)
                new_body.append(ins)
                done.update(ins.results)
        if len(rest) == len(pending):
            raise AssertionError("fusion: kernels form a cycle")
        pending = rest
    return Function(fn.params, new_body, fn.results, fn.name)


def kernel_count(fn: Function) -> int:
    """Number of fusion kernels in a fused Function (not counting sub-Functions)."""
    return sum(1 for ins in fn.body if ins.prim == "fusion")
