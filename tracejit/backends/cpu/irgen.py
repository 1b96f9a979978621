"""Kernel source -> LLVM IR directly, without Numba, for the kernels it covers.

Numba's front end (bytecode analysis, type inference, lowering) costs
about 0.1 s per kernel plus about 1 ms per statement, and importing and
initializing Numba about 0.6 s per process: most of a first call's time
(benchmarks/RESULTS.md, "Compile latency"). Generated kernels are written
in a small, regular subset of Python (codegen.py, from the snippet
tables): typed constants, ``carray`` views of pointer arguments, counted
``for`` loops over ``range``, scalar assignments, array loads and stores,
arithmetic, comparisons, conditional expressions and calls of a few known
functions. This module translates that subset straight to LLVM IR with
llvmlite's IR builder, typing every value by Numba's rules for the same
source, so the kernel computes what Numba's compilation of it computes:

- float32 with float32 stays float32; float32 with float64, or any float
  with an integer, is float64; signed integers compute in int64 (Numba
  widens); ``/`` is true division (int / int is float64), without a
  zero check (``error_model='numpy'``);
- float instructions carry the ``contract`` flag (``fastmath={'contract'}``),
  ``radd``/``rmul`` ``reassoc nsz`` (intrinsics.py);
- array indices wrap once when negative (Numba's basic indexing), except
  those known to be non-negative (see :func:`_nonneg`), ``dims`` is a plain
  pointer (no wrap);
- the vmath functions (exp, log, tanh, logistic, log1p, expm1) are
  translated from vmath.py's own source with vmath_core.py's helpers, so
  they are the same instructions as through Numba.

Anything outside the subset (integer floor division and remainder, unsigned
or mixed-width integer arithmetic, ``**``, ``math.erf``, random bits,
Python-level loops other than ``range``, a variable whose type changes, ...)
raises :class:`Unsupported`, and the kernel is compiled by Numba
(compiler.py) instead: the choice is per kernel, and both produce the same
C-callable entry point ``void kernel(int64 lo, int64 hi, int64* dims,
T0* p0, ...)``. ``TRACEJIT_COMPILER=numba`` turns this path off.

The module is optimized with LLVM's O3 pipeline with loop vectorization
(as Numba configures it) and emitted as object code for this CPU, which
the kernel cache stores and loader.py links.
"""
from __future__ import annotations

import ast
import functools
import os
import threading
from pathlib import Path

import numpy as np
import llvmlite.binding as llvm
from llvmlite import ir

from . import vmath_core

__all__ = ["Unsupported", "compile_ir", "compile_object", "configure_llvm", "enabled", "optimize",
           "translate"]


class Unsupported(Exception):
    """The kernel uses something this translator does not cover."""


def enabled() -> bool:
    """Whether kernels are translated here first (``TRACEJIT_COMPILER`` is
    not ``numba``)."""
    return os.environ.get("TRACEJIT_COMPILER", "").strip().lower() != "numba"


# --- types ---------------------------------------------------------------------------------
F32, F64, I64, I32, U32, BOOL = "float32", "float64", "int64", "int32", "uint32", "bool"
FLOATS = (F32, F64)
LLTYPE = {F32: ir.FloatType(), F64: ir.DoubleType(), I64: ir.IntType(64), I32: ir.IntType(32),
          U32: ir.IntType(32), BOOL: ir.IntType(1)}
#: In memory, booleans are bytes.
MEMTYPE = dict(LLTYPE, **{BOOL: ir.IntType(8)})
CTORS = {"f32": F32, "f64": F64, "i64": I64, "i32": I32, "u32": U32,
         "float32": F32, "float64": F64, "int64": I64, "int32": I32, "uint32": U32}
FLAGS = ("contract",)
I64T = ir.IntType(64)


class Value:
    """An LLVM value and its Numba type; ``literal`` for Python int, float
    and bool literals (typed when they meet a typed operand); ``nonneg``
    for integers known to be >= 0 (see :func:`_nonneg`)."""
    __slots__ = ("v", "ty", "literal", "nonneg")

    def __init__(self, v, ty, literal=None, nonneg=False):
        self.v, self.ty, self.literal, self.nonneg = v, ty, literal, nonneg


def _nonneg(v: Value) -> bool:
    """Whether integer ``v`` is known to be >= 0, so that indexing with it
    needs no wraparound. Known: non-negative literals, a kernel's ``lo`` and
    ``hi`` (plans call kernels on sub-ranges of ``[0, extent)``), variables of
    ``range`` loops that start there, and sums, products, ``max`` and ``min``
    of such values. (A sum that overflows int64 would index out of bounds
    with or without the wraparound.)

    Why it matters: the wraparound is a ``select`` on each index, which LLVM
    cannot remove without knowing the sign, and which turns every vectorized
    load and store into a gather or a scatter: elementwise kernels ran 5 to
    10 times slower with it."""
    if v.literal is not None:
        return isinstance(v.literal, int) and not isinstance(v.literal, bool) and v.literal >= 0
    return v.nonneg


def _from_nonneg(it, lo) -> bool:
    """Whether loop iterator ``it`` is ``range(n)``, or a ``range`` starting
    at a non-negative literal or at the kernel's ``lo``."""
    if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
            and it.args):
        return False
    if len(it.args) == 1:
        return True
    start = it.args[0]
    return (isinstance(start, ast.Name) and start.id == lo) or (
        isinstance(start, ast.Constant) and type(start.value) is int and start.value >= 0)


class Array:
    __slots__ = ("ptr", "dtype", "shape")

    def __init__(self, ptr, dtype, shape):
        self.ptr, self.dtype, self.shape = ptr, dtype, shape


def _const(value, ty):
    if ty in FLOATS:
        return Value(ir.Constant(LLTYPE[ty], float(value)), ty)
    if ty == BOOL:
        return Value(ir.Constant(LLTYPE[BOOL], int(bool(value))), BOOL)
    bits = 64 if ty == I64 else 32
    return Value(ir.Constant(LLTYPE[ty], int(value) & ((1 << bits) - 1)), ty)


def _np_value(x):
    """A NumPy scalar or Python number as a typed constant (module globals)."""
    if isinstance(x, (bool, np.bool_)):
        return _const(bool(x), BOOL)
    if isinstance(x, np.generic):
        name = x.dtype.name
        if name not in LLTYPE:
            raise Unsupported(f"constant of dtype {name}")
        return _const(x, name)
    raise Unsupported(f"global {x!r}")


def _arith_type(a: Value, b: Value) -> str:
    """Numba's result type of arithmetic on a and b (after literals are typed)."""
    ta = a.ty if a.literal is None else (F64 if a.ty in FLOATS else I64 if a.ty != BOOL else BOOL)
    tb = b.ty if b.literal is None else (F64 if b.ty in FLOATS else I64 if b.ty != BOOL else BOOL)
    if BOOL in (ta, tb) or U32 in (ta, tb):
        raise Unsupported("arithmetic on booleans or unsigned integers")
    if ta in FLOATS or tb in FLOATS:
        if ta == tb:
            return ta
        return F64
    return I64   # int32 and int64 compute in int64


class Translator:
    """Translates functions of one generated module into one LLVM module."""

    def __init__(self, module: ir.Module, globals_: dict):
        self.module = module
        self.globals = globals_         # the kernel module's constants
        self.vmath_defs = _vmath_defs()  # name -> ast.FunctionDef of vmath.py
        self.vmath_fns = {}             # (name, arg types) -> ir.Function

    # --- functions -----------------------------------------------------------------------
    def kernel(self, fdef: ast.FunctionDef, symbol: str, arg_dtypes):
        names = [a.arg for a in fdef.args.args]
        if len(names) != 3 + len(arg_dtypes) or fdef.args.vararg or fdef.args.kwonlyargs:
            raise Unsupported("kernel signature")
        ptr = ir.PointerType()
        fnty = ir.FunctionType(ir.VoidType(), [I64T, I64T, ptr] + [ptr] * len(arg_dtypes))
        fn = ir.Function(self.module, fnty, symbol)
        env = {names[0]: Value(fn.args[0], I64, nonneg=True),
               names[1]: Value(fn.args[1], I64, nonneg=True),
               names[2]: ("dims", fn.args[2])}
        for name, arg, dtype in zip(names[3:], fn.args[3:], arg_dtypes):
            if dtype not in LLTYPE:
                raise Unsupported(f"argument dtype {dtype}")
            env[name] = ("pointer", arg, dtype)
        body = _Body(self, fn, env, None, self.globals)
        body.count_assignments(fdef)
        body.block(fdef.body)
        if not body.b.block.is_terminated:
            body.b.ret_void()
        return fn

    def vmath(self, name, args):
        """The LLVM function of vmath.py's ``name`` for these argument types."""
        key = (name, tuple(a.ty for a in args))
        fn = self.vmath_fns.get(key)
        if fn is None:
            fdef = self.vmath_defs[name]
            params = [a.arg for a in fdef.args.args]
            if len(params) != len(args) or any(a.ty not in FLOATS or a.literal is not None for a in args):
                raise Unsupported(f"call of {name}")
            ret = args[0].ty
            fnty = ir.FunctionType(LLTYPE[ret], [LLTYPE[a.ty] for a in args])
            fn = ir.Function(self.module, fnty, f"vmath.{name}.{'.'.join(key[1])}")
            fn.linkage = "internal"
            fn.attributes.add("alwaysinline")
            body = _Body(self, fn, {}, ret, _vmath_globals())
            body.count_assignments(fdef, params)
            for p, v, a in zip(params, fn.args, args):   # parameters are variables
                body.store(ast.Name(p, ast.Store()), Value(v, a.ty))
            body.block(fdef.body)
            if not body.b.block.is_terminated:
                raise Unsupported(f"{name} does not end in a return")
            self.vmath_fns[key] = fn
        return fn


class _Body:
    """Translation of one function body: statements into blocks, local
    variables in stack slots (LLVM's mem2reg makes them registers)."""

    def __init__(self, tr: Translator, fn: ir.Function, env: dict, returns, globals_):
        self.tr = tr
        self.globals = globals_
        self.fn = fn
        self.entry = fn.append_basic_block("entry")
        self.b = ir.IRBuilder(fn.append_basic_block("body"))
        self.env = env              # name -> Value | Array | ("dims"/"pointer", ...) | slot
        self.slots = {}             # local name -> (alloca, type)
        self.returns = returns
        self._alloca_builder = ir.IRBuilder(self.entry)
        self._alloca_builder.branch(self.b.block)
        self._alloca_builder.position_at_start(self.entry)
        # A variable assigned once is its value (an SSA value, no stack slot),
        # valid in the block that assigns it and the blocks nested in it.
        self.assigned = {}          # name -> number of assignments in the function
        self.ssa = {}               # name -> Value of a variable assigned once
        self.scopes = [[]]          # names assigned once, per open block
        self.gone = set()           # such names whose block has ended
        self.consts = {}            # global name -> Value
        # variables assigned other than by loops from 0 or lo (the others are >= 0)
        self.maybe_negative = set()

    def count_assignments(self, fdef: ast.FunctionDef, params=()):
        for p in params:
            self.assigned[p] = self.assigned.get(p, 0) + 1
            self.maybe_negative.add(p)
        lo = fdef.args.args[0].arg if fdef.args.args else None
        for node in ast.walk(fdef):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.For)):
                targets = [node.target, node.target]   # read and written: never a single value
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        self.assigned[n.id] = self.assigned.get(n.id, 0) + 1
                if isinstance(t, ast.Name) and not (
                        isinstance(node, ast.For) and _from_nonneg(node.iter, lo)):
                    self.maybe_negative.add(t.id)
                elif isinstance(t, ast.Tuple):
                    self.maybe_negative.update(e.id for e in t.elts if isinstance(e, ast.Name))

    def nested(self, stmts):
        """Translate the statements of a nested block (a loop's or a branch's body)."""
        self.scopes.append([])
        try:
            self.block(stmts)
        finally:
            for name in self.scopes.pop():
                del self.ssa[name]
                self.gone.add(name)

    # --- statements ------------------------------------------------------------------------
    def block(self, stmts):
        for s in stmts:
            if self.b.block.is_terminated:
                raise Unsupported("statement after return")
            self.stmt(s)

    def stmt(self, s):
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
            return   # docstring
        if isinstance(s, ast.Assign):
            if len(s.targets) != 1:
                raise Unsupported("chained assignment")
            return self.assign(s.targets[0], s.value)
        if isinstance(s, ast.AugAssign):
            target = s.target
            load = ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else \
                ast.Subscript(target.value, target.slice, ast.Load())
            if not isinstance(target, (ast.Name, ast.Subscript)):
                raise Unsupported("augmented assignment target")
            return self.store(target, self.binop(s.op, self.expr(load), self.expr(s.value)))
        if isinstance(s, ast.For):
            return self.for_range(s)
        if isinstance(s, ast.If):
            return self.if_(s)
        if isinstance(s, ast.Return):
            if self.returns is None:
                if s.value is not None:
                    raise Unsupported("kernel returns a value")
                self.b.ret_void()
                return
            v = self.expr(s.value)
            if v.ty != self.returns:
                raise Unsupported("return type")
            self.b.ret(v.v)
            return
        if isinstance(s, ast.Pass):
            return
        raise Unsupported(f"statement {type(s).__name__}")

    def assign(self, target, value_node):
        if isinstance(target, ast.Tuple):
            value = self.expr(value_node, allow_tuple=True)
            if not isinstance(value, tuple) or len(value) != len(target.elts):
                raise Unsupported("tuple assignment")
            for t, v in zip(target.elts, value):
                self.store(t, v)
            return
        if isinstance(value_node, ast.Call) and isinstance(value_node.func, ast.Name) and \
                value_node.func.id == "carray":
            return self.carray(target, value_node)
        self.store(target, self.expr(value_node))

    def carray(self, target, call):
        if not isinstance(target, ast.Name) or len(call.args) != 2 or call.keywords:
            raise Unsupported("carray form")
        src = self.env.get(call.args[0].id) if isinstance(call.args[0], ast.Name) else None
        if not (isinstance(src, tuple) and src[0] == "pointer"):
            raise Unsupported("carray of something other than a pointer argument")
        dims = call.args[1]
        if not isinstance(dims, ast.Tuple):
            raise Unsupported("carray shape")
        shape = [self.int64(self.expr(d)) for d in dims.elts]
        if target.id in self.env or target.id in self.slots:
            raise Unsupported("array name reassigned")
        self.env[target.id] = Array(src[1], src[2], shape)

    def store(self, target, value: Value):
        if isinstance(target, ast.Name):
            name = target.id
            if name in self.env or name in self.ssa or name in self.gone:
                raise Unsupported(f"assignment to {name}, an argument, array or constant")
            ty = self._typed(value)
            if self.assigned.get(name, 0) == 1:   # one assignment: its value is the variable
                self.ssa[name] = self.coerce(value, ty)
                self.scopes[-1].append(name)
                return
            slot = self.slots.get(name)
            if slot is None:
                alloca = self._alloca_builder.alloca(LLTYPE[ty])
                slot = self.slots[name] = (alloca, ty)
            if slot[1] != ty:
                raise Unsupported(f"{name} changes type ({slot[1]} -> {ty})")
            self.b.store(self.coerce(value, ty).v, slot[0])
            return
        if isinstance(target, ast.Subscript):
            arr = self.expr_array(target.value)
            ptr = self.element(arr, target.slice)
            v = self.cast(value, arr.dtype)
            self.b.store(self._to_mem(v), ptr)
            return
        raise Unsupported("assignment target")

    def for_range(self, s: ast.For):
        it = s.iter
        if s.orelse or not isinstance(s.target, ast.Name) or not (
                isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and 1 <= len(it.args) <= 2 and not it.keywords):
            raise Unsupported("loop other than for i in range(a[, b])")
        bounds = [self.int64(self.expr(a)) for a in it.args]
        lo, hi = (bounds if len(bounds) == 2 else [ir.Constant(I64T, 0), bounds[0]])
        name = s.target.id
        if name in self.env or self.slots.get(name, (None, I64))[1] != I64:
            raise Unsupported(f"loop variable {name} of another type")
        if name not in self.slots:
            self.slots[name] = (self._alloca_builder.alloca(I64T), I64)
        slot = self.slots[name][0]
        counter = self._alloca_builder.alloca(I64T)
        self.b.store(lo, counter)
        head = self.fn.append_basic_block(name + ".head")
        body = self.fn.append_basic_block(name + ".body")
        done = self.fn.append_basic_block(name + ".done")
        self.b.branch(head)
        self.b.position_at_end(head)
        i = self.b.load(counter, typ=I64T)
        self.b.cbranch(self.b.icmp_signed("<", i, hi), body, done)
        self.b.position_at_end(body)
        self.b.store(i, slot)
        self.b.store(self.b.add(i, ir.Constant(I64T, 1)), counter)
        self.nested(s.body)
        if not self.b.block.is_terminated:
            self.b.branch(head)
        self.b.position_at_end(done)

    def if_(self, s: ast.If):
        cond = self.truth(self.expr(s.test))
        then = self.fn.append_basic_block("then")
        other = self.fn.append_basic_block("else")
        done = self.fn.append_basic_block("endif")
        self.b.cbranch(cond, then, other)
        for blk, stmts in ((then, s.body), (other, s.orelse)):
            self.b.position_at_end(blk)
            self.nested(stmts)
            if not self.b.block.is_terminated:
                self.b.branch(done)
        self.b.position_at_end(done)

    # --- values ------------------------------------------------------------------------------
    def _typed(self, v: Value) -> str:
        if v.literal is None:
            return v.ty
        return BOOL if v.ty == BOOL else F64 if v.ty in FLOATS else I64

    def coerce(self, v: Value, ty: str) -> Value:
        """A value of exactly type ``ty``: literals are typed, typed values must match."""
        if v.literal is not None:
            return self.cast(v, ty)
        if v.ty != ty:
            raise Unsupported(f"{v.ty} where {ty} is expected")
        return v

    def int64(self, v: Value):
        if v.ty not in (I64, I32) and not (v.literal is not None and v.ty == I64):
            raise Unsupported(f"{v.ty} used as an integer")
        return self.cast(v, I64).v

    def cast(self, v: Value, ty: str) -> Value:
        """Numba's conversion of v to ``ty`` (a constructor call, a store)."""
        b, src = self.b, v.ty
        if v.literal is not None:
            value = v.literal
            if ty in FLOATS:
                return _const(np.dtype(ty).type(value), ty)
            if ty == BOOL:
                return _const(bool(value), BOOL)
            if src in FLOATS:
                if not np.isfinite(value):
                    raise Unsupported("non-finite float literal to integer")
                value = int(value)
            return _const(int(value), ty)
        if src == ty:
            return v
        if ty in FLOATS:
            if src in FLOATS:
                out = b.fptrunc(v.v, LLTYPE[ty]) if ty == F32 else b.fpext(v.v, LLTYPE[ty])
            elif src in (U32, BOOL):
                out = b.uitofp(v.v, LLTYPE[ty])
            else:
                out = b.sitofp(v.v, LLTYPE[ty])
            return Value(out, ty)
        if ty == BOOL:
            raise Unsupported("conversion to bool")
        if src in FLOATS:
            out = b.fptoui(v.v, LLTYPE[ty]) if ty == U32 else b.fptosi(v.v, LLTYPE[ty])
            return Value(out, ty)
        sw, dw = LLTYPE[src].width, LLTYPE[ty].width
        if dw < sw:
            out = b.trunc(v.v, LLTYPE[ty])
        elif dw == sw:
            out = v.v
        elif src in (U32, BOOL):
            out = b.zext(v.v, LLTYPE[ty])
        else:
            out = b.sext(v.v, LLTYPE[ty])
        return Value(out, ty)

    def truth(self, v: Value):
        if v.ty != BOOL:
            raise Unsupported("condition that is not a boolean")
        return self.coerce(v, BOOL).v

    def _to_mem(self, v: Value):
        return self.b.zext(v.v, MEMTYPE[BOOL]) if v.ty == BOOL else v.v

    def expr_array(self, node) -> Array:
        a = self.env.get(node.id) if isinstance(node, ast.Name) else None
        if not isinstance(a, Array):
            raise Unsupported("subscript of something other than a carray")
        return a

    def element(self, arr: Array, index_node):
        idx = index_node.elts if isinstance(index_node, ast.Tuple) else [index_node]
        if len(idx) != len(arr.shape):
            raise Unsupported("index rank")
        flat = None
        for node, n in zip(idx, arr.shape):
            v = self.expr(node)
            if v.ty not in (I64, I32):
                raise Unsupported("index that is not a signed integer")
            i = self.cast(v, I64).v
            if not _nonneg(v):   # basic indexing wraps a negative index once (Numba: wraparound)
                i = self.b.select(self.b.icmp_signed("<", i, ir.Constant(I64T, 0)), self.b.add(i, n), i)
            flat = i if flat is None else self.b.add(self.b.mul(flat, n), i)
        return self.b.gep(arr.ptr, [flat], source_etype=MEMTYPE[arr.dtype])

    def expr(self, node, allow_tuple=False):
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                return Value(ir.Constant(LLTYPE[BOOL], int(v)), BOOL, literal=v)
            if isinstance(v, int):
                if not -2**63 <= v < 2**63:
                    raise Unsupported("integer literal out of range")
                return Value(ir.Constant(I64T, v), I64, literal=v)
            if isinstance(v, float):
                return Value(ir.Constant(LLTYPE[F64], v), F64, literal=v)
            raise Unsupported(f"literal {v!r}")
        if isinstance(node, ast.Name):
            return self.name(node.id, allow_tuple)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr in ("inf", "nan"):
                return self._literal(float(getattr(np, node.attr)))
            raise Unsupported("attribute access")
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name) and isinstance(self.env.get(node.value.id), tuple) \
                    and self.env[node.value.id][0] == "dims":
                i = self.int64(self.expr(node.slice))
                ptr = self.b.gep(self.env[node.value.id][1], [i], source_etype=I64T)
                return Value(self.b.load(ptr, typ=I64T), I64)
            arr = self.expr_array(node.value)
            raw = self.b.load(self.element(arr, node.slice), typ=MEMTYPE[arr.dtype])
            if arr.dtype == BOOL:
                raw = self.b.icmp_unsigned("!=", raw, ir.Constant(MEMTYPE[BOOL], 0))
            return Value(raw, arr.dtype)
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.expr(node.left), self.expr(node.right))
        if isinstance(node, ast.UnaryOp):
            return self.unary(node.op, self.expr(node.operand))
        if isinstance(node, ast.Compare):
            if len(node.ops) == 1:
                return self.compare(node.ops[0], self.expr(node.left), self.expr(node.comparators[0]))
            # a < b < c: each operand once; evaluated eagerly, so only names and literals
            if not all(isinstance(n, (ast.Name, ast.Constant)) for n in node.comparators):
                raise Unsupported("chained comparison of expressions")
            values = [self.expr(node.left)] + [self.expr(n) for n in node.comparators]
            out = None
            for op, x, y in zip(node.ops, values, values[1:]):
                c = self.compare(op, x, y).v
                out = c if out is None else self.b.and_(out, c)
            return Value(out, BOOL)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.IfExp):
            return self.ifexp(node)
        if isinstance(node, ast.Call):
            return self.call_expr(node, allow_tuple)
        if isinstance(node, ast.Tuple) and allow_tuple:
            return tuple(self.expr(e) for e in node.elts)
        raise Unsupported(f"expression {type(node).__name__}")

    def name(self, name, allow_tuple=False):
        v = self.ssa.get(name)
        if v is not None:
            return v
        if name in self.gone:
            raise Unsupported(f"{name} used outside the block that assigns it")
        slot = self.slots.get(name)
        if slot is not None:
            return Value(self.b.load(slot[0], typ=LLTYPE[slot[1]]), slot[1],
                         nonneg=name not in self.maybe_negative)
        v = self.env.get(name)
        if isinstance(v, Value):
            return v
        if v is not None:
            raise Unsupported(f"{name} used as a value")
        g = self.globals.get(name)
        if g is None:
            raise Unsupported(f"unknown name {name}")
        if isinstance(g, tuple):
            if not allow_tuple:
                raise Unsupported(f"tuple {name} used as a value")
            return tuple(_np_value(x) for x in g)
        v = self.consts.get(name)
        if v is None:
            v = self.consts[name] = _np_value(g)
        return v

    def binop(self, op, a: Value, c: Value) -> Value:
        b = self.b
        if isinstance(op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
            ta, tc = self._typed(a), self._typed(c)
            if ta == tc == BOOL:
                ty = BOOL
            elif ta in (I32, I64) and tc in (I32, I64):
                ty = I64   # as for arithmetic, Numba computes in int64
            else:
                raise Unsupported("bitwise operation on these types")
            x, y = self.cast(a, ty).v, self.cast(c, ty).v
            fn = {ast.BitAnd: b.and_, ast.BitOr: b.or_, ast.BitXor: b.xor}[type(op)]
            return Value(fn(x, y), ty)
        if isinstance(op, ast.Div):
            ty = _arith_type(a, c)
            ty = F64 if ty == I64 else ty
            return Value(b.fdiv(self.cast(a, ty).v, self.cast(c, ty).v, flags=FLAGS), ty)
        if isinstance(op, (ast.FloorDiv, ast.Mod)):
            if _arith_type(a, c) != I64:
                raise Unsupported("floor division or remainder of floats")
            q, r = self.divmod(self.cast(a, I64).v, self.cast(c, I64).v)
            return Value(q if isinstance(op, ast.FloorDiv) else r, I64)
        if not isinstance(op, (ast.Add, ast.Sub, ast.Mult)):
            raise Unsupported(f"operator {type(op).__name__}")
        ty = _arith_type(a, c)
        x, y = self.cast(a, ty).v, self.cast(c, ty).v
        if ty in FLOATS:
            fn = {ast.Add: b.fadd, ast.Sub: b.fsub, ast.Mult: b.fmul}[type(op)]
            return Value(fn(x, y, flags=FLAGS), ty)
        fn = {ast.Add: b.add, ast.Sub: b.sub, ast.Mult: b.mul}[type(op)]
        nonneg = not isinstance(op, ast.Sub) and _nonneg(a) and _nonneg(c)
        return Value(fn(x, y), ty, nonneg=nonneg)

    def divmod(self, x, y):
        """Python's floor division and remainder of int64s, as Numba computes
        them with NumPy's error model: 0 and 0 for a zero divisor, MIN and 0
        for MIN // -1 (which would trap)."""
        b = self.b
        zero, one = ir.Constant(I64T, 0), ir.Constant(I64T, 1)
        is_zero = b.icmp_signed("==", y, zero)
        overflow = b.and_(b.icmp_signed("==", x, ir.Constant(I64T, -2**63)),
                          b.icmp_signed("==", y, ir.Constant(I64T, -1)))
        safe = b.select(b.or_(is_zero, overflow), one, y)
        q, r = b.sdiv(x, safe), b.srem(x, safe)
        # floor: a nonzero remainder of the other sign than the divisor moves down
        adjust = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, safe), zero))
        q = b.sub(q, b.zext(adjust, I64T))
        r = b.add(r, b.select(adjust, safe, zero))
        return b.select(is_zero, zero, q), b.select(is_zero, zero, r)

    def unary(self, op, a: Value) -> Value:
        b = self.b
        if isinstance(op, ast.Not):
            if self._typed(a) != BOOL:
                raise Unsupported("not of a non-boolean")
            return Value(b.xor(self.coerce(a, BOOL).v, ir.Constant(LLTYPE[BOOL], 1)), BOOL)
        if isinstance(op, ast.USub):
            ty = self._typed(a)
            if a.literal is not None and ty != BOOL:
                return self._literal(-a.literal)
            if ty in FLOATS:
                return Value(b.fneg(a.v, flags=FLAGS), ty)
            if ty in (I64, I32):
                v = self.cast(a, I64).v
                return Value(b.neg(v), I64)
            raise Unsupported("negation of this type")
        if isinstance(op, ast.Invert):
            if self._typed(a) not in (I64, I32):
                raise Unsupported("~ of this type")
            return Value(b.not_(self.cast(a, I64).v), I64)
        raise Unsupported(f"unary {type(op).__name__}")

    @staticmethod
    def _literal(x):
        if isinstance(x, float):
            return Value(ir.Constant(LLTYPE[F64], x), F64, literal=x)
        return Value(ir.Constant(I64T, x), I64, literal=x)

    def compare(self, op, a: Value, c: Value) -> Value:
        b = self.b
        sym = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
               ast.GtE: ">="}.get(type(op))
        if sym is None:
            raise Unsupported(f"comparison {type(op).__name__}")
        ta, tc = self._typed(a), self._typed(c)
        if ta == tc == BOOL:
            if sym not in ("==", "!="):
                raise Unsupported("ordering of booleans")
            return Value(b.icmp_unsigned(sym, self.coerce(a, BOOL).v, self.coerce(c, BOOL).v), BOOL)
        ty = _arith_type(a, c)
        x, y = self.cast(a, ty).v, self.cast(c, ty).v
        if ty in FLOATS:
            out = b.fcmp_unordered(sym, x, y, flags=FLAGS) if sym == "!=" else \
                b.fcmp_ordered(sym, x, y, flags=FLAGS)
        else:
            out = b.icmp_signed(sym, x, y)
        return Value(out, BOOL)

    def _branches(self, cond, then_fn, else_fn, what):
        """Evaluate then_fn() or else_fn() by cond, as Python does; their
        results must have one type."""
        b = self.b
        then = self.fn.append_basic_block(what + ".then")
        other = self.fn.append_basic_block(what + ".else")
        done = self.fn.append_basic_block(what + ".end")
        b.cbranch(cond, then, other)
        b.position_at_end(then)
        x = then_fn()
        then_end = b.block
        b.position_at_end(other)
        y = else_fn()
        else_end = b.block
        tx, ty_ = self._typed(x), self._typed(y)
        if tx != ty_:
            raise Unsupported(f"branches of types {tx} and {ty_}")
        b.position_at_end(then_end)
        xv = self.coerce(x, tx).v
        b.branch(done)
        b.position_at_end(else_end)
        yv = self.coerce(y, tx).v
        b.branch(done)
        b.position_at_end(done)
        phi = b.phi(LLTYPE[tx])
        phi.add_incoming(xv, then_end)
        phi.add_incoming(yv, else_end)
        return Value(phi, tx)

    def ifexp(self, node: ast.IfExp) -> Value:
        cond = self.truth(self.expr(node.test))
        return self._branches(cond, lambda: self.expr(node.body), lambda: self.expr(node.orelse), "ifexp")

    def boolop(self, node: ast.BoolOp) -> Value:
        """``and``/``or`` of booleans, short-circuit as in Python."""
        left = self._bool(self.expr(node.values[0]))
        for right_node in node.values[1:]:
            cond = self.truth(left)

            def keep(c=cond):   # the short-circuit result: the left operand
                return Value(c, BOOL)

            def right(n=right_node):
                return self._bool(self.expr(n))
            left = self._branches(cond, right, keep, "and") if isinstance(node.op, ast.And) else \
                self._branches(cond, keep, right, "or")
        return left

    def _bool(self, v: Value) -> Value:
        if self._typed(v) != BOOL:
            raise Unsupported("and/or of non-booleans")
        return v

    # --- calls ----------------------------------------------------------------------------------
    def call_expr(self, node: ast.Call, allow_tuple):
        if node.keywords:
            raise Unsupported("keyword arguments")
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "type" and isinstance(f.value, ast.Attribute) and \
                f.value.attr == "dtype" and len(node.args) == 1:   # x.dtype.type(v): v as x's dtype
            return self.cast(self.expr(node.args[0]), self.expr_array(f.value.value).dtype)
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "np":
            fname = "np." + f.attr
        elif isinstance(f, ast.Name):
            fname = f.id
        else:
            raise Unsupported("call of an expression")
        if fname in self.tr.vmath_defs:
            args = [self.expr(a) for a in node.args]
            fn = self.tr.vmath(fname, args)
            return Value(self.b.call(fn, [a.v for a in args]), args[0].ty)
        return self.builtin(fname, node.args, allow_tuple)

    def builtin(self, fname, arg_nodes, allow_tuple):
        b = self.b
        nargs = len(arg_nodes)
        if fname in CTORS or (fname.startswith("np.") and fname[3:] in CTORS):
            if nargs != 1:
                raise Unsupported(f"{fname} with {nargs} arguments")
            return self.cast(self.expr(arg_nodes[0]), CTORS[fname.removeprefix("np.")])
        if fname == "_horner":
            x = self.expr(arg_nodes[0])
            coeffs = self.expr(arg_nodes[1], allow_tuple=True)
            if x.ty not in FLOATS or x.literal is not None or not isinstance(coeffs, tuple) or \
                    any(c.ty != x.ty for c in coeffs):
                raise Unsupported("_horner arguments")
            return Value(self._with_flags(lambda: vmath_core.horner(b, x.v, [c.v for c in coeffs])), x.ty)
        args = [self.expr(a) for a in arg_nodes]
        if fname in ("select", "_select"):
            if nargs != 3:
                raise Unsupported("select arity")
            c, x, y = args
            tx, ty_ = self._typed(x), self._typed(y)
            if tx != ty_:
                raise Unsupported(f"select of {tx} and {ty_}")
            if self._typed(c) == BOOL:
                cond = self.coerce(c, BOOL).v
            elif self._typed(c) in (I64, I32):
                cond = b.icmp_signed("!=", self.cast(c, I64).v, ir.Constant(I64T, 0))
            else:
                raise Unsupported("select condition")
            return Value(b.select(cond, self.coerce(x, tx).v, self.coerce(y, tx).v), tx)
        if fname in ("radd", "rmul"):
            x, y = self._floats2(args, fname)
            fn = b.fadd if fname == "radd" else b.fmul
            return Value(fn(x.v, y.v, flags=("reassoc", "nsz")), x.ty)
        if fname in ("fmaximum", "fminimum"):
            x, y = self._floats2(args, fname)
            name = "maximum" if fname == "fmaximum" else "minimum"
            return Value(self._intrinsic(name, x.ty, [x.v, y.v]), x.ty)
        if fname == "_div":
            x, y = self._floats2(args, fname)
            return Value(b.fdiv(x.v, y.v, flags=FLAGS), x.ty)
        if fname in ("_rint", "_pow2") or fname in _UNARY_MATH:
            x = self._float1(args, fname)
            if fname == "_pow2":
                return Value(self._with_flags(lambda: vmath_core.pow2(b, x.v)), x.ty)
            name = "rint" if fname == "_rint" else _UNARY_MATH[fname]
            return Value(self._intrinsic(name, x.ty, [x.v]), x.ty)
        if fname == "_copysign":
            x, y = self._floats2(args, fname)
            return Value(self._intrinsic("copysign", x.ty, [x.v, y.v]), x.ty)
        if fname == "_ldexp":
            x, y = self._floats2(args, fname)
            return Value(self._with_flags(lambda: vmath_core.ldexp(b, x.v, y.v)), x.ty)
        if fname == "_frexp_sqrt2":
            x = self._float1(args, fname)
            if not allow_tuple:
                raise Unsupported("tuple used as a value")
            m, e = self._with_flags(lambda: vmath_core.frexp_sqrt2(b, x.v))
            return Value(m, x.ty), Value(e, x.ty)
        if fname == "abs":
            if nargs != 1:
                raise Unsupported("abs arity")
            x = args[0]
            ty = self._typed(x)
            if ty in FLOATS:
                x = self.coerce(x, ty)
                return Value(self._intrinsic("fabs", ty, [x.v]), ty)
            if ty in (I64, I32):
                v = self.cast(x, I64).v
                return Value(b.select(b.icmp_signed("<", v, ir.Constant(I64T, 0)), b.neg(v), v), I64)
            raise Unsupported("abs of this type")
        if fname in ("min", "max"):
            if nargs != 2 or any(self._typed(a) not in (I64, I32) for a in args):
                raise Unsupported(f"{fname} of these arguments")
            x, y = (self.cast(a, I64).v for a in args)
            # Python's min/max: the first argument on ties
            better = b.icmp_signed("<" if fname == "min" else ">", y, x)
            known = [_nonneg(a) for a in args]
            return Value(b.select(better, y, x), I64,
                         nonneg=all(known) if fname == "min" else any(known))
        if fname == "np.isfinite":
            x = self._float1(args, fname)
            fabs = self._intrinsic("fabs", x.ty, [x.v])
            inf = ir.Constant(LLTYPE[x.ty], float("inf"))
            return Value(b.fcmp_ordered("!=", fabs, inf, flags=FLAGS), BOOL)
        raise Unsupported(f"call of {fname}")

    def _with_flags(self, emit):
        """Run a vmath_core emitter, then give its float instructions the
        ``contract`` flag, as Numba's fastmath pass does."""
        block = self.b.block
        start = len(block.instructions)
        out = emit()
        for ins in block.instructions[start:]:
            if isinstance(ins, ir.CallInstr):
                ins.fastmath.add("contract")
            elif ins.opname in ("fadd", "fsub", "fmul", "fdiv") and "contract" not in ins.flags:
                ins.flags.append("contract")
        return out

    def _intrinsic(self, name, ty, args):
        fn = vmath_core.llvm_fn(self.b, name, LLTYPE[ty], len(args))
        return self.b.call(fn, args, fastmath=FLAGS)

    def _floats2(self, args, fname):
        if len(args) != 2:
            raise Unsupported(f"{fname} arity")
        x, y = args
        if x.ty not in FLOATS or x.literal is not None or y.ty != x.ty or y.literal is not None:
            raise Unsupported(f"{fname} of {x.ty} and {y.ty}")
        return x, y

    def _float1(self, args, fname):
        if len(args) != 1 or args[0].ty not in FLOATS or args[0].literal is not None:
            raise Unsupported(f"{fname} argument")
        return args[0]


#: np.<f> of one float -> the LLVM intrinsic Numba lowers it to.
_UNARY_MATH = {"np.sqrt": "sqrt", "np.floor": "floor", "np.ceil": "ceil", "np.rint": "rint",
               "np.sin": "sin", "np.cos": "cos"}


# --- modules ---------------------------------------------------------------------------------
@functools.cache
def _vmath_defs() -> dict:
    """vmath.py's functions as syntax trees (read, not imported: importing
    it imports Numba)."""
    tree = ast.parse((Path(__file__).parent / "vmath.py").read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(isinstance(d, ast.Name) and d.id == "_vmath" for d in node.decorator_list)}


@functools.cache
def _vmath_globals() -> dict:
    return {k: v for k, v in vars(vmath_core).items() if k.isupper() and not k.startswith("_")}


def _constant(node):
    """The value of a module-level constant of generated source: a NumPy
    scalar constructor applied to a literal (``f32(0.5)``, ``np.float32(-np.inf)``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_constant(node.operand)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "np" \
            and node.attr in ("inf", "nan"):
        return float(getattr(np, node.attr))
    raise Unsupported("module-level value that is not a literal")


def _module_parts(source: str):
    """(constants, the ``kernel`` FunctionDef) of a generated module."""
    tree = ast.parse(source)
    consts, kernel = {}, None
    ctors = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "u32": np.uint32}
    for node in tree.body:
        if isinstance(node, ast.Import):
            if any(a.name not in ("math", "numpy") or (a.asname or a.name) not in ("math", "np")
                   for a in node.names):
                raise Unsupported("import")
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:   # the constructor aliases must mean what CTORS says
                alias = a.asname or a.name   # (others, i8 & co., make a kernel using them Unsupported)
                if node.module == "numpy" and alias in CTORS and CTORS[alias] != a.name:
                    raise Unsupported(f"import of {a.name} as {a.asname}")
            if node.module not in ("numpy", "numba", "tracejit.backends.cpu.intrinsics"):
                raise Unsupported(f"import from {node.module}")
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            v = node.value
            if isinstance(v, ast.Call) and len(v.args) == 1 and not v.keywords:
                f = v.func
                ctor = f.id if isinstance(f, ast.Name) else \
                    f.attr if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and \
                    f.value.id == "np" else None
                ctor = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64",
                        "uint32": "u32"}.get(ctor, ctor)
                if ctor in ctors:
                    consts[node.targets[0].id] = ctors[ctor](_constant(v.args[0]))
                    continue
            if isinstance(v, ast.Constant) and isinstance(v.value, bool):
                consts[node.targets[0].id] = np.bool_(v.value)
                continue
            raise Unsupported("module-level assignment")
        elif isinstance(node, ast.FunctionDef) and node.name == "kernel" and not node.decorator_list:
            kernel = node
        else:
            raise Unsupported(f"module-level {type(node).__name__}")
    if kernel is None:
        raise Unsupported("no kernel function")
    return consts, kernel


_init_lock = threading.Lock()
_local = threading.local()


#: LLVM options for every kernel (global to the process's LLVM, so Numba's
#: compilations of the kernels irgen does not cover get them too). Without a
#: vectorized epilogue and runtime unrolling a loop is one vector body and a
#: scalar remainder instead of three copies: a kernel that inlines several
#: vectorized exp/tanh compiles in 30-40% less time (the LSTM's seven kernels
#: 0.47 -> 0.27 s), at the cost of a scalar remainder of up to 15 elements.
LLVM_OPTIONS = ("-enable-epilogue-vectorization=0", "-unroll-runtime=0")


def configure_llvm():
    """Initialize LLVM's native target and set LLVM_OPTIONS (once per process)."""
    global _configured
    with _init_lock:
        if not _configured:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            for option in LLVM_OPTIONS:
                llvm.set_option("tracejit", option)
            _configured = True


_configured = False


@functools.cache
def _layout() -> tuple[str, str]:
    """(triple, data layout) of this host."""
    configure_llvm()
    return llvm.get_process_triple(), str(_machine().target_data)


def _machine():
    """This thread's target machine for the host CPU (each compiling thread
    has its own, and its own LLVM context)."""
    machine = getattr(_local, "machine", None)
    if machine is None:
        configure_llvm()
        machine = _local.machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3,
            codemodel="large")   # linked anywhere in the address space by loader.py
        _local.context = llvm.create_context()
    return machine


def translate(source: str, symbol: str, arg_dtypes) -> str:
    """LLVM IR (text) of a module defining ``symbol``, the translation of
    ``source``'s ``kernel``; raises Unsupported. Pure Python: holds the GIL."""
    consts, kernel = _module_parts(source)
    module = ir.Module(name=symbol)
    module.triple, module.data_layout = _layout()
    Translator(module, consts).kernel(kernel, symbol, [np.dtype(d).name for d in arg_dtypes])
    return str(module)


def compile_ir(text: str) -> bytes:
    """Object code of LLVM IR ``text``, optimized with LLVM's O3 pipeline.
    Thread-safe (its own LLVM context and target machine per thread), and
    runs without the GIL (llvmlite's calls release it; they take llvmlite's
    own process-wide lock instead), so it overlaps the translation of the
    next kernel (cache.py)."""
    return _machine().emit_object(_optimized(text))


def optimize(text: str) -> str:
    """LLVM IR ``text`` after the optimization pipeline of :func:`compile_ir`
    (to inspect what a kernel becomes: vector width, gathers, calls)."""
    return str(_optimized(text))


def _optimized(text: str):
    machine = _machine()
    mod = llvm.parse_assembly(text, context=_local.context)
    mod.verify()
    pto = llvm.create_pipeline_tuning_options()
    pto.speed_level = 3
    pto.loop_vectorization = True
    pto.slp_vectorization = False   # as Numba configures LLVM
    pb = llvm.create_pass_builder(machine, pto)
    pb.getModulePassManager().run(mod, pb)
    return mod


def compile_object(source: str, symbol: str, arg_dtypes) -> tuple[bytes, str]:
    """Object code of ``source``'s ``kernel`` as the C function ``symbol``
    (the contract of compiler.compile_object); raises Unsupported."""
    return compile_ir(translate(source, symbol, arg_dtypes)), symbol
