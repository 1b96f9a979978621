"""Kernel template: one fused kernel body (an IR Function) -> Numba source.

Values are computed at an index by the shared writer (tracejit/kernel/
writer.py), from the CPU snippet table (snippets.py); this module lays out
the loops and finishes the module.

A loop kernel is one loop nest over its output shape (flattened to one loop
when it is purely elementwise). A reduction kernel with iteration space F
and reduced axes A loops over the kept dims before the first reduced axis
(``outer``); for each of them it runs one pass over the remaining dims per
*phase* (a reduction whose operand reads another reduction runs in a later
phase: a softmax's sum after its max), writes full-shape outputs in the
first pass after the reductions they read, and reduced-shape outputs once
its phases are done. Accumulators are scalars when every kept dim is outer
(reductions over trailing axes) and arrays over the inner kept dims
otherwise (column sums accumulate a row at a time, reading memory in order).

Split loops. Where pads or concatenates of the kernel's shape change branch
along a dimension (the gradient of slicing a matrix into gates is a sum of
pads: a concatenate), the loop over that dimension is split into one loop
per segment; each segment knows its range, so it computes only the branch
it takes and reads without clamping (index.py's ``interval``).

Kernels are C functions ``kernel(lo, hi, dims, *inputs, *outputs,
*accumulators)`` of pointers (compiler.py): the plan runs ``[lo, hi)`` of
the outermost loop with more than one iteration (so a thread pool can
split it), every dimension size is read from the ``dims`` array, so one
compiled kernel serves every batch size, and column accumulators are
buffers the plan owns (a kernel allocates nothing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir.core import Function, Var
from ...ir.dtypes import compute
from ...kernel.index import Loop, Space, deep_recursion
from ...kernel.writer import LoweringError, ScopedWriter
from .snippets import CTOR, HEADER, INTRINSICS, SNIPPETS

__all__ = ["KernelSource", "LoweringError", "generate"]


@dataclass
class KernelSource:
    source: str          # module text; the kernel is named ``kernel``
    arg_dtypes: tuple    # dtypes of the array arguments: inputs, outputs, accumulators
    scratch: list        # (shape, dtype) of each accumulator buffer
    dims: tuple          # value of the ``dims`` argument
    extent: int          # trip count of the loop that [lo, hi) splits
    work: int            # elements visited per call (all passes)
    flat: bool           # inputs and outputs are passed as 1-D views
    inplace: frozenset   # (input, output) pairs: the output may be written over the input


class KernelWriter(ScopedWriter):
    """Writes one kernel: ``build()`` lays out the loops, ``value()`` emits
    the statements computing a value at an index, placed by ``emit()``."""
    snippets = SNIPPETS

    def __init__(self, body: Function, kind: str):
        super().__init__(body, kind)
        self.acc: dict[Var, tuple] = {}   # reduction -> (accumulator, is an array, inner kept dims)
        self.scratch: list[tuple] = []   # (name, shape, dtype) of column accumulators
        self.flat = kind == "loop" and len(self.space.shape) > 1 and self._purely_elementwise()
        if self.flat:
            self.full_shape = self.space.shape
            self.space = Space((int(np.prod(self.space.shape)),))
        self.chunk = None
        self.ranges: dict[int, tuple] = {}   # loop dim -> (lo, hi) of the open segment
        self.split, self.cuts = self._split_dim()

    #: Most loops a split dimension is split into (each copies the loop body).
    MAX_SEGMENTS = 8

    def _split_dim(self):
        """The dimension whose loop is split and the segment boundaries on it:
        where pads and concatenates of the space's shape change branch (the
        dimension with the most of them), or ``(None, ())``."""
        shape = self.space.shape
        cuts = {d: set() for d in range(len(shape))}
        for ins in self.fn.body:
            if ins.results[0].shape != shape:
                continue
            if ins.prim == "pad":
                for d, ((lo, _, it), n) in enumerate(zip(ins.attrs["config"], ins.operands[0].shape)):
                    if it == 0:
                        cuts[d] |= {lo, lo + n}
            elif ins.prim == "concatenate":
                off = 0
                for x in ins.operands:
                    off += x.shape[ins.attrs["axis"]]
                    cuts[ins.attrs["axis"]].add(off)
        best, best_cuts = None, ()
        for d, cs in cuts.items():
            inner = sorted(c for c in cs if 0 < c < shape[d])
            if inner and len(inner) < self.MAX_SEGMENTS and len(inner) >= len(best_cuts):
                best, best_cuts = d, tuple(inner)
        return best, best_cuts

    def ranged_dims(self):
        return self.ranges.keys()

    def loop_range(self, d):
        if d in self.ranges:
            return self.ranges[d]
        return None if self.flat else (0, max(self.space.shape[d] - 1, 0))

    def _nest(self, dims, body):
        """Loops over ``dims`` (outermost first) around ``body()``; the split
        dimension becomes one loop per segment, each with the body."""
        if not dims:
            body()
            return
        d, rest = dims[0], dims[1:]
        if d != self.split:
            opened = self._loop(d)
            self._nest(rest, body)
            if opened:
                self.close()
            return
        bounds = (0,) + self.cuts + (self.space.shape[d],)
        for a, b in zip(bounds, bounds[1:]):
            end = self.dim(b) if b == self.space.shape[d] else str(b)
            rng = f"range({a}, {end})" if d != self.chunk else f"range(max(lo, {a}), min(hi, {end}))"
            self.open(f"for i{d} in {rng}:", [f"i{d}"])
            self.ranges[d] = (a, b - 1)
            self._nest(rest, body)
            del self.ranges[d]
            self.close()

    def _purely_elementwise(self):
        shape = self.space.shape
        if any(p.shape not in (shape, ()) for p in self.fn.params):
            return False
        for ins in self.fn.body:
            if ins.prim == "broadcast_in_dim":
                if ins.operands[0].shape != ():
                    return False
            elif not ins.primitive.elementwise or \
                    (ins.results[0].shape not in (shape, ())):
                return False
        return True

    def _accumulator(self, v, comps):
        name, is_array, kin = self.acc[v]
        if not is_array:
            self.deps[name] = self.acc_deps
            return name
        idx, deps = self.index(tuple(comps[self.space.kept.index(d)] for d in kin))
        return self.emit(f"{name}[{idx}]", deps | self.acc_deps, (v, comps))

    # --- kernel layout --------------------------------------------------------------------
    def _loop(self, d, lo_hi=False):
        n = self.space.shape[d]
        if n == 1:
            return False
        rng = "range(lo, hi)" if d == self.chunk else f"range({self.dim(n)})"
        self.open(f"for i{d} in {rng}:", [f"i{d}"])
        return True

    def build(self) -> KernelSource:
        outs = [f"o{i}" for i in range(len(self.fn.results))]
        shape = self.space.shape
        big = [d for d, n in enumerate(shape) if n != 1]
        if not self.space.is_reduction:
            self.chunk = big[0] if big else None
            self._nest(list(range(len(shape))), lambda: self._store_all(list(zip(outs, self.fn.results))))
            work = int(np.prod(shape))
        else:
            work = self._build_reduction(outs)
        extent = shape[self.chunk] if self.chunk is not None else 1
        return self._finish(outs, extent, work)

    def _build_reduction(self, outs):
        sp = self.space
        F = sp.shape
        first = sp.axes[0] if sp.axes else len(F)
        outer = [d for d in sp.kept if d < first]
        inner = list(range(first, len(F)))
        kin = [d for d in sp.kept if d >= first]
        big_outer = [d for d in outer if F[d] != 1]
        big_kin = [d for d in kin if F[d] != 1]
        # Column accumulators are shared by the chunks of a call: split the
        # kept dims they are indexed by, never the outer ones, and only when
        # each chunk still reads whole cache lines of every row (a chunk of a
        # few columns would read all the rows for a sliver of each).
        wide = big_kin and F[big_kin[0]] * int(np.prod([F[d] for d in kin if d > big_kin[0]])) >= 512
        self.chunk = (big_kin[0] if wide else None) if kin else \
            (big_outer[0] if big_outer else None)
        self.acc_deps = frozenset(f"i{d}" for d in big_outer)
        phase, reds_of = self._phases()
        npass = max(phase.values())
        reductions = [ins for ins in self.fn.body if ins.primitive.reduction]
        f_roots, k_roots = self._roots(outs, phase, reds_of)
        # accumulators
        kin_shape = tuple(F[d] for d in kin)
        best = {}   # argmax/argmin: the accumulator of the best value so far
        for ins in reductions:
            v = ins.results[0]
            name = f"acc{len(self.acc)}"
            self.acc[v] = (name, bool(kin), kin)
            if ins.prim in ("argmax", "argmin"):
                best[v] = name + "v"
            for n, t in [(name, v.dtype)] + ([(best[v], ins.operands[0].dtype)] if v in best else []):
                if kin:   # float16/bfloat16 accumulate in float32
                    self.scratch.append((n, kin_shape, compute(t)))
        opened = sum(self._loop(d) for d in outer)
        for p in range(1, npass + 2):
            self.cur_pass = p if p <= npass else npass + 2
            these = [ins for ins in reductions if phase[ins.results[0]] == p]
            stores = [(o, r) for o, r, q in f_roots if min(q, npass + 1) == p]
            if not these and not stores:
                continue
            inits = []   # initialize the accumulators of this phase
            for ins in these:
                v, x = ins.results[0], ins.operands[0]
                init = self.const(self.snippets.reduction_init(ins.prim, x.dtype), x.dtype)
                inits += [(best[v], init), (self.acc[v][0], self.const(0, v.dtype))] \
                    if v in best else [(self.acc[v][0], init)]
            n_open = sum(self._loop(d) for d in kin)
            kin_idx = self.index(tuple(Loop(d) for d in kin))[0] if kin else None
            for n, i in inits:
                self.stack[-1].add(f"{n}[{kin_idx}] = {i}" if kin else f"{n} = {i}")
            for _ in range(n_open):
                self.close()
            self._nest(inner, lambda: self._pass(these, best, kin, stores))
        self.cur_pass = npass + 3   # runs after the last full pass (npass + 2)
        if k_roots:
            n_open = sum(self._loop(d) for d in kin)
            self._store_all(k_roots)
            for _ in range(n_open):
                self.close()
        for _ in range(opened):
            self.close()
        return int(np.prod(F)) * (npass + (1 if any(q > npass for *_, q in f_roots) else 0))

    def _pass(self, these, best, kin, stores):
        """The body of one pass of a reduction kernel over the full space:
        combine each reduction of the phase, store the outputs of the pass."""
        sp = self.space
        full = sp.full()
        kin_idx = self.index(tuple(Loop(d) for d in kin))[0] if kin else None
        for ins in these:
            v = ins.results[0]
            x = self.value(ins.operands[0], full)
            name = self.acc[v][0]
            acc = f"{name}[{kin_idx}]" if kin else name
            if v in best:
                b = f"{best[v]}[{kin_idx}]" if kin else best[v]
                ax = self.loopvar(sp.axes[0])
                better = self.snippets.arg_better(ins.prim, ins.operands[0].dtype, x, b)
                self.stack[-1].add(f"if {better}:")
                self.stack[-1].add(f"    {b} = {x}")
                self.stack[-1].add(f"    {acc} = {CTOR[v.dtype]}({ax})")
            else:
                comb = self.snippets.reduction_combine(ins.prim, ins.operands[0].dtype, acc, x)
                self.stack[-1].add(f"{acc} = {comb}")
        self._store_all(stores)

    def _finish(self, outs, extent, work) -> KernelSource:
        arrays = [(self.arrays[p], p.shape, p.dtype) for p in self.fn.params] + \
            [(o, r.shape, r.dtype) for o, r in zip(outs, self.fn.results)] + self.scratch
        views = []
        for name, shape, _ in arrays:
            if self.flat and shape == self.full_shape:
                shape = self.space.shape
            dims = ", ".join(self.dim(n) for n in shape) if shape else "1"
            views.append(f"    {name} = carray(p_{name}, ({dims},))")
        body = views + self.top.lines("    ")
        body[:0] = [f"    {name} = dims[{k}]" for k, name in enumerate(self.dims.values())]
        consts = [f"{name} = {text}" for text, name in self.consts.items()]
        head = HEADER.format(intrinsics=", ".join(INTRINSICS + tuple(sorted(self.imports))))
        args = ["lo", "hi", "dims"] + [f"p_{name}" for name, _, _ in arrays]
        src = "\n".join([head] + consts + ["", "", f"def kernel({', '.join(args)}):"] + body) + "\n"
        return KernelSource(src, tuple(t for _, _, t in arrays), [(sh, t) for _, sh, t in self.scratch],
                            tuple(self.dims), extent, work, self.flat, self.inplace_pairs())


def generate(body: Function, kind: str) -> KernelSource:
    with deep_recursion(body):
        return KernelWriter(body, kind).build()
