"""Kernel template: one fused kernel body (an IR Function) -> CUDA kernel
source for ``numba.cuda.jit``.

Values are computed at an index, as on the CPU (tracejit/backends/cpu/
codegen.py, from ``fusion.reads``): the writer asks for each output at the
current element and recursively for the operands it reads, memoizing
(value, index) per scope and placing each statement in the outermost scope
whose loop variables it uses.

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

from ...ir.core import Function, Var
from ...transforms.fusion import (REDUCTIONS, deep_recursion, Space, Facts, is_elementwise,
                                  reads, reduction_space)
from ..kernel_writer import LoweringError, ScopedWriter
from . import snippets


@dataclass
class KernelSource:
    source: str          # module text; the kernel is the function ``kernel``
    arg_types: tuple     # ('i64',) per scalar argument, then (dtype, ndim) per array
    scalars: tuple       # values of the scalar arguments (counts, then dims)
    kind: str            # 'loop' or 'reduction'
    units: int           # elements (loop) or kept indices (reduction): the grid's work
    inplace: frozenset   # (input, output) pairs: the output may be written over the input


def _prod(xs) -> int:
    return int(np.prod([int(x) for x in xs], dtype=np.int64))


def kernel_shape(shape) -> tuple:
    """The shape an array has as a kernel argument (rank 0 becomes (1,))."""
    return tuple(shape) if len(shape) else (1,)


class _Block:
    """A scope: an optional header, its statements and nested blocks."""

    def __init__(self, header=None, binds=()):
        self.header = header
        self.binds = set(binds)
        self.items = []
        self.memo = {}
        self.open = None

    def add(self, item):
        if self.open is not None:
            self.items.insert(self.items.index(self.open), item)
        else:
            self.items.append(item)

    def lines(self, indent):
        out = []
        inner = indent
        if self.header is not None:
            out.append(indent + self.header)
            inner = indent + "    "
        for it in self.items:
            out.extend(it.lines(inner) if isinstance(it, _Block) else [inner + it])
        if self.header is not None and not self.items:
            out.append(inner + "pass")
        return out


class KernelWriter(ScopedWriter):
    """Writes one kernel: ``build()`` lays out the loops, ``value()`` emits
    the statements computing a value at an index, placed by ``emit()``."""
    snippets = snippets
    Block = _Block

    def __init__(self, body: Function, kind: str, block: int):
        self.fn = body
        self.kind = kind
        self.block = block
        self.facts = Facts(body)
        self.producer = self.facts.producer
        self.arrays = {v: f"a{i}" for i, v in enumerate(body.params)}
        self.dims: dict[int, str] = {}
        self.consts: dict[str, str] = {}
        self.deps: dict[str, frozenset] = {}
        self.ntmp = 0
        self.top = _Block()
        self.stack = [self.top]
        self.acc: dict[Var, str] = {}
        self.acc_deps = frozenset()
        self.nwin = 0
        self.loaded: dict[Var, set] = {}
        self.stored: dict[int, tuple] = {}
        self.cur_pass = 0
        reds = [ins for ins in body.body if ins.prim in REDUCTIONS]
        if kind == "reduction":
            self.space = reduction_space(reds[0])
            if any(reduction_space(r).key() != self.space.key() for r in reds):
                raise LoweringError("reductions of different shapes in one kernel")
        else:
            if reds:
                raise LoweringError("reduction in a loop kernel")
            shapes = {v.shape for v in body.results}
            if len(shapes) != 1:
                raise LoweringError(f"loop kernel outputs of different shapes {shapes}")
            self.space = Space(shapes.pop())

    def _compute(self, v, comps):
        if v in self.arrays:
            idx, deps = self.index(comps)
            self.loaded.setdefault(v, set()).add((idx, self.cur_pass))
            return self.emit(f"{self.arrays[v]}[{idx}]", deps, (v, comps))
        if v in self.acc:
            self.deps[self.acc[v]] = self.acc_deps
            return self.acc[v]
        ins = self.producer[v]
        p = ins.prim
        T = snippets.CTOR[v.dtype]
        if p == "constant":
            return self.const(ins.attrs["value"], v.dtype)
        if p == "iota":
            x, d = self.render(comps[ins.attrs["dimension"]])
            return self.emit(f"{T}({x})", d, (v, comps))
        if p in ("broadcast_in_dim", "reshape", "transpose", "slice", "rev", "gather"):
            (x, oc), = reads(ins, comps, self.facts)[:1]
            return self.value(x, oc)
        if p == "pad":
            return self._pad(ins, comps)
        if p == "concatenate":
            return self._concatenate(ins, comps)
        if p == "reduce_window":
            return self._reduce_window(ins, comps)
        if p == "random_bits":
            (k, c0), (_, c1) = reads(ins, comps)
            k0, k1 = self.value(k, c0), self.value(k, c1)
            lin, d = self.render(("LIN", comps, v.shape))
            return self.emit(f"random_bits_at({k0}, {k1}, i64({lin}))",
                             d | self.dep(k0) | self.dep(k1), (v, comps))
        if is_elementwise(p):
            args = [self.value(x, c) for x, c in reads(ins, comps)]
            in_dtype = ins.operands[0].dtype if ins.operands else v.dtype
            if p == "select":
                in_dtype = ins.operands[1].dtype
            expr = snippets.elementwise(p, in_dtype, v.dtype, args)
            if expr is None:
                raise LoweringError(f"no lowering for {p} on {in_dtype}")
            if v.dtype != "bool" and p != "convert":
                expr = f"{T}({expr})"
            deps = frozenset().union(*[self.dep(a) for a in args]) if args else frozenset()
            return self.emit(expr, deps, (v, comps))
        raise LoweringError(f"no kernel lowering for {p}")

    def _reduce_window(self, ins, comps):
        """A windowed max or sum computed inside the element's computation:
        loops over the window around the element's position."""
        a = ins.attrs
        x = ins.operands[0]
        v = ins.results[0]
        w = self.nwin
        self.nwin += 1
        names = [f"w{w}_{d}" if k > 1 else "0" for d, k in enumerate(a["window_dimensions"])]
        window = [("W", n) if n != "0" else ("C", 0) for n in names]
        _, deps = self.index(comps)
        target = self._target(deps)
        saved = self.stack
        self.stack = saved[:saved.index(target) + 1]
        prim = "reduce_max" if a["computation"] == "max" else "reduce_sum"
        fill = snippets.reduction_init(prim, v.dtype)
        acc = f"t{self.ntmp}"
        self.ntmp += 1
        target.add(f"{acc} = {self.const(fill, v.dtype)}")
        opened = 0
        for n, k in zip(names, a["window_dimensions"]):
            if n != "0":
                self.open(f"for {n} in range({k}):", [n])
                opened += 1
        (_, oc), = reads(ins, comps, self.facts, window=window)
        val = self.value(x, oc)
        conds = []
        for c, wc, s, (lo, _), n, k, m in zip(comps, window, a["window_strides"], a["padding"],
                                              x.shape, a["window_dimensions"], v.shape):
            if lo == 0 and (m - 1) * s + k <= n:   # every window lies inside
                continue
            pos, _ = self.render(("A", ("ADD", c if s == 1 else ("A", c, s, 0), wc), 1, -lo))
            conds.append(f"({pos} >= 0 and {pos} < {self.dim(n)})")
        if conds:
            val = f"({val} if {' and '.join(conds)} else {self.const(fill, v.dtype)})"
        self.stack[-1].add(f"{acc} = {snippets.reduction_combine(prim, v.dtype, acc, val)}")
        for _ in range(opened):
            self.close()
        self.stack = saved
        self.deps[acc] = deps
        target.memo[(v, comps)] = acc
        return acc

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

    def _store(self, out_name, v, comps):
        name = self.value(v, comps)
        idx, _ = self.index(comps)
        self.stack[-1].add(f"{out_name}[{idx}] = {name}")
        self.stored[int(out_name[1:])] = (idx, self.cur_pass)

    def _ident(self, v):
        comps = self.space.identity(v.shape)
        if comps is None:
            raise LoweringError(f"output {v.type} does not fit the kernel's space")
        return comps

    def build(self) -> KernelSource:
        outs = [f"o{i}" for i in range(len(self.fn.results))]
        shape = self.space.shape
        if not self.space.is_reduction:
            self._grid_loop("for idx in range(cuda.grid(1), n, cuda.gridsize(1)):", "idx",
                            range(len(shape)))
            for o, r in zip(outs, self.fn.results):
                self._store(o, r, self._ident(r))
            self.close()
            counts = {"n": _prod(shape)}
        else:
            self._build_reduction(outs)
            counts = {"n": _prod(self.space.kept_shape),
                      "nr": _prod(self.space.shape[d] for d in self.space.axes)}
        return self._finish(outs, counts)

    def _build_reduction(self, outs):
        sp = self.space
        F = sp.shape
        phase, reds_of = self._phases()
        npass = max(phase.values())
        reductions = [ins for ins in self.fn.body if ins.prim in REDUCTIONS]
        full = tuple(("L", d) for d in range(len(F)))
        f_roots, k_roots = [], []
        for o, r in zip(outs, self.fn.results):
            if r in phase:
                k_roots.append((o, r))
                continue
            comps = sp.identity(r.shape)
            if comps is not None and len(comps) == len(F) and \
                    tuple(c for c, n in zip(comps, r.shape) if n != 1) == \
                    tuple(c for c, n in zip(full, F) if n != 1):
                p = 1 + max((phase[x] for x in reds_of(r)), default=0)
                f_roots.append((o, r, max(p, 1)))
            else:
                k_roots.append((o, r))
        B = self.block
        self.top.add("tid = cuda.threadIdx.x")
        shared = {}   # reduction -> shared arrays (value[, index])
        for ins in reductions:
            v, x = ins.results[0], ins.operands[0]
            name = f"acc{len(self.acc)}"
            self.acc[v] = name
            arrays = [(f"sh{len(self.acc) - 1}", x.dtype if ins.prim in ("argmax", "argmin")
                       else v.dtype)]
            if ins.prim in ("argmax", "argmin"):
                arrays.append((f"sh{len(self.acc) - 1}i", v.dtype))
            shared[v] = [n for n, _ in arrays]
            for n, t in arrays:
                self.top.add(f"{n} = cuda.shared.array({B}, {snippets.NBTYPE[t]})")
        kept = self._grid_loop("for kidx in range(cuda.blockIdx.x, n, cuda.gridDim.x):",
                               "kidx", sp.kept)
        self.acc_deps = frozenset(kept.binds)
        for p in range(1, npass + 2):
            self.cur_pass = p
            these = [ins for ins in reductions if phase[ins.results[0]] == p]
            stores = [(o, r) for o, r, q in f_roots if min(q, npass + 1) == p]
            if not these and not stores:
                continue
            for ins in these:
                v, x = ins.results[0], ins.operands[0]
                init = self.const(snippets.reduction_init(ins.prim, x.dtype), x.dtype)
                kept.add(f"{self.acc[v]} = {init}")
                if ins.prim in ("argmax", "argmin"):
                    kept.add(f"{self.acc[v]}i = {snippets.CTOR[v.dtype]}(-1)")
            self._grid_loop(f"for ridx in range(tid, nr, {B}):", "ridx", sp.axes)
            for ins in these:
                self._accumulate(ins, self.value(ins.operands[0], full))
            for o, r in stores:
                self._store(o, r, self._ident(r))
            self.close()
            if these:
                self._tree(these, shared)
        self.cur_pass = npass + 2
        if k_roots:
            self.open("if tid == 0:", [])
            for o, r in k_roots:
                self._store(o, r, self._ident(r))
            self.close()
        self.close()

    def _accumulate(self, ins, x):
        v = ins.results[0]
        acc = self.acc[v]
        dtype = ins.operands[0].dtype
        if ins.prim in ("argmax", "argmin"):
            ax = self.loopvar(self.space.axes[0])
            add = self.stack[-1].add
            add(f"if {acc}i < 0 or {snippets.arg_better(ins.prim, dtype, x, acc)}:")
            add(f"    {acc} = {x}")
            add(f"    {acc}i = {snippets.CTOR[v.dtype]}({ax})")
        else:
            self.stack[-1].add(f"{acc} = {snippets.reduction_combine(ins.prim, dtype, acc, x)}")

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
                add(f"        if {snippets.arg_combine(ins.prim, dtype, a, ia, b, ib)}:")
                add(f"            {a} = {b}")
                add(f"            {ia} = {ib}")
            else:
                comb = snippets.reduction_combine(ins.prim, dtype, a, b)
                add(f"        {a} = {comb}")
        add("    cuda.syncthreads()")
        add("    s //= 2")
        for ins in these:
            v = ins.results[0]
            sh = shared[v]
            if len(sh) > 1:
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
        arrays = [(self.arrays[p], p.type) for p in self.fn.params] + \
            [(o, r.type) for o, r in zip(outs, self.fn.results)]
        scalars = list(counts) + list(self.dims.values())
        args = scalars + [name for name, _ in arrays]
        consts = [f"{name} = {text}" for text, name in self.consts.items()]
        src = "\n".join([snippets.HEADER] + consts +
                        ["", "", f"def kernel({', '.join(args)}):"] + self.top.lines("    ")) + "\n"
        arg_types = tuple(["i64"] * len(scalars) +
                          [(t.dtype, len(kernel_shape(t.shape))) for _, t in arrays])
        pairs = set()
        for k, r in enumerate(self.fn.results):
            idx, when = self.stored[k]
            for j, p in enumerate(self.fn.params):
                loads = self.loaded.get(p, ())
                if p.type.strong() == r.type.strong() and loads and \
                        all(i == idx and q <= when for i, q in loads):
                    pairs.add((j, k))
        return KernelSource(src, arg_types, tuple(counts.values()) + tuple(self.dims),
                            self.kind, counts["n"], frozenset(pairs))


def generate(body: Function, kind: str, block: int) -> KernelSource:
    """The CUDA kernel of a fusion instruction's body; ``block`` is the
    number of threads per block (a power of two; reductions size their
    shared arrays with it)."""
    with deep_recursion(body):
        return KernelWriter(body, kind, block).build()
