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
expensive value (a primitive declared ``expensive``: transcendental functions, windowed
reductions) that would be recomputed at two different indices or in two
kernels is materialized instead, and the kernels are formed again.

Before grouping, the rewrites of transforms/algebra.py that help the
backends run (a transpose feeding a ``dot_general`` becomes its dimension
numbers, a transpose of a dot's result swaps the dot's operands, a one-hot
scatter-add becomes an elementwise select). Index components and ``reads``
are the kernel layer's (tracejit/kernel/index.py), value ranges its
``Facts`` (tracejit/kernel/ranges.py): fusion sees indices exactly as the
kernel writers will render them.
"""
from __future__ import annotations

from ..ir.core import Function, Instr, Var
from ..kernel.index import Loop, Space, reads, reduction_space, squeeze_comps
from ..kernel.ranges import Facts
from .algebra import absorb_transposes, one_hot_scatters, swap_transposed_dots

# --- kernels -------------------------------------------------------------------------------

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
                      if v in materialized and v not in views and ins.primitive.fusible]
        self.kernel = {v: (v,) for v in self.roots}   # root -> the roots of its kernel
        self._analyzed = {}
        self.visits = {}   # kernel -> the (value, index) pairs it computes or loads

    # -- analysis of one candidate kernel --
    def space(self, roots):
        reds = [self.producer[v] for v in roots if self.producer[v].primitive.reduction]
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
        ident_k = tuple(Loop(d) for d in space.kept) if space.is_reduction else None
        stack = []
        for v in roots:
            ins = self.producer[v]
            if ins.primitive.reduction:
                stack.append((ins.operands[0], space.full()))
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
            if ins.primitive.reduction:   # one of ours: only at the current row
                if squeeze_comps(comps, v.shape) != squeeze_comps(ident_k, v.shape):
                    return None
                continue
            for x, oc in reads(ins, comps, self.facts):
                stack.append((x, oc))
                for c in oc:
                    for vv, cc in c.values():
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
                if ins is not None and ins.primitive.expensive and v not in self.M and v.shape:
                    where.setdefault(v, set()).add((k, squeeze_comps(comps, v.shape)))
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
            if not ins.primitive.fusible or ins.results[0] in self.views:
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
        reds = [v for v in self.roots if P[v].primitive.reduction]
        others = [v for v in self.roots if not P[v].primitive.reduction]
        # 1. reductions with the reductions (of the same space) they read
        for r in reds:
            res = self.analyze((r,))
            for x in sorted(res[1] if res else (), key=lambda v: -self.order.get(v, -1)):
                if x in self.kernel and P[x].primitive.reduction:
                    self.merge(r, x)
        # 2. consumers with the reductions they read (latest first)
        for v in others:
            res = self.analyze(self.kernel[v])
            for x in sorted(res[1] if res else (), key=lambda v: -self.order.get(v, -1)):
                if x in self.kernel and P[x].primitive.reduction and self.merge(v, x):
                    break
        # 3. reductions with the full-shape values they read
        for r in reds:
            res = self.analyze(self.kernel[r])
            for x in res[1] if res else ():
                if x in self.kernel and not P[x].primitive.reduction:
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


# --- the pass ------------------------------------------------------------------------------

def _dce(fn: Function) -> list:
    live = set(fn.results)
    body = []
    for ins in reversed(fn.body):
        if any(r in live for r in ins.results) or not ins.results:
            body.append(ins)
            live.update(ins.operands)
    return body[::-1]


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
    body = absorb_transposes(body, producer)
    body = _dce(Function(fn.params, body, fn.results, fn.name))
    body = swap_transposed_dots(body, fn.results)
    body = one_hot_scatters(body, fn)
    return Function(fn.params, _dce(Function(fn.params, body, fn.results, fn.name)),
                    fn.results, fn.name)


def _materialized(fn: Function):
    """(values that must be arrays, reshapes that are views of arrays)."""
    producer = {r: ins for ins in fn.body for r in ins.results}
    M = set(fn.params) | set(fn.results)
    for ins in fn.body:
        if not ins.primitive.fusible:
            M.update(ins.operands)
            M.update(ins.results)
        elif ins.primitive.reduction:
            M.update(ins.results)
    # A reshaped value is materialized in its own shape, and the reshape is a
    # view of it: kernels loop over natural shapes (a pooled feature map, not
    # its flattened copy indexed with divisions).
    for ins in fn.body:
        if ins.prim == "reshape" and ins.results[0] in M and ins.operands[0] in producer \
                and producer[ins.operands[0]].primitive.fusible:
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
        if not ins.primitive.fusible or (ins.results and ins.results[0] in views):
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
        elif r0 is None or r0 in views or not ins.primitive.fusible:
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
