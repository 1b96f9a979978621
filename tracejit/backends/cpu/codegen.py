"""Kernel template: one fused kernel body (an IR Function) -> Numba source.

Every value is computed at an index (see ``fusion.reads``): the generator
asks for each kernel output at the current element of the iteration space
and recursively for the operands it reads, memoizing (value, index) per
loop scope and placing each statement in the outermost loop whose variables
it uses (loop-invariant values, like a row's maximum or a broadcast bias,
are computed once per row, not once per element).

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
from ...transforms.fusion import (REDUCTIONS, deep_recursion, Space, Facts, is_elementwise,
                                  reads, reduction_space)
from ..kernel_writer import LoweringError, ScopedWriter
from . import snippets


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


class _Block:
    """A scope: an optional loop header, its statements and nested blocks."""

    def __init__(self, header=None, binds=()):
        self.header = header
        self.binds = set(binds)
        self.items = []
        self.memo = {}
        self.open = None

    def add(self, item):
        if self.open is not None:
            self.items.insert(len(self.items) - 1, item)
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

    def __init__(self, body: Function, kind: str):
        self.fn = body
        self.facts = Facts(body)
        self.producer = self.facts.producer
        self.arrays = {v: f"a{i}" for i, v in enumerate(body.params)}
        self.dims: dict[int, str] = {}
        self.consts: dict[str, str] = {}
        self.vmath: set[str] = set()
        self.deps: dict[str, frozenset] = {}
        self.ntmp = 0
        self.top = _Block()
        self.stack = [self.top]
        self.acc: dict[Var, tuple] = {}   # reduction -> (accumulator, is an array, inner kept dims)
        self.nwin = 0
        self.scratch: list[tuple] = []   # (name, shape, dtype) of column accumulators
        # For writing outputs over dead inputs: where (index string), in
        # which pass (passes are numbered in the order they run) and at which
        # point of the source (``self.seq``) each input is read and each
        # output written.
        self.loaded: dict[Var, set] = {}
        self.stored: dict[int, tuple] = {}
        self.cur_pass = 0
        self.seq = 0
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
        self.flat = kind == "loop" and len(self.space.shape) > 1 and self._purely_elementwise()
        if self.flat:
            self.full_shape = self.space.shape
            self.space = Space((int(np.prod(self.space.shape)),))
        self.chunk = None

    def _purely_elementwise(self):
        shape = self.space.shape
        if any(p.shape not in (shape, ()) for p in self.fn.params):
            return False
        for ins in self.fn.body:
            if ins.prim == "broadcast_in_dim":
                if ins.operands[0].shape != ():
                    return False
            elif not is_elementwise(ins.prim) or \
                    (ins.results[0].shape not in (shape, ())):
                return False
        return True

    def _compute(self, v, comps):
        if v in self.arrays:
            idx, deps = self.index(comps)
            self.loaded.setdefault(v, set()).add((idx, self.cur_pass, self._next_seq()))
            return self.emit(f"{self.arrays[v]}[{idx}]", deps, (v, comps))
        if v in self.acc:
            name, is_array, kin = self.acc[v]
            if not is_array:
                self.deps[name] = self.acc_deps
                return name
            idx, deps = self.index(tuple(comps[self.space.kept.index(d)] for d in kin))
            return self.emit(f"{name}[{idx}]", deps | self.acc_deps, (v, comps))
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
            return self.emit(f"random_bits_at({k0}, {k1}, {lin})",
                             d | self.dep(k0) | self.dep(k1), (v, comps))
        if is_elementwise(p):
            args = [self.value(x, c) for x, c in reads(ins, comps)]
            in_dtype = ins.operands[0].dtype if ins.operands else v.dtype
            if p == "select":
                in_dtype = ins.operands[1].dtype
            expr = snippets.elementwise(p, in_dtype, v.dtype, args)
            if expr is None:
                raise LoweringError(f"no lowering for {p} on {in_dtype}")
            if p in ("exp", "log", "tanh", "logistic", "log1p", "expm1"):
                self.vmath.add(expr.split("(")[0])
            floating = v.dtype in ("float32", "float64")
            if v.dtype != "bool" and p != "convert" and (not floating or p in snippets.RETYPED):
                expr = f"{T}({expr})"
            deps = frozenset().union(*[self.dep(a) for a in args]) if args else frozenset()
            return self.emit(expr, deps, (v, comps))
        raise LoweringError(f"no kernel lowering for {p}")

    def _reduce_window(self, ins, comps):
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
        fill = snippets.reduction_init("reduce_max" if a["computation"] == "max"
                                       else "reduce_sum", v.dtype)
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
        prim = "reduce_max" if a["computation"] == "max" else "reduce_sum"
        self.stack[-1].add(f"{acc} = {snippets.reduction_combine(prim, v.dtype, acc, val)}")
        for _ in range(opened):
            self.close()
        self.stack = saved
        self.deps[acc] = deps
        target.memo[(v, comps)] = acc
        return acc

    # --- kernel layout --------------------------------------------------------------------
    def _loop(self, d, lo_hi=False):
        n = self.space.shape[d]
        if n == 1:
            return False
        rng = "range(lo, hi)" if d == self.chunk else f"range({self.dim(n)})"
        self.open(f"for i{d} in {rng}:", [f"i{d}"])
        return True

    def _next_seq(self):
        self.seq += 1
        return self.seq

    def _store_all(self, stores):
        """Store each ``(out_name, v)`` at ``v``'s own index: every value is
        computed (its inputs read) before the first store, so an output may
        be written over an input that another output of the pass reads."""
        names = [self.value(v, self._ident(v)) for _, v in stores]
        for (out_name, v), name in zip(stores, names):
            idx, _ = self.index(self._ident(v))
            self.stack[-1].add(f"{out_name}[{idx}] = {name}")
            self.stored[int(out_name[1:])] = (idx, self.cur_pass, self._next_seq())

    def _ident(self, v):
        if self.flat:
            return (("L", 0),)
        comps = self.space.identity(v.shape)
        if comps is None:
            raise LoweringError(f"output {v.type} does not fit the kernel's space")
        return comps

    def build(self) -> KernelSource:
        outs = [f"o{i}" for i in range(len(self.fn.results))]
        shape = self.space.shape
        big = [d for d, n in enumerate(shape) if n != 1]
        if not self.space.is_reduction:
            self.chunk = big[0] if big else None
            opened = sum(self._loop(d) for d in range(len(shape)))
            self._store_all(list(zip(outs, self.fn.results)))
            for _ in range(opened):
                self.close()
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
        reductions = [ins for ins in self.fn.body if ins.prim in REDUCTIONS]
        f_roots, k_roots = [], []
        for o, r in zip(outs, self.fn.results):
            if r in phase:
                k_roots.append((o, r))
                continue
            comps = sp.identity(r.shape)
            full = tuple(("L", d) for d in range(len(F)))
            if comps is not None and len(comps) == len(F) and \
                    tuple(c for c, n in zip(comps, r.shape) if n != 1) == \
                    tuple(c for c, n in zip(full, F) if n != 1):
                p = 1 + max((phase[x] for x in reds_of(r)), default=0)
                f_roots.append((o, r, max(p, 1)))
            else:
                k_roots.append((o, r))
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
                if kin:
                    self.scratch.append((n, kin_shape, t))
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
                init = self.const(snippets.reduction_init(ins.prim, x.dtype), x.dtype)
                inits += [(best[v], init), (self.acc[v][0], self.const(0, v.dtype))] \
                    if v in best else [(self.acc[v][0], init)]
            n_open = sum(self._loop(d) for d in kin)
            kin_idx = self.index(tuple(("L", d) for d in kin))[0] if kin else None
            for n, i in inits:
                self.stack[-1].add(f"{n}[{kin_idx}] = {i}" if kin else f"{n} = {i}")
            for _ in range(n_open):
                self.close()
            n_open = sum(self._loop(d) for d in inner)
            full = tuple(("L", d) for d in range(len(F)))
            kin_idx = self.index(tuple(("L", d) for d in kin))[0] if kin else None
            for ins in these:
                v = ins.results[0]
                x = self.value(ins.operands[0], full)
                name = self.acc[v][0]
                acc = f"{name}[{kin_idx}]" if kin else name
                if v in best:
                    b = f"{best[v]}[{kin_idx}]" if kin else best[v]
                    ax = self.loopvar(sp.axes[0])
                    self.stack[-1].add(f"if {snippets.arg_better(ins.prim, ins.operands[0].dtype, x, b)}:")
                    self.stack[-1].add(f"    {b} = {x}")
                    self.stack[-1].add(f"    {acc} = {snippets.CTOR[v.dtype]}({ax})")
                else:
                    comb = snippets.reduction_combine(ins.prim, ins.operands[0].dtype, acc, x)
                    self.stack[-1].add(f"{acc} = {comb}")
            self._store_all(stores)
            for _ in range(n_open):
                self.close()
        self.cur_pass = npass + 3   # runs after the last full pass (npass + 2)
        if k_roots:
            n_open = sum(self._loop(d) for d in kin)
            self._store_all(k_roots)
            for _ in range(n_open):
                self.close()
        for _ in range(opened):
            self.close()
        return int(np.prod(F)) * (npass + (1 if any(q > npass for *_, q in f_roots) else 0))

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
        head = snippets.HEADER.format(intrinsics=", ".join(snippets.INTRINSICS + tuple(sorted(self.vmath))))
        args = ["lo", "hi", "dims"] + [f"p_{name}" for name, _, _ in arrays]
        src = "\n".join([head] + consts + ["", "", f"def kernel({', '.join(args)}):"] + body) + "\n"
        pairs = set()
        for k, r in enumerate(self.fn.results):
            store = self.stored[k]
            for j, p in enumerate(self.fn.params):
                # every read of the input is of the element the output
                # writes there, and comes before that write
                loads = self.loaded.get(p, ())
                if p.type.strong() == r.type.strong() and loads and \
                        all(i == store[0] and (q, s) < store[1:] for i, q, s in loads):
                    pairs.add((j, k))
        return KernelSource(src, tuple(t for _, _, t in arrays), [(sh, t) for _, sh, t in self.scratch],
                            tuple(self.dims), extent, work, self.flat, frozenset(pairs))


def generate(body: Function, kind: str) -> KernelSource:
    with deep_recursion(body):
        return KernelWriter(body, kind).build()
