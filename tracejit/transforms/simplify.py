"""Simplification passes: dead-code elimination, common-subexpression
elimination, constant folding and algebraic rewrites (transforms/algebra.py).
:func:`simplify` runs them to a fixed point; tracejit/pipeline.py runs it on
every jitted Function.

Each pass is a pure IR -> IR function: it returns a new Function and leaves
its input as it was (the two share Vars, which nothing mutates). Passes are
linear in program size: every table is keyed by Var identity. All
primitives are pure, so an instruction whose results are unused can go,
``random_bits`` included (a key always gives the same bits), and two equal
instructions on the same operands can merge.

Sub-Functions of structured ops (cond, while, scan) are closed, so each is
simplified on its own; their parameters and results are kept as they are,
since only the op knows what they mean.
"""
from __future__ import annotations

import struct

import numpy as np

from ..ir import verify
from ..ir.core import Function, Instr, Var
from ..ir.types import TensorType
from . import algebra
from .inline import functions_in, inline_calls, map_functions

#: Constant folding materializes operands and results only up to this many
#: elements; elementwise ops on broadcast constants fold at any size, since
#: they compute on the one scalar.
FOLD_LIMIT = 16
#: simplify() stops after this many rounds even if something still changes.
MAX_ROUNDS = 8


def simplify(fn: Function) -> Function:
    """All passes, repeated until nothing changes (at most MAX_ROUNDS), then
    the result is verified. Subfunction calls are inlined first, so the
    passes (and fusion after them) see across the call boundaries."""
    fn = inline_calls(fn)
    for _ in range(MAX_ROUNDS):
        fn, rewritten = _Rewriter(algebra=True, fold=True, cse=True).run(fn)
        fn, removed = _dce(fn)
        if not (rewritten or removed):
            break
    verify(fn)
    return fn


def dce(fn: Function) -> Function:
    """Drop the instructions that no result depends on."""
    return _dce(fn)[0]


def cse(fn: Function) -> Function:
    """Merge instructions with the same primitive, operands and attributes
    (constants: the same value, bit for bit, and type)."""
    return _Rewriter(cse=True).run(fn)[0]


def fold_constants(fn: Function) -> Function:
    """Evaluate instructions whose operands are all constants (or broadcasts
    of constants) when the result is one repeated value, into a constant
    (broadcast to the result's shape). The constants they used are left for
    dce."""
    return _Rewriter(fold=True).run(fn)[0]


def algebraic_simplify(fn: Function) -> Function:
    """Apply the rewrites of transforms/algebra.py."""
    return _Rewriter(algebra=True).run(fn)[0]


def _dce(fn: Function):
    live = set(fn.results)
    kept, changed = [], False

    def sub(f):
        nonlocal changed
        f, c = _dce(f)
        changed |= c
        return f

    for ins in reversed(fn.body):
        if not any(r in live for r in ins.results):
            changed = True
            continue
        live.update(ins.operands)
        attrs = {k: map_functions(v, sub) for k, v in ins.attrs.items()}
        kept.append(Instr(ins.prim, ins.operands, attrs, ins.results))
    kept.reverse()
    return Function(fn.params, kept, fn.results, fn.name), changed


def _attr_key(value):
    """A hashable key that equals only for interchangeable attributes:
    floats by their bits (so -0.0 != 0.0 and NaN == NaN), sub-Functions by
    their text."""
    if isinstance(value, float):
        return float, struct.pack("<d", value)
    if isinstance(value, tuple):
        return tuple, tuple(_attr_key(v) for v in value)
    if isinstance(value, Function):
        return Function, str(value)
    return type(value), value


def _cse_key(ins: Instr):
    operands = tuple(ins.operands)
    if ins.primitive.commutative:
        operands = tuple(sorted(operands, key=id))
    attrs = tuple(sorted((k, _attr_key(v)) for k, v in ins.attrs.items()))
    return ins.prim, operands, attrs, tuple(r.type for r in ins.results)


def _uniform(array):
    """The one value every element of ``array`` has (bit for bit), else None."""
    array = np.asarray(array)
    if array.size == 0:
        return None
    first = array.reshape(-1)[0]
    if np.full(array.shape, first, array.dtype).tobytes() != array.tobytes():
        return None
    return np.asarray(first)


def _splat_instrs(value, r: Var):
    """Instructions defining ``r`` as the scalar ``value`` broadcast to its shape."""
    c = r if r.shape == () else Var(TensorType((), r.dtype, r.type.weak), r.src)
    attrs = {"value": np.asarray(value, r.dtype).item(), "dtype": r.dtype, "weak": r.type.weak}
    instrs = [Instr("constant", [], attrs, [c])]
    if c is not r:
        instrs.append(Instr("broadcast_in_dim", [c],
                            {"shape": r.shape, "broadcast_dimensions": ()}, [r]))
    return instrs


class _Rewriter:
    """One forward pass over a Function. Each instruction, its operands
    renamed after the replacements made so far, goes through the enabled
    rewrites; what they emit goes through them again; CSE comes last."""

    def __init__(self, algebra=False, fold=False, cse=False):
        self.flags = dict(algebra=algebra, fold=fold, cse=cse)
        self.env: dict[Var, Var] = {}      # input Var -> the Var replacing it
        self.body: list[Instr] = []
        self.defs: dict[Var, Instr] = {}   # Var -> its instruction in self.body
        self.splats: dict[Var, np.ndarray] = {}   # Var -> its one value (0-d)
        self.table: dict = {}              # CSE key -> results
        self.changed = False

    def run(self, fn: Function):
        for ins in fn.body:
            attrs = {k: map_functions(v, self._sub) for k, v in ins.attrs.items()}
            self.emit(Instr(ins.prim, ins.operands, attrs, ins.results))
        results = [self.env.get(v, v) for v in fn.results]
        return Function(fn.params, self.body, results, fn.name), self.changed

    def _sub(self, fn: Function) -> Function:
        fn, changed = _Rewriter(**self.flags).run(fn)
        self.changed |= changed
        return fn

    # --- what algebra rules may ask -------------------------------------
    def splat(self, v: Var):
        return self.splats.get(v)

    def producer(self, v: Var):
        return self.defs.get(v)

    # ----------------------------------------------------------------------
    def emit(self, ins: Instr):
        ins.operands = [self.env.get(v, v) for v in ins.operands]   # ins is ours
        replacement = None
        if self.flags["algebra"]:
            replacement = algebra.rewrite(ins, self)
        if replacement is None and self.flags["fold"]:
            replacement = self._fold(ins)
        if replacement is not None:
            self.changed = True
            if isinstance(replacement, Var):
                self.env[ins.results[0]] = replacement
            else:
                for new in replacement:
                    self.emit(new)
            return
        if self.flags["cse"]:
            key = _cse_key(ins)
            earlier = self.table.get(key)
            if earlier is not None:
                self.changed = True
                self.env.update(zip(ins.results, earlier))
                return
            self.table[key] = ins.results
        self.body.append(ins)
        for r in ins.results:
            self.defs[r] = ins
        if ins.prim == "constant":
            r = ins.results[0]
            self.splats[r] = np.asarray(ins.attrs["value"], r.dtype)
        elif ins.prim == "broadcast_in_dim" and ins.operands[0] in self.splats:
            self.splats[ins.results[0]] = self.splats[ins.operands[0]]

    def _fold(self, ins: Instr):
        prim = ins.primitive
        if ins.prim == "constant" or prim.kind in ("random", "control") or any(
                any(functions_in(v)) for v in ins.attrs.values()):
            return None
        if ins.prim == "broadcast_in_dim" and ins.operands[0].shape == ():
            return None   # already the folded form of a repeated value
        values = [self.splats.get(v) for v in ins.operands]
        if any(v is None for v in values):
            return None
        if not prim.elementwise and any(   # symbolic sizes: no arrays to fold on
                v.type.symbolic or v.type.size > FOLD_LIMIT for v in ins.operands + ins.results):
            return None
        try:
            if prim.elementwise:   # on the scalars: the same values
                outs = [np.asarray(o) for o in prim.impl(*values, **ins.attrs)]
            else:
                arrays = [np.full(v.shape, s, v.dtype) for v, s in zip(ins.operands, values)]
                outs = [_uniform(o) for o in prim.impl(*arrays, **ins.attrs)]
        except (ArithmeticError, ValueError):
            return None   # e.g. an integer to a negative power: left to run time
        if any(o is None for o in outs):
            return None
        return [new for r, o in zip(ins.results, outs) for new in _splat_instrs(o, r)]
