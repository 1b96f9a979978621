"""Kernel template: one fused kernel body (an IR Function) -> CUDA kernel
source for ``numba.cuda.jit``.

Values are computed at an index by the writer both backends share
(tracejit/kernel/writer.py), from the CUDA snippet table (snippets.py);
this module lays out the grid and finishes the module.

A *loop* kernel is a grid-stride loop over the flat index of its output
shape: consecutive threads take consecutive elements (coalesced), each
unflattens its index into the multi-index ``i0, i1, ...`` and computes
every output there. A *reduction* kernel (iteration space F, reduced axes
A) gives each block one kept index at a time (grid-stride over blocks);
the block's threads stride over the reduced elements, each accumulating
its own partial result, which a tree reduction in shared memory combines.
Reductions that read other reductions run in later *phases* (a softmax's
sum after its max); full-shape outputs are written in the pass after the
reductions they read, reduced-shape outputs by thread 0 at the end. All
threads of a block run every phase (``cuda.syncthreads`` needs them).

Kernels are ``kernel(n[, nr], d0, d1, ..., *inputs, *outputs)``: element
counts and dimension sizes are arguments, so one compiled kernel serves
every batch size. Arrays keep their shapes (rank-0 values are passed with
shape (1,)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir.core import Function
from ...ir.dtypes import compute
from ...kernel.index import deep_recursion
from ...kernel.writer import LoweringError, ScopedWriter
from .snippets import CTOR, HEADER, NBTYPE, SNIPPETS, arg_combine

__all__ = ["KernelSource", "LoweringError", "generate", "kernel_shape"]


#: The reduction layouts of two kernels (a partial pass, then a final one).
SPLIT = frozenset({"split_partial", "split_final", "column_partial", "column_final"})


@dataclass
class KernelSource:
    source: str          # module text; the kernel is the function ``kernel``
    arg_types: tuple     # ('i64',) per scalar argument, then (dtype, ndim) per array
    scalars: tuple       # values of the scalar arguments (counts, then dims)
    kind: str            # 'loop' or 'reduction'
    units: int           # elements (loop), kept indices (reduction) or kept indices x
    #                      splits (split_partial, column_partial): the grid's work
    inplace: frozenset   # (input, output) pairs: the output may be written over the input
    strategy: str = "loop"   # loop; reductions: rows, columns, split_partial, split_final,
    #                          column_partial, column_final
    partials: tuple = ()     # dtypes of a split reduction's partial arrays (n * ns each)


def _prod(xs) -> int:
    return int(np.prod([int(x) for x in xs], dtype=np.int64))


def kernel_shape(shape) -> tuple:
    """The shape an array has as a kernel argument (rank 0 becomes (1,))."""
    return tuple(shape) if len(shape) else (1,)


class KernelWriter(ScopedWriter):
    """Writes one kernel: ``build()`` lays out the loops, ``value()`` emits
    the statements computing a value at an index, placed by ``emit()``."""
    snippets = SNIPPETS

    def __init__(self, body: Function, kind: str, block: int, strategy: str = "rows",
                 splits: int = 1):
        super().__init__(body, kind)
        self.block = block
        self.strategy = strategy if kind == "reduction" else "loop"
        self.splits = splits
        self.partials: list = []   # (name, dtype) of a split reduction's partial arrays

    # --- kernel layout --------------------------------------------------------------------
    def _unflatten(self, flat, dims):
        """Statements binding the loop variables of ``dims`` (row-major) from
        the flat index ``flat``; returns (statements, bound names)."""
        big = [d for d in dims if self.space.shape[d] != 1]
        if not big:
            return [], []
        lines, rest = [], flat
        for k, d in enumerate(reversed(big)):
            if k == len(big) - 1:
                lines.append(f"i{d} = {rest}")
            else:
                n = self.dim(self.space.shape[d])
                lines.append(f"i{d} = {rest} % {n}")
                lines.append(f"r{d} = {rest} // {n}")
                rest = f"r{d}"
        return lines, [f"i{d}" for d in big]

    def _grid_loop(self, header, flat, dims):
        lines, names = self._unflatten(flat, dims)
        b = self.open(header, [flat] + names)
        for line in lines:
            b.add(line)
        return b

    def build(self) -> KernelSource:
        outs = [f"o{i}" for i in range(len(self.fn.results))]
        shape = self.space.shape
        if not self.space.is_reduction:
            self._grid_loop("for idx in range(cuda.grid(1), n, cuda.gridsize(1)):", "idx",
                            range(len(shape)))
            self._store_all(list(zip(outs, self.fn.results)))
            self.close()
            counts = {"n": _prod(shape)}
        else:
            self._build_reduction(outs)
            counts = {"n": _prod(self.space.kept_shape),
                      "nr": _prod(self.space.shape[d] for d in self.space.axes)}
            if self.strategy in SPLIT:
                counts["ns"] = self.splits
        return self._finish(outs, counts)

    def _build_reduction(self, outs):
        sp = self.space
        phase, reds_of = self._phases()
        npass = max(phase.values())
        reductions = [ins for ins in self.fn.body if ins.primitive.reduction]
        f_roots, k_roots = self._roots(outs, phase, reds_of)
        if self.strategy != "rows" and (npass > 1 or f_roots):
            raise LoweringError(f"the {self.strategy} layout takes one phase of reductions "
                                f"and reduced outputs only")
        if self.strategy.startswith("column"):
            return self._build_columns(reductions, k_roots)
        full = sp.full()
        B = self.block
        self.top.add("tid = cuda.threadIdx.x")
        shared = {}   # reduction -> shared arrays (value[, index])
        for ins in reductions:
            v = ins.results[0]
            name = f"acc{len(self.acc)}"
            self.acc[v] = name
            arrays = [(f"sh{len(self.acc) - 1}", _acc_dtype(ins))]
            if ins.prim in ("argmax", "argmin"):
                arrays.append((f"sh{len(self.acc) - 1}i", v.dtype))
            shared[v] = [n for n, _ in arrays]
            for n, t in arrays:
                self.top.add(f"{n} = cuda.shared.array({B}, {NBTYPE[t]})")
        if self.strategy == "split_final":
            return self._build_split_final(reductions, k_roots, shared)
        if self.strategy == "split_partial":
            kept = self.open("for kidx in range(cuda.blockIdx.x, n * ns, cuda.gridDim.x):",
                             ["kidx", "kk", "part"])
            kept.add("kk = kidx // ns")
            kept.add("part = kidx - kk * ns")
            lines, names = self._unflatten("kk", sp.kept)
            kept.binds |= set(names)
            for line in lines:
                kept.add(line)
            rows = f"for ridx in range(part * {B} + tid, nr, ns * {B}):"
        else:
            kept = self._grid_loop("for kidx in range(cuda.blockIdx.x, n, cuda.gridDim.x):",
                                   "kidx", sp.kept)
            rows = f"for ridx in range(tid, nr, {B}):"
        self.acc_deps = frozenset(kept.binds)
        for p in range(1, npass + 2):
            self.cur_pass = p
            these = [ins for ins in reductions if phase[ins.results[0]] == p]
            stores = [(o, r) for o, r, q in f_roots if min(q, npass + 1) == p]
            if not these and not stores:
                continue
            self._init(these, kept)
            self._grid_loop(rows, "ridx", sp.axes)
            for ins in these:
                self._accumulate(ins, self.value(ins.operands[0], full))
            self._store_all(stores)
            self.close()
            if these:
                self._tree(these, shared)
        self.cur_pass = npass + 2
        if self.strategy == "split_partial":
            self.open("if tid == 0:", [])
            for k, ins in enumerate(reductions):
                self._partial(k, ins)
                acc = self.acc[ins.results[0]]
                if ins.prim in ("argmax", "argmin"):   # acc is the index now (_tree)
                    self.stack[-1].add(f"p{k}[kidx] = {acc[:-1]}")
                    self.stack[-1].add(f"p{k}i[kidx] = {acc}")
                else:
                    self.stack[-1].add(f"p{k}[kidx] = {acc}")
            self.close()
        elif k_roots:
            self.open("if tid == 0:", [])
            self._store_all(k_roots)
            self.close()
        self.close()

    def _init(self, these, block):
        for ins in these:
            v, x = ins.results[0], ins.operands[0]
            init = self.const(self.snippets.reduction_init(ins.prim, x.dtype), x.dtype)
            block.add(f"{self.acc[v]} = {init}")
            if ins.prim in ("argmax", "argmin"):
                block.add(f"{self.acc[v]}i = {CTOR[v.dtype]}(-1)")

    def _partial(self, k, ins):
        """Declare the partial-result arrays of reduction ``k`` (arguments)."""
        v = ins.results[0]
        self.partials.append((f"p{k}", _acc_dtype(ins)))
        if ins.prim in ("argmax", "argmin"):
            self.partials.append((f"p{k}i", v.dtype))

    def _build_split_final(self, reductions, k_roots, shared):
        """The second kernel of a split reduction: one block per kept index
        combines the ``ns`` partial results of the first in tree order (the
        same order every run), then thread 0 writes the outputs."""
        kept = self._grid_loop("for kidx in range(cuda.blockIdx.x, n, cuda.gridDim.x):",
                               "kidx", self.space.kept)
        self.acc_deps = frozenset(kept.binds)
        self.cur_pass = 1
        self._init(reductions, kept)
        loop = self.open(f"for ridx in range(tid, ns, {self.block}):", ["ridx"])
        loop.add("j = kidx * ns + ridx")
        self._combine_partials(reductions, loop, "j")
        self.close()
        self._tree(reductions, shared)
        self.cur_pass = 2
        if k_roots:
            self.open("if tid == 0:", [])
            self._store_all(k_roots)
            self.close()
        self.close()

    def _build_columns(self, reductions, k_roots):
        """One thread per kept index, looping over the reduced elements in
        order: when the innermost axis is kept, consecutive threads read
        consecutive addresses (coalesced), and no shared memory is needed.

        Split ``ns`` ways (``column_partial``): thread ``kidx`` takes kept
        index ``kidx % n`` and the reduced elements ``part, part + ns, ...``
        (``part = kidx // n``), writing its partial result to ``p[kidx]``;
        ``column_final`` then combines each kept index's ``ns`` partials in
        order (reads coalesced too)."""
        for ins in reductions:
            self.acc[ins.results[0]] = f"acc{len(self.acc)}"
        sp = self.space
        if self.strategy == "column_partial":
            kept = self.open("for kidx in range(cuda.grid(1), n * ns, cuda.gridsize(1)):",
                             ["kidx", "kk", "part"])
            kept.add("part = kidx // n")
            kept.add("kk = kidx - part * n")
            lines, names = self._unflatten("kk", sp.kept)
            kept.binds |= set(names)
            for line in lines:
                kept.add(line)
            rows = "for ridx in range(part, nr, ns):"
        else:
            kept = self._grid_loop("for kidx in range(cuda.grid(1), n, cuda.gridsize(1)):",
                                   "kidx", sp.kept)
            rows = "for ridx in range(nr):"
        self.acc_deps = frozenset(kept.binds)
        self.cur_pass = 1
        self._init(reductions, kept)
        if self.strategy == "column_final":
            loop = self.open("for j in range(ns):", ["j"])
            loop.add("q = j * n + kidx")
            self._combine_partials(reductions, loop, "q")
            self.close()
        else:
            self._grid_loop(rows, "ridx", sp.axes)
            for ins in reductions:
                self._accumulate(ins, self.value(ins.operands[0], sp.full()))
            self.close()
        if self.strategy == "column_partial":
            for k, ins in enumerate(reductions):
                self._partial(k, ins)
                acc = self.acc[ins.results[0]]
                kept.add(f"p{k}[kidx] = {acc}")
                if ins.prim in ("argmax", "argmin"):
                    kept.add(f"p{k}i[kidx] = {acc}i")
            self.close()
            return
        for ins in reductions:   # argmax/argmin results are their indices from here on
            if ins.prim in ("argmax", "argmin"):
                self.acc[ins.results[0]] += "i"
        self.cur_pass = 2
        self._store_all(k_roots)
        self.close()

    def _combine_partials(self, reductions, loop, j):
        """Statements in ``loop`` combining partial result ``j`` of each
        reduction into its accumulator (declaring the partial arrays)."""
        for k, ins in enumerate(reductions):
            self._partial(k, ins)
            v = ins.results[0]
            acc, dtype = self.acc[v], ins.operands[0].dtype
            if ins.prim in ("argmax", "argmin"):
                loop.add(f"if {arg_combine(ins.prim, dtype, acc, acc + 'i', f'p{k}[{j}]', f'p{k}i[{j}]')}:")
                loop.add(f"    {acc} = p{k}[{j}]")
                loop.add(f"    {acc}i = p{k}i[{j}]")
            else:
                loop.add(f"{acc} = {self.snippets.reduction_combine(ins.prim, dtype, acc, f'p{k}[{j}]')}")

    def _accumulate(self, ins, x):
        v = ins.results[0]
        acc = self.acc[v]
        dtype = ins.operands[0].dtype
        if ins.prim in ("argmax", "argmin"):
            ax = self.loopvar(self.space.axes[0])
            add = self.stack[-1].add
            add(f"if {acc}i < 0 or {self.snippets.arg_better(ins.prim, dtype, x, acc)}:")
            add(f"    {acc} = {x}")
            add(f"    {acc}i = {CTOR[v.dtype]}({ax})")
        else:
            self.stack[-1].add(f"{acc} = {self.snippets.reduction_combine(ins.prim, dtype, acc, x)}")

    def _tree(self, these, shared):
        """Combine the threads' partial results in shared memory; every
        thread ends with the block's result in its accumulator."""
        kept = self.stack[-1]
        add = kept.add
        for ins in these:
            v = ins.results[0]
            sh = shared[v]
            add(f"{sh[0]}[tid] = {self.acc[v]}")
            if len(sh) > 1:
                add(f"{sh[1]}[tid] = {self.acc[v]}i")
        add("cuda.syncthreads()")
        add(f"s = {self.block // 2}")
        add("while s > 0:")
        add("    if tid < s:")
        for ins in these:
            v = ins.results[0]
            sh = shared[v]
            dtype = ins.operands[0].dtype
            a, b = f"{sh[0]}[tid]", f"{sh[0]}[tid + s]"
            if ins.prim in ("argmax", "argmin"):
                ia, ib = f"{sh[1]}[tid]", f"{sh[1]}[tid + s]"
                add(f"        if {arg_combine(ins.prim, dtype, a, ia, b, ib)}:")
                add(f"            {a} = {b}")
                add(f"            {ia} = {ib}")
            else:
                comb = self.snippets.reduction_combine(ins.prim, dtype, a, b)
                add(f"        {a} = {comb}")
        add("    cuda.syncthreads()")
        add("    s //= 2")
        for ins in these:
            v = ins.results[0]
            sh = shared[v]
            if len(sh) > 1:
                add(f"{self.acc[v]} = {sh[0]}[0]")
                add(f"{self.acc[v]}i = {sh[1]}[0]")
            elif v.dtype == "bool":
                add(f"{self.acc[v]} = {sh[0]}[0] != 0")
            else:
                add(f"{self.acc[v]} = {sh[0]}[0]")
        add("cuda.syncthreads()")
        for ins in these:   # argmax/argmin results are their indices from here on
            v = ins.results[0]
            if len(shared[v]) > 1:
                self.acc[v] = self.acc[v] + "i"

    def _finish(self, outs, counts) -> KernelSource:
        arrays = [(self.arrays[p], p.type.dtype, len(kernel_shape(p.shape)))
                  for p in self.fn.params] + \
            [(o, r.type.dtype, len(kernel_shape(r.shape))) for o, r in zip(outs, self.fn.results)] + \
            [(name, dtype, 1) for name, dtype in self.partials]
        scalars = list(counts) + list(self.dims.values())
        args = scalars + [name for name, _, _ in arrays]
        consts = [f"{name} = {text}" for text, name in self.consts.items()]
        src = "\n".join([HEADER] + consts +
                        ["", "", f"def kernel({', '.join(args)}):"] + self.top.lines("    ")) + "\n"
        arg_types = tuple(["i64"] * len(scalars) + [(t, nd) for _, t, nd in arrays])
        units = counts["n"] * (self.splits if self.strategy.endswith("_partial") else 1)
        # A partial kernel writes no outputs; a final one runs after it, so only
        # its own reads matter for writing an output over an input.
        inplace = frozenset() if self.strategy.endswith("_partial") else self.inplace_pairs()
        return KernelSource(src, arg_types, tuple(counts.values()) + tuple(self.dims),
                            self.kind, units, inplace, self.strategy,
                            tuple(dtype for _, dtype in self.partials))


def _acc_dtype(ins) -> str:
    """The dtype a reduction accumulates in (its operand's for argmax/argmin;
    float32 for float16 and bfloat16)."""
    return compute(ins.operands[0].dtype if ins.prim in ("argmax", "argmin")
                   else ins.results[0].dtype)


@dataclass
class ReductionShape:
    """What picks a reduction kernel's layout (``single``: one phase of
    reductions, only reduced-shape outputs, no bool accumulators)."""
    kept: int          # kept indices (outputs per reduction)
    reduced: int       # elements reduced per kept index
    inner_kept: bool   # the innermost axis of the space is kept (not reduced)
    single: bool


def reduction_shape(body: Function) -> ReductionShape:
    w = KernelWriter(body, "reduction", 1)
    sp = w.space
    phase, reds_of = w._phases()
    f_roots, _ = w._roots([f"o{i}" for i in range(len(body.results))], phase, reds_of)
    reds = [ins for ins in body.body if ins.primitive.reduction]
    single = max(phase.values()) == 1 and not f_roots and \
        all(_acc_dtype(ins) != "bool" for ins in reds)
    big = [d for d in range(len(sp.shape)) if sp.shape[d] != 1]
    return ReductionShape(_prod(sp.kept_shape), _prod(sp.shape[d] for d in sp.axes),
                          bool(big) and big[-1] in sp.kept, single)


def generate(body: Function, kind: str, block: int, strategy: str = "rows",
             splits: int = 1) -> KernelSource:
    """The CUDA kernel of a fusion instruction's body; ``block`` is the
    number of threads per block (a power of two; reductions size their
    shared arrays with it). A reduction's ``strategy``: ``rows`` (one block
    per kept index), ``columns`` (one thread per kept index), or the two
    kernels of a reduction split ``splits`` ways per kept index:
    ``split_partial`` then ``split_final`` (blocks), ``column_partial`` then
    ``column_final`` (threads); all but ``rows`` need
    ``reduction_shape(body).single``, the column ones the innermost axis kept
    to be coalesced."""
    with deep_recursion(body):
        return KernelWriter(body, kind, block, strategy, splits).build()
