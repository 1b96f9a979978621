"""Buffer liveness and reuse: what the plans of every backend share.

A plan gives each value of a fused Function a buffer when the plan is
built. ``BufferPlan`` keeps the bookkeeping: the step after which each
value is dead (``last``), the values that must get memory of their own
(``must_fresh``: results, and the bases of results that are views), a
reference count per buffer, and the buffers free again. The kinds of
buffer are

    'pooled'  an intermediate the plan owns; reused by a later value once
              free (the CPU's arena, the CUDA backend's device arrays)
    'param'   a parameter; ``donor`` names the donated ones, whose buffer
              is reused for a result of the same shape and dtype once dead
    'fresh'   a result's new array, allocated on each call
    'ext'     an array made by a library or Python call

A backend's plan subclasses it, implements ``step(i, ins)`` and
``recycle(buffer)`` (a free 'pooled' buffer), and calls ``walk()``.
"""
from __future__ import annotations

from ..ir.core import Function, Var


class Buffer:
    __slots__ = ("data", "donor", "kind", "nbytes", "refs", "type")

    def __init__(self, kind, data=None, donor=None, type=None, nbytes=0):
        self.kind = kind
        self.refs = 0
        self.data = data          # the memory of a pooled buffer
        self.donor = donor        # a donated parameter's name or slot
        self.type = type
        self.nbytes = nbytes


class BufferPlan:
    #: Kinds of input buffer a kernel may write a result over (in place).
    RESULT_OVER = ("param",)

    def __init__(self, fn: Function, donate=()):
        self.fn = fn
        self.donate = {fn.params[i] for i in donate if i < len(fn.params)}
        self.buf: dict[Var, Buffer] = {}
        self.donated_free: dict[tuple, list] = {}   # key -> dead donated parameters

    def key(self, t) -> tuple:
        """Buffers of types with equal keys are interchangeable."""
        return (t.shape, t.dtype)

    def bind(self, v: Var, buf: Buffer):
        self.buf[v] = buf
        buf.refs += 1

    def release(self, v: Var):
        b = self.buf.pop(v, None)
        if b is None:
            return
        b.refs -= 1
        if b.refs == 0:
            if b.kind == "pooled":
                self.recycle(b)
            elif b.kind == "param" and b.donor is not None:
                self.donated_free.setdefault(self.key(b.type), []).append(b)

    def recycle(self, b: Buffer):
        raise NotImplementedError

    def donated(self, v: Var):
        """A dead donated parameter's buffer for result ``v``, or None."""
        free = self.donated_free.get(self.key(v.type))
        return free.pop() if free else None

    def in_place(self, v: Var, step: int, inputs) -> Var | None:
        """An input of ``step`` whose buffer ``v`` may take over: it dies
        there, has ``v``'s type, and is a pooled buffer (or, for a result,
        one the caller need not see again)."""
        for x in inputs:
            b = self.buf.get(x)
            if b is not None and b.refs == 1 and self.last.get(x) == step and \
                    x.type.strong() == v.type.strong() and \
                    (b.kind in self.RESULT_OVER if v in self.must_fresh else b.kind == "pooled") and \
                    (b.kind != "param" or b.donor is not None):
                return x
        return None

    def liveness(self):
        """``last`` (value -> the last step reading it; results live to the
        end) and ``must_fresh``. A view (reshape) keeps its base alive, and
        the base of a result's view must be an array of its own."""
        body = self.fn.body
        self.last = {}
        for i, ins in enumerate(body):
            for x in ins.operands:
                self.last[x] = i
        for v in self.fn.results:
            self.last[v] = len(body)
        self.must_fresh = set(self.fn.results)
        for i, ins in reversed(list(enumerate(body))):
            if ins.prim == "reshape":
                base, view = ins.operands[0], ins.results[0]
                self.last[base] = max(self.last.get(base, i), self.last.get(view, i))
                if view in self.must_fresh:
                    self.must_fresh.add(base)

    def walk(self):
        """Run ``step`` over the body, releasing each value after its last use."""
        for p in self.fn.params:
            if p not in self.last:
                self.release(p)
        for i, ins in enumerate(self.fn.body):
            self.step(i, ins)
            for x in dict.fromkeys(ins.operands):
                if self.last.get(x) == i:
                    self.release(x)
            for r in ins.results:
                if r not in self.last:
                    self.release(r)

    def step(self, i: int, ins):
        raise NotImplementedError
