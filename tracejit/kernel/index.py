"""Index algebra: where a kernel reads each value.

A kernel computes every value *at an index*: one component per dimension
of the value, each an integer expression of the kernel's loop variables.
Fusion follows these indices symbolically to decide what one kernel can
compute (transforms/fusion.py); the kernel writers render them to source
(tracejit/kernel/writer.py). The components are small immutable classes;
each renders itself through the writer it is given (``render(w)`` ->
``(code, the loop variables it uses)``) and lists the values its integer
expression reads (``values()``, for gathers):

    Loop(d)               loop variable of iteration dimension d
    Const(k)              the integer k
    Affine(c, m, a)       c * m + a             (slice)
    Rev(c, n)             n - 1 - c             (rev)
    Clamp(c, n)           c clamped into [0, n) (pad, concatenate, windows)
    FloorDiv(c, k)        c // k                (pad with interior padding)
    Add(c1, c2)           c1 + c2               (windows)
    Linear(comps, dims)   row-major linear index (reshape)
    DivMod(c, s, n)       (c // s) % n          (reshape)
    ValueAt(var, comps, n)  integer value of var at comps, wrapped and
                          clamped into [0, n) (gather)
    Window(name, d)       loop variable ``name`` of a windowed reduction's
                          dimension d (``name`` is None while fusion
                          analyses: an opaque offset)

``interval(w)`` bounds a component's value where the writer ``w`` knows the
range of its loop variables (``w.loop_range(d)``: ``(lo, hi)`` inclusive, or
None): a clamp whose operand provably lies inside renders without
``min``/``max``, and a pad or concatenate whose position is known renders
only the branch it takes (a CPU kernel splits its loop where they change
branch, codegen.py).

``reads(ins, comps)`` says at which components computing ``ins``'s result
at ``comps`` reads each operand; ``Space`` is a kernel's iteration space.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..ir.core import Instr, Var

#: Index ops that read their (first) operand at one derived index: the
#: writer computes nothing for them but that index.
VIEW_OPS = frozenset({"broadcast_in_dim", "reshape", "transpose", "slice", "rev", "gather"})


# --- index components ------------------------------------------------------------------

_NONE = frozenset()


class Component:
    """An integer index expression (see the module docstring)."""
    __slots__ = ()

    def render(self, w) -> tuple[str, frozenset]:
        raise NotImplementedError

    def parts(self) -> tuple:
        """The sub-components of this one."""
        return ()

    def values(self):
        """The ``(var, comps)`` pairs whose values this expression uses."""
        for c in self.parts():
            yield from c.values()

    def interval(self, w):
        """``(lo, hi)``, inclusive bounds of the value, or None if unknown."""
        return None


@dataclass(frozen=True, slots=True)
class Loop(Component):
    d: int

    def render(self, w):
        v = w.loopvar(self.d)
        return v, (_NONE if v == "0" else frozenset([v]))

    def interval(self, w):
        return w.loop_range(self.d)


@dataclass(frozen=True, slots=True)
class Const(Component):
    k: int

    def render(self, w):
        return str(self.k), _NONE

    def interval(self, w):
        return (self.k, self.k)


@dataclass(frozen=True, slots=True)
class Window(Component):
    name: str | None
    d: int = -1

    def render(self, w):
        return self.name, frozenset([self.name])


class _OfOne(Component):
    """A function of one component ``c``: ``wrap`` renders it around the
    code of ``c``."""
    __slots__ = ()

    def parts(self):
        return (self.c,)

    def render(self, w):
        x, d = self.c.render(w)
        return self.wrap(x, w), d


@dataclass(frozen=True, slots=True)
class Affine(_OfOne):
    c: Component
    m: int
    a: int

    def interval(self, w):
        r = self.c.interval(w)
        if r is None:
            return None
        lo, hi = sorted((r[0] * self.m + self.a, r[1] * self.m + self.a))
        return (lo, hi)

    def wrap(self, x, w):
        code = x if self.m == 1 else f"{x} * {self.m}"
        if self.a:
            code = f"{code} + {self.a}" if self.a > 0 else f"{code} - {-self.a}"
        return f"({code})"


@dataclass(frozen=True, slots=True)
class Rev(_OfOne):
    c: Component
    n: int

    def interval(self, w):
        r = self.c.interval(w)
        return None if r is None else (self.n - 1 - r[1], self.n - 1 - r[0])

    def wrap(self, x, w):
        return f"({w.dim(self.n)} - 1 - {x})"


@dataclass(frozen=True, slots=True)
class Clamp(_OfOne):
    c: Component
    n: int

    def interval(self, w):
        r = self.c.interval(w)
        top = max(self.n - 1, 0)
        if r is None:
            return (0, top)
        return (min(max(r[0], 0), top), min(max(r[1], 0), top))

    def render(self, w):
        r = self.c.interval(w)
        if r is not None and 0 <= r[0] and r[1] <= self.n - 1:
            return self.c.render(w)   # provably inside: no clamp
        if r is not None and r[1] <= 0:
            return "0", _NONE   # always the first
        if r is not None and r[0] >= self.n - 1:
            return f"({w.dim(self.n)} - 1)", _NONE   # always the last
        return _OfOne.render(self, w)

    def wrap(self, x, w):
        return f"min(max({x}, 0), {w.dim(self.n)} - 1)"


@dataclass(frozen=True, slots=True)
class FloorDiv(_OfOne):
    c: Component
    k: int

    def wrap(self, x, w):
        return f"({x} // {w.dim(self.k)})"


@dataclass(frozen=True, slots=True)
class DivMod(_OfOne):
    c: Component
    s: int
    n: int

    def wrap(self, x, w):
        if self.s == 1:
            return f"({x} % {w.dim(self.n)})"
        return f"(({x} // {w.dim(self.s)}) % {w.dim(self.n)})"


@dataclass(frozen=True, slots=True)
class Add(Component):
    c1: Component
    c2: Component

    def parts(self):
        return (self.c1, self.c2)

    def interval(self, w):
        a, b = self.c1.interval(w), self.c2.interval(w)
        return None if a is None or b is None else (a[0] + b[0], a[1] + b[1])

    def render(self, w):
        (x, dx), (y, dy) = self.c1.render(w), self.c2.render(w)
        return f"({x} + {y})", dx | dy


@dataclass(frozen=True, slots=True)
class Linear(Component):
    comps: tuple
    dims: tuple

    def parts(self):
        return self.comps

    def render(self, w):
        terms, deps, stride = [], _NONE, 1
        for comp, n in reversed(list(zip(self.comps, self.dims))):
            x, d = comp.render(w)
            deps |= d
            if x != "0":
                terms.append(x if stride == 1 else f"{x} * {w.dim(stride)}")
            stride *= n
        return ("(" + " + ".join(reversed(terms)) + ")") if terms else "0", deps


@dataclass(frozen=True, slots=True)
class ValueAt(Component):
    var: Var
    comps: tuple
    n: int

    def parts(self):
        return self.comps

    def values(self):
        yield self.var, self.comps
        for c in self.comps:
            yield from c.values()

    def render(self, w):
        x = w.value(self.var, self.comps)
        d = w.dep(x)
        key = ("norm", x, self.n)
        name = w.lookup(key)
        if name is not None:
            return name, d
        N = w.dim(self.n)
        expr = (f"min(max(i64({x}) + {N} if {x} < 0 else i64({x}), 0), {N} - 1)"
                if self.var.dtype != "uint32" else f"min(i64({x}), {N} - 1)")
        return w.emit(expr, d, key), d


def uses_loop(c: Component, d: int) -> bool:
    """Component ``c`` reads loop variable ``d``."""
    return (isinstance(c, Loop) and c.d == d) or any(uses_loop(p, d) for p in c.parts())


def squeeze_comps(comps, shape):
    """The components of the dimensions of ``shape`` that are not 1."""
    return tuple(c for c, n in zip(comps, shape) if n != 1) if comps is not None else None


# --- which indices an instruction reads its operands at ---------------------------------

def _reshape_comps(in_shape, out_shape, comps, facts):
    """Components of a reshape's operand for its result read at ``comps``."""
    if 0 in in_shape:   # an empty operand is never read (a size-0 batch)
        return (Const(0),) * len(in_shape)
    ins_nz = [d for d, n in enumerate(in_shape) if n != 1]
    outs_nz = [d for d, n in enumerate(out_shape) if n != 1]
    result = [Const(0)] * len(in_shape)
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
        if isinstance(flat, Linear) and tuple(n for n in flat.dims if n != 1) == dims:
            split = squeeze_comps(flat.comps, flat.dims)   # a reshape undone
        elif isinstance(flat, ValueAt) and facts is not None:
            split = facts.split_linear(flat.var, flat.comps, dims)
        if split is None:
            lin = comps[gj[0]] if len(gj) == 1 else \
                Linear(tuple(comps[d] for d in gj), tuple(out_shape[d] for d in gj))
            split = [lin] if len(dims) == 1 else []
            if len(dims) > 1:
                strides = [int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(len(dims))]
                split = [FloorDiv(lin, strides[0])] + \
                    [DivMod(lin, s, n) for s, n in zip(strides[1:], dims[1:])]
        for d, c in zip(gi, split):
            result[d] = c
    return tuple(result)


def reads(ins: Instr, comps: tuple, facts=None, window=None):
    """``[(operand, comps), ...]``: where computing ``ins``'s (first) result
    at ``comps`` reads its operands. ``facts`` (tracejit/kernel/ranges.py)
    resolves gathers' indices where it can; ``window`` names the loop
    variables of a reduce_window (the kernel writer opens that loop);
    without it the window offsets are the opaque ``Window(None, d)``."""
    p, ops, a = ins.prim, ins.operands, ins.attrs
    out = ins.results[0].type
    if p == "broadcast_in_dim":
        x = ops[0]
        return [(x, tuple(comps[d] if x.shape[i] == out.shape[d] else Const(0)
                          for i, d in enumerate(a["broadcast_dimensions"])))]
    if p == "reshape":
        return [(ops[0], _reshape_comps(ops[0].shape, out.shape, comps, facts))]
    if p == "transpose":
        oc = [None] * len(comps)
        for j, q in enumerate(a["permutation"]):
            oc[q] = comps[j]
        return [(ops[0], tuple(oc))]
    if p == "slice":
        return [(ops[0], tuple(c if (s, st) == (0, 1) else Affine(c, st, s)
                               for c, s, st in zip(comps, a["start"], a["strides"])))]
    if p == "rev":
        return [(ops[0], tuple(Rev(c, n) if d in a["dimensions"] else c
                               for d, (c, n) in enumerate(zip(comps, out.shape))))]
    if p == "pad":
        oc = []
        for c, n, (lo, _, it) in zip(comps, ops[0].shape, a["config"]):
            pos = c if lo == 0 else Affine(c, 1, -lo)
            oc.append(Clamp(pos if it == 0 else FloorDiv(pos, it + 1), n))
        return [(ops[0], tuple(oc)), (ops[1], ())]
    if p == "concatenate":
        ax, off, res = a["axis"], 0, []
        for x in ops:
            c = comps[ax] if off == 0 else Affine(comps[ax], 1, -off)
            res.append((x, comps[:ax] + (Clamp(c, x.shape[ax]),) + comps[ax + 1:]))
            off += x.shape[ax]
        return res
    if p == "gather":
        x, idx = ops
        ax, k = a["axis"], len(idx.shape)
        ic = comps[ax:ax + k]
        f = facts.index(idx, ic, x.shape[ax]) if facts is not None else ValueAt(idx, ic, x.shape[ax])
        return [(x, comps[:ax] + (f,) + comps[ax + k:]), (idx, ic)]
    if p == "reduce_window":
        oc = []
        for d, (c, s, (lo, _), n) in enumerate(zip(comps, a["window_strides"], a["padding"],
                                                   ops[0].shape)):
            if a["window_dimensions"][d] == 1 and s == 1 and lo == 0 and out.shape[d] <= n:
                oc.append(c)   # not pooled along this dim
                continue
            w = window[d] if window is not None else Window(None, d)
            pos = Add(c if s == 1 else Affine(c, s, 0), w)
            oc.append(Clamp(Affine(pos, 1, -lo) if lo else pos, n))
        return [(ops[0], tuple(oc))]
    if p == "random_bits":
        return [(ops[0], (Const(0),)), (ops[0], (Const(1),))]
    if p == "iota" or p == "constant":
        return []
    # elementwise: operands have the result's shape
    return [(x, comps) for x in ops]


# --- iteration spaces ----------------------------------------------------------------------

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

    def full(self) -> tuple:
        """The components of the current element of the full space."""
        return tuple(Loop(d) for d in range(len(self.shape)))

    def identity(self, shape):
        """Components of a value of ``shape`` at the current element (full
        space first, then the reduced one), or None if it is neither."""
        shape = tuple(shape)
        for dims in ([range(len(self.shape))] +
                     ([self.kept] if self.is_reduction else [])):
            dims = list(dims)
            full = tuple(self.shape[d] for d in dims)
            if shape == full:
                return tuple(Loop(d) for d in dims)
            if _squeeze(shape) == _squeeze(full):
                nz = iter(d for d in dims if self.shape[d] != 1)
                return tuple(Const(0) if n == 1 else Loop(next(nz)) for n in shape)
        return None

    def is_full(self, shape) -> bool:
        """A value of ``shape`` is the full space's current element: its
        dimensions other than 1 are the full space's (in any rank: a
        ``[1, n]`` output of a kernel over ``[n]`` is written per element,
        not once per kept index)."""
        comps = self.identity(shape)
        return comps is not None and \
            squeeze_comps(comps, shape) == squeeze_comps(self.full(), self.shape)

    def key(self):
        return (self.shape, self.axes)


def reduction_space(ins: Instr) -> Space:
    axes = (ins.attrs["axis"],) if ins.prim in ("argmax", "argmin") else ins.attrs["axes"]
    return Space(ins.operands[0].shape, axes)


@contextmanager
def deep_recursion(body):
    """Room for the kernel writers, which render a value by recursing into
    its operands (a few frames a level): a kernel that is one long chain,
    such as a Python loop of 100 iterations unrolled by tracing, nests as
    deep as it has instructions."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, old + 4 * len(body.body)))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)
