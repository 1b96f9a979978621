"""The kernel writer both backends share.

A writer turns one fused kernel body (an IR Function) into the source of
one kernel. Every value is computed *at an index* (tracejit/kernel/
index.py): the writer asks for each output at the current element of the
iteration space and recursively for the operands it reads (``value``),
memoizing (value, index) per scope and placing each statement in the
outermost scope whose loop variables it uses (``emit``): loop-invariant
values, like a row's maximum or a broadcast bias, are computed once per
row, not once per element.

What is here is the same on every backend: naming dimensions and
constants, statement placement, ``_compute`` (the code of one value at an
index: loads, index ops, elementwise snippets from the backend's table,
windowed reductions, random bits), pad and concatenate, the order of a
reduction kernel's phases, which outputs are written at the full and
which at the reduced shape, storing outputs, and which outputs may be
written over which inputs. A backend's writer lays out its loops (a CPU
loop nest, a CUDA grid) and finishes the module; it sets the class
attribute ``snippets`` (its table, tracejit/kernel/snippets.py) and may
override the hooks ``_load`` (an array element) and ``_accumulator`` (a
reduction's result inside its kernel).
"""
from __future__ import annotations

from ..ir.core import Function, Var
from .index import (
    VIEW_OPS,
    Add,
    Affine,
    Const,
    Linear,
    Loop,
    Space,
    Window,
    reads,
    reduction_space,
    uses_loop,
)
from .ranges import Facts


class LoweringError(Exception):
    """A kernel body uses something the template cannot generate."""


class Block:
    """A scope: an optional header (a loop, an ``if``), its statements and
    nested blocks. While a nested block is open, statements added here go
    before it."""

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
            out.extend(it.lines(inner) if isinstance(it, Block) else [inner + it])
        if self.header is not None and not self.items:
            out.append(inner + "pass")
        return out


def kernel_space(body: Function, kind: str) -> Space:
    """The iteration space of a fusion body of ``kind`` ('loop' or 'reduction')."""
    reds = [ins for ins in body.body if ins.primitive.reduction]
    if kind == "reduction":
        space = reduction_space(reds[0])
        if any(reduction_space(r).key() != space.key() for r in reds):
            raise LoweringError("reductions of different shapes in one kernel")
        return space
    if reds:
        raise LoweringError("reduction in a loop kernel")
    shapes = {v.shape for v in body.results}
    if len(shapes) != 1:
        raise LoweringError(f"loop kernel outputs of different shapes {shapes}")
    return Space(shapes.pop())


class ScopedWriter:
    snippets = None   # the backend's table (a tracejit.kernel.snippets.Snippets)

    def __init__(self, body: Function, kind: str):
        self.fn = body
        self.kind = kind
        self.facts = Facts(body)
        self.producer = self.facts.producer
        self.arrays = {v: f"a{i}" for i, v in enumerate(body.params)}
        self.dims: dict[int, str] = {}
        self.consts: dict[str, str] = {}
        self.imports: set[str] = set()    # names the snippets need imported
        self.deps: dict[str, frozenset] = {}
        self.ntmp = 0
        self.top = Block()
        self.stack = [self.top]
        self.acc: dict = {}               # reduction -> its accumulator
        self.acc_deps = frozenset()
        self.nwin = 0
        # For writing outputs over dead inputs: where (index string), in
        # which pass (passes are numbered in the order they run) and at which
        # point of the source (``seq``) each input is read and each output
        # written.
        self.loaded: dict[Var, set] = {}
        self.stored: dict[int, tuple] = {}
        self.cur_pass = 0
        self.seq = 0
        self.flat = False
        self.space = kernel_space(body, kind)

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
            self._memo_block(block, key).memo[key] = name
        return name

    def _memo_block(self, block, key):
        """Where to memoize ``key``: ``block``, or the innermost loop over a
        dimension with a known range (``loop_range``) that the key's
        components read: what the value is there may rest on that range (a
        pad known to be inside), so it must not be reused outside it."""
        comps = key[1] if isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], tuple) \
            else ()
        pins = frozenset(f"i{d}" for d in self.ranged_dims() if any(uses_loop(c, d) for c in comps))
        if not pins:
            return block
        inner = self._target(pins)
        return inner if self.stack.index(inner) > self.stack.index(block) else block

    def ranged_dims(self):
        """The dimensions whose loop variables have a range narrower than
        the space's (see ``loop_range``)."""
        return ()

    def lookup(self, key):
        """The name memoized for ``key`` in an open scope, or None."""
        for b in reversed(self.stack):
            if key in b.memo:
                return b.memo[key]
        return None

    def open(self, header, binds):
        b = Block(header, binds)
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
        """(code, deps) of an index component (tracejit/kernel/index.py)."""
        return c.render(self)

    def index(self, comps):
        """Index string (arrays of rank 0 are indexed with shape (1,))."""
        parts = [self.render(c) for c in comps]
        deps = frozenset().union(*[d for _, d in parts]) if parts else frozenset()
        return (", ".join(p for p, _ in parts) if parts else "0"), deps

    # --- values ----------------------------------------------------------------------------
    def value(self, v: Var, comps: tuple) -> str:
        key = (v, comps)
        code = self.lookup(key)
        if code is not None:
            return code
        code = self._compute(v, comps)
        if code in self.deps or code.startswith("K") or code in ("True", "False"):
            self._memo_block(self._target(self.dep(code)), key).memo[key] = code
        return code

    # --- index ops and reduction phases ------------------------------------------------------
    def loop_range(self, d):
        """``(lo, hi)`` bounds of loop variable ``d`` where this writer knows
        them (a CPU kernel's split loops), else None."""
        return None

    def _pad(self, ins, comps):
        """The operand where the position is inside it, else the padding
        value: a condition is rendered only where the position's range (its
        ``interval``) does not decide it, and the operand is not computed
        at all where the position is known to be outside."""
        conds, deps = [], frozenset()
        for c, n, (lo, hi, it) in zip(comps, ins.operands[0].shape, ins.attrs["config"]):
            if lo == 0 and hi <= 0 and it == 0:   # every position is inside
                continue
            pos = c if lo == 0 else Affine(c, 1, -lo)
            span = (n - 1) * (it + 1) + 1 if n else 0
            r = pos.interval(self)
            if r is not None and (r[1] < 0 or r[0] >= span or (it and r[0] == r[1] and r[0] % (it + 1))):
                return self.value(ins.operands[1], ())   # always padding
            if r is not None and it == 0 and 0 <= r[0] and r[1] < span:
                continue   # always inside
            code, d = self.render(pos)
            deps |= d
            cond = f"{code} >= 0 and {code} < {span}"
            if it:
                cond += f" and {code} % {it + 1} == 0"
            conds.append(f"({cond})")
        (x, oc), (pv, _) = reads(ins, comps, self.facts)
        xv = self.value(x, oc)
        if not conds:
            return xv
        padv = self.value(pv, ())
        deps |= self.dep(xv) | self.dep(padv)
        return self.emit(f"{xv} if ({' and '.join(conds)}) else {padv}", deps,
                         (ins.results[0], comps))

    def _concatenate(self, ins, comps):
        """The operand the position falls in: only the operands its range
        (``interval``) may reach are computed."""
        ax = ins.attrs["axis"]
        r = comps[ax].interval(self) or (0, ins.results[0].shape[ax] - 1)
        every, off = [], 0
        for x, oc in reads(ins, comps, self.facts):
            every.append((x, oc, off, off + x.shape[ax]))
            off += x.shape[ax]
        parts = [(x, oc, end) for x, oc, start, end in every
                 if start <= r[1] and r[0] < end and start < end] or \
            [(x, oc, end) for x, oc, _, end in every]   # an empty axis: never runs
        vals = [self.value(x, oc) for x, oc, _ in parts]
        if len(vals) == 1:
            return vals[0]
        c, deps = self.render(comps[ax])
        for val in vals:
            deps |= self.dep(val)
        expr = vals[-1]
        for val, (_, _, end) in reversed(list(zip(vals[:-1], parts[:-1]))):
            expr = f"{val} if {c} < {end} else ({expr})"
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
            elif ins.primitive.reduction:
                r = frozenset([v])
            else:
                r = frozenset()
                for x in ins.operands:
                    r |= reds_of(x)
            memo[v] = r
            return r
        phase = {}
        for ins in self.fn.body:
            if ins.primitive.reduction:
                deps = reds_of(ins.operands[0])
                phase[ins.results[0]] = 1 + max((phase[r] for r in deps), default=0)
        return phase, reds_of

    def _roots(self, outs, phase, reds_of):
        """The outputs of a reduction kernel: ``(full, kept)``, those written
        at the full space's current element, with the pass (after the
        reductions they read) that writes them, ``(name, value, pass)``,
        and those written once per kept index, ``(name, value)``."""
        full, kept = [], []
        for o, r in zip(outs, self.fn.results):
            if r not in phase and self.space.is_full(r.shape):
                p = 1 + max((phase[x] for x in reds_of(r)), default=0)
                full.append((o, r, max(p, 1)))
            else:
                kept.append((o, r))
        return full, kept

    # --- values at an index ------------------------------------------------------------------
    def _compute(self, v, comps):
        """The code of value ``v`` at index ``comps`` (a name or literal)."""
        if v in self.arrays:
            return self._load(v, comps)
        if v in self.acc:
            return self._accumulator(v, comps)
        ins = self.producer[v]
        p = ins.prim
        if p == "constant":
            return self.const(ins.attrs["value"], v.dtype)
        if p == "iota":
            x, d = self.render(comps[ins.attrs["dimension"]])
            return self.emit(f"{self.snippets.CTOR[v.dtype]}({x})", d, (v, comps))
        if p in VIEW_OPS:
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
            lin, d = self.render(Linear(comps, v.shape))
            return self.emit(self.snippets.random_bits(k0, k1, lin),
                             d | self.dep(k0) | self.dep(k1), (v, comps))
        if ins.primitive.elementwise:
            return self._elementwise(ins, v, comps)
        raise LoweringError(f"no kernel lowering for {p}")

    def _elementwise(self, ins, v, comps):
        p = ins.prim
        args = [self.value(x, c) for x, c in reads(ins, comps)]
        in_dtype = ins.operands[0].dtype if ins.operands else v.dtype
        if p == "select":
            in_dtype = ins.operands[1].dtype
        expr = self.snippets.elementwise(p, in_dtype, v.dtype, args)
        if expr is None:
            raise LoweringError(f"no lowering for {p} on {in_dtype}")
        self.imports.update(self.snippets.imports(p, in_dtype))
        if self.snippets.retype(p, v.dtype):
            expr = f"{self.snippets.CTOR[v.dtype]}({expr})"
        deps = frozenset().union(*[self.dep(a) for a in args]) if args else frozenset()
        return self.emit(expr, deps, (v, comps))

    def _load(self, v, comps):
        """An element of input array ``v``."""
        idx, deps = self.index(comps)
        self.loaded.setdefault(v, set()).add((idx, self.cur_pass, self._next_seq()))
        return self.emit(self.snippets.load(v.dtype, f"{self.arrays[v]}[{idx}]"), deps, (v, comps))

    def _accumulator(self, v, comps):
        """The result of reduction ``v`` of this kernel, read after its phase."""
        name = self.acc[v]
        self.deps[name] = self.acc_deps
        return name

    def _reduce_window(self, ins, comps):
        """A windowed max or sum computed inside the element's computation:
        loops over the window around the element's position."""
        a = ins.attrs
        x = ins.operands[0]
        v = ins.results[0]
        w = self.nwin
        self.nwin += 1
        names = [f"w{w}_{d}" if k > 1 else "0" for d, k in enumerate(a["window_dimensions"])]
        window = [Window(n, d) if n != "0" else Const(0) for d, n in enumerate(names)]
        _, deps = self.index(comps)
        target = self._target(deps)
        saved = self.stack
        self.stack = saved[:saved.index(target) + 1]
        prim = "reduce_max" if a["computation"] == "max" else "reduce_sum"
        fill = self.snippets.reduction_init(prim, v.dtype)
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
            pos, _ = self.render(Affine(Add(c if s == 1 else Affine(c, s, 0), wc), 1, -lo))
            conds.append(f"({pos} >= 0 and {pos} < {self.dim(n)})")
        if conds:
            val = f"({val} if {' and '.join(conds)} else {self.const(fill, v.dtype)})"
        self.stack[-1].add(f"{acc} = {self.snippets.reduction_combine(prim, v.dtype, acc, val)}")
        for _ in range(opened):
            self.close()
        self.stack = saved
        self.deps[acc] = deps
        target.memo[(v, comps)] = acc
        return acc

    # --- outputs -----------------------------------------------------------------------------
    def _next_seq(self):
        self.seq += 1
        return self.seq

    def _ident(self, v):
        """The index of output ``v`` at the current element."""
        if self.flat:
            return (Loop(0),)
        comps = self.space.identity(v.shape)
        if comps is None:
            raise LoweringError(f"output {v.type} does not fit the kernel's space")
        return comps

    def _store_all(self, stores):
        """Store each ``(out_name, v)`` at ``v``'s own index: every value is
        computed (its inputs read) before the first store, so an output may
        be written over an input that another output of the pass reads."""
        names = [self.value(v, self._ident(v)) for _, v in stores]
        for (out_name, v), name in zip(stores, names):
            idx, _ = self.index(self._ident(v))
            self.stack[-1].add(f"{out_name}[{idx}] = {self.snippets.store(v.dtype, name)}")
            self.stored[int(out_name[1:])] = (idx, self.cur_pass, self._next_seq())

    def inplace_pairs(self) -> frozenset:
        """(input, output) pairs such that the output may be written over the
        input: every read of the input is of the element the output writes
        there, and comes before that write."""
        pairs = set()
        for k, r in enumerate(self.fn.results):
            idx, *when = self.stored[k]
            for j, p in enumerate(self.fn.params):
                loads = self.loaded.get(p, ())
                if p.type.strong() == r.type.strong() and loads and \
                        all(i == idx and (q, s) < tuple(when) for i, q, s in loads):
                    pairs.add((j, k))
        return frozenset(pairs)
