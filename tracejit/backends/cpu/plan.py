"""The plan: a fused Function -> one generated Python function that runs it.

Each instruction of the fused Function becomes one line of the plan's
source: a kernel call (split across threads when large), a BLAS call, a
convolution, a scatter, a loop over a sub-plan (cond/while/scan), a view, or
(for primitives without a lowering) a call of the primitive's NumPy impl.
Arguments are precomputed: kernels, dims tuples and intermediate buffers
are globals of the generated function, so a call does no lookups by name.

Buffers. Intermediates live in an arena of byte buffers allocated when the
plan is built and reused by liveness (a buffer is free again after the last
instruction that reads its value); a loop kernel that reads an input only
at the element it writes may write its output over that input when the
input dies there (an activation over a matrix product's output, in place).
Results are new arrays on each call, except that a donated argument's
buffer (``jit(..., donate_argnums=...)``) is reused for a result of the same
shape and dtype once the argument is dead: a training step that donates
its parameters and optimizer state updates them in place and allocates
almost nothing after the first call (a donated argument that shares its
memory with another argument is copied first). A kernel writes an output
over an input only where it reads that input at the written element before
writing it (codegen.py's ``inplace`` pairs). A sub-plan (a cond branch, a
loop body) returns copies of the operands it passes through unchanged, so
its caller may write over its results. A result array the caller has already
dropped (only the plan still refers to it) is also reused by the next call,
which saves the page faults of a fresh large array. Because the arena
persists, calls of one plan from several threads run one at a time.
"""
from __future__ import annotations

import ctypes
import sys
import threading
import time

import numpy as np

from ... import log
from ...core import PRIMITIVES, eval_function
from ...errors import at_location
from ...ir.core import Function, Var
from ...ir.dtypes import HALFS, bfloat16_loaded, numpy_dtype
from ...kernel.control import loop_over_plans
from ...kernel.liveness import Buffer, BufferPlan
from . import cache, codegen, control, kernels, library
from .snippets import CTOR
from .threads import MIN_PARALLEL_WORK, blas_threads, pool


def _contiguous(x):
    return x if x.flags.c_contiguous and x.flags.aligned else np.ascontiguousarray(x)


def _writeable(x):
    return x if x.flags.writeable else x.copy()


def _root(x):
    """The object that owns the memory of array ``x``."""
    while isinstance(x, np.ndarray) and x.base is not None:
        x = x.base
    return x


def _unalias(arrays, donated):
    """``arrays`` with a copy of each donated one that shares its memory
    with another argument (the same array passed twice, or a view of it):
    the plan writes over donated buffers, which no other argument may see."""
    roots = [id(_root(x)) for x in arrays]
    for i in donated:
        if roots.count(roots[i]) > 1:
            arrays[i] = arrays[i].copy()
    return arrays


def _address(x, _from=ctypes.c_char.from_buffer, _of=ctypes.addressof):
    """The data address of array x (5 times faster than x.ctypes.data)."""
    try:
        return _of(_from(x))
    except (TypeError, ValueError):   # read-only or empty
        return x.ctypes.data


class PlanBuilder(BufferPlan):
    RESULT_OVER = ("ext", "param")

    def __init__(self, fn: Function, donate=(), name="plan", top=True):
        super().__init__(fn, donate)
        self.name = name
        self.top = top   # sub-plans run inside their parent's lock and BLAS setting
        self.g = {"np": np, "empty": np.empty, "par": pool().run,
                  "parallel_matmul": library.parallel_matmul, "blas_threads": blas_threads,
                  "_c": _contiguous, "_w": _writeable, "_address": _address, "_unalias": _unalias,
                  "keep": [], "getrefcount": sys.getrefcount}
        for dtype, ctor in CTOR.items():
            if dtype == "bfloat16" and not bfloat16_loaded():
                continue   # no bfloat16 value exists yet (tracejit/ir/dtypes.py)
            self.g[ctor if ctor != "bool" else "bool_"] = numpy_dtype(dtype).type
        self.lines: list[str] = []
        self.names: dict[Var, str] = {}
        self.free: list[Buffer] = []          # arena buffers free for reuse
        self.addr: dict[str, str] = {}   # array name -> name of its address
        self.n = 0
        self.arena_bytes = 0
        self.timing = {"codegen": 0.0, "kernels": 0.0}

    # --- names and buffers ---------------------------------------------------------------
    def fresh_name(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def glob(self, prefix, value):
        name = self.fresh_name(prefix)
        self.g[name] = value
        return name

    def dtype(self, v: Var):
        return self.glob("T", np.dtype(v.dtype))

    def _arena(self, nbytes):
        best = None
        for b in self.free:
            if nbytes <= b.nbytes <= 2 * nbytes + 4096 and (best is None or b.nbytes < best.nbytes):
                best = b
        if best is not None:
            self.free.remove(best)
            return best
        self.arena_bytes += nbytes
        return Buffer("pooled", np.empty(max(nbytes, 1), np.uint8), nbytes=nbytes)

    def _bind(self, v, buf, name):
        self.names[v] = name
        self.bind(v, buf)

    def alloc(self, v: Var, step: int, inplace=()):
        """Give ``v`` (an output of instruction ``step``) a buffer; ``inplace``
        lists inputs whose buffers may be written over if they die here."""
        nbytes = int(np.prod(v.shape, dtype=np.int64)) * np.dtype(v.dtype).itemsize
        x = self.in_place(v, step, inplace)
        if x is not None:
            self._bind(v, self.buf[x], self.names[x])
            return self.names[v]
        if v in self.must_fresh:
            b = self.donated(v)
            if b is not None:
                self._bind(v, b, b.donor)
                return b.donor
            # Reuse the array this output got on the previous call if the
            # caller has dropped it (only this plan's list refers to it).
            name = self.fresh_name("r")
            slot = len(self.g["keep"])
            self.g["keep"].append(None)
            self.lines += [f"{name} = keep[{slot}]",
                           f"if {name} is None or getrefcount({name}) > 3:",
                           f"    {name} = keep[{slot}] = empty({v.shape}, {self.dtype(v)})"]
            self._bind(v, Buffer("fresh"), name)
            return name
        b = self._arena(nbytes)
        view = b.data[:nbytes].view(np.dtype(v.dtype)).reshape(v.shape)
        self._bind(v, b, self.glob("B", view))
        return self.names[v]

    def recycle(self, b):
        self.free.append(b)

    def address(self, name: str) -> str:
        """The data address of array ``name``: a constant for persistent
        buffers, else read (once) from the array at this point of the plan."""
        if name not in self.addr:
            if name in self.g and isinstance(self.g[name], np.ndarray):
                self.addr[name] = self.glob("A", self.g[name].ctypes.data)
            else:
                self.addr[name] = self.fresh_name("a")
                self.lines.append(f"{self.addr[name]} = _address({name})")
        return self.addr[name]

    def constants(self, values, dtype=np.int64):
        """Address of a persistent array holding ``values`` (a kernel's dims)."""
        arr = np.array(values, dtype=dtype).reshape(-1)
        if arr.size == 0:
            arr = np.zeros(1, dtype)
        self.glob("C", arr)   # keeps it alive
        return self.glob("A", arr.ctypes.data)

    # --- the plan ------------------------------------------------------------------------
    def build(self):
        fn = self.fn
        self.liveness()
        params = []
        for k, p in enumerate(fn.params):
            name = f"v{k}"
            params.append(name)
            donated = p in self.donate
            self._bind(p, Buffer("param", donor=name if donated else None, type=p.type), name)
            self.lines.append(f"{name} = _c({name})" if not donated else f"{name} = _w(_c({name}))")
        donated = tuple(k for k, p in enumerate(fn.params) if p in self.donate)
        if donated and len(params) > 1:
            names = ", ".join(params)
            self.lines.append(f"{names}, = _unalias([{names}], {donated})")
        self.walk()
        results = ", ".join(self.result_name(v) for v in fn.results)
        head = f"def run(args):\n    {', '.join(params)}{',' if len(params) == 1 else ''} = args\n" \
            if params else "def run(args):\n"
        if self.top:
            body = "".join(f"            {line}\n" for line in self.lines)
            src = head + "    with lock:\n        blas = blas_threads(1)\n        try:\n" + body + \
                f"            return [{results}]\n        finally:\n            blas_threads(blas)\n"
        else:
            src = head + "".join(f"    {line}\n" for line in self.lines) + f"    return [{results}]\n"
        self.g["lock"] = threading.Lock()
        start = time.perf_counter()
        for name, value in self.g.items():   # wait for the kernels compiling in parallel
            if isinstance(value, cache.Request):
                self.g[name] = value.result()
        self.timing["kernels"] += time.perf_counter() - start
        log.log("source", f"plan {self.name}:\n{src}")
        exec(compile(src, f"<tracejit plan {self.name}>", "exec"), self.g)
        return self.g["run"]

    def result_name(self, v):
        """A sub-plan (a cond branch, a loop body) copies a result that is a
        parameter it does not own, or a view of one: its caller may write
        over the result (a loop over its donated carries, a later kernel in
        place), which must not change the operand it came from."""
        b = self.buf[v]
        if not self.top and b.kind == "param" and b.donor is None:
            return f"{self.names[v]}.copy()"
        return self.names[v]

    def step(self, i, ins):
        p = ins.prim
        if p == "fusion":
            return self.kernel(i, ins)
        args = [self.names[x] for x in ins.operands]
        if p == "reshape":
            v = ins.results[0]
            base = self.buf[ins.operands[0]]
            src = self.names[ins.operands[0]]
            if src in self.g:
                name = self.glob("B", self.g[src].reshape(v.shape))
            else:
                name = self.fresh_name("x")
                self.lines.append(f"{name} = {src}.reshape({v.shape})")
            self._bind(v, base, name)
            return
        if p == "dot_general":
            out = self.alloc(ins.results[0], i)
            gemm = library.Gemm.of(ins)
            if gemm is None:
                self.lines.append(library.dot_call(ins, args[0], args[1], out))
            else:
                addresses = ", ".join(self.address(n) for n in (args[0], args[1], out))
                self.lines.append(f"{self.glob('gemm', gemm)}({addresses})")
            return
        if p == "conv_general":
            conv = library.Conv(ins)
            out = self.alloc(ins.results[0], i)
            scratch = "None"
            if conv.scratch:
                b = self._arena(conv.scratch * np.dtype(ins.operands[0].dtype).itemsize)
                scratch = self.glob("B", b.data.view(np.dtype(ins.operands[0].dtype)))
                self.free.append(b)
            self.lines.append(f"{self.glob('conv', conv)}({args[0]}, {args[1]}, {out}, {scratch})")
            return
        if p in ("scatter_add", "select_and_scatter_add") and \
                {x.dtype for x in ins.operands} & set(HALFS):
            return self.fallback(i, ins, args)   # their kernels have no 16-bit float arithmetic
        if p == "scatter_add":
            return self.scatter_add(i, ins, args)
        if p == "select_and_scatter_add":
            return self.select_and_scatter_add(i, ins, args)
        if p in ("cond", "while", "scan"):
            return self.control(i, ins, args)
        return self.fallback(i, ins, args)

    def kernel(self, i, ins):
        body, kind = ins.attrs["body"], ins.attrs["kind"]
        start = time.perf_counter()
        try:
            ks = codegen.generate(body, kind)
        except codegen.LoweringError as e:
            log.log("fusion", f"{body.name}: {e}; running it with the reference interpreter")
            return self._call_python(i, ins, [self.names[x] for x in ins.operands],
                                     lambda *a: eval_function(body, list(a)))
        self.timing["codegen"] += time.perf_counter() - start
        log.log("source", f"{body.name}:\n{ks.source}")
        start = time.perf_counter()
        fn = cache.request(ks.source, ks.arg_dtypes, body.name)   # compiled by build()'s end
        self.timing["kernels"] += time.perf_counter() - start
        ins_names = [self.names[x] for x in ins.operands]
        outs = [self.alloc(r, i, [x for j, x in enumerate(ins.operands) if (j, k) in ks.inplace])
                for k, r in enumerate(ins.results)]
        scratch = [self.glob("S", np.empty(shape, dtype)) for shape, dtype in ks.scratch]
        args = [self.address(n) for n in ins_names + outs + scratch]
        self.call(fn, ks.extent, ks.work, self.constants(ks.dims), args)

    def call(self, fn, extent, work, dims, args):
        """A line calling native kernel ``fn`` on [0, extent), split across
        threads when it visits at least MIN_PARALLEL_WORK elements."""
        k = self.glob("k", fn)
        if work >= MIN_PARALLEL_WORK and extent > 1 and pool().n > 1:
            self.lines.append(f"par({k}, {extent}, ({dims}, {', '.join(args)}))")
        else:
            self.lines.append(f"{k}(0, {extent}, {dims}, {', '.join(args)})")

    def scatter_add(self, i, ins, args):
        x, idx, upd = ins.operands
        ax = ins.attrs["axis"]
        v = ins.results[0]
        out = self.alloc(v, i, [x])
        if out != args[0]:
            self.lines.append(f"np.copyto({out}, {args[0]})")
        P = int(np.prod(x.shape[:ax], dtype=np.int64))
        Q = int(np.prod(x.shape[ax + 1:], dtype=np.int64))
        J = int(np.prod(idx.shape, dtype=np.int64))
        if x.shape[ax] == 0 or J == 0 or P == 0 or Q == 0:
            return
        fn = kernels.get("scatter_add", idx.dtype, upd.dtype, v.dtype)
        self.call(fn, P, P * J * Q, self.constants((P, x.shape[ax], Q, J)),
                  [self.address(args[1]), self.address(args[2]), self.address(out)])

    def select_and_scatter_add(self, i, ins, args):
        source, operand = ins.operands
        a = ins.attrs
        v = ins.results[0]
        if len(v.shape) > 4:
            return self.fallback(i, ins, args)
        pad = 4 - len(v.shape)
        window = (1,) * pad + tuple(a["window_dimensions"])
        strides = (1,) * pad + tuple(a["window_strides"])
        lows = (0,) * pad + tuple(lo for lo, _ in a["padding"])
        s4 = (1,) * pad + tuple(source.shape)
        o4 = (1,) * pad + tuple(operand.shape)
        dims = self.constants(s4 + o4)
        n = int(np.prod(s4))
        positions = self._arena(8 * max(n, 1))
        pos = self.glob("B", positions.data[:8 * n].view(np.int64))
        identity = tuple(d for d in range(4) if window[d] == 1 and strides[d] == 1 and
                         lows[d] == 0 and s4[d] == o4[d])
        self.call(kernels.window_argmax(operand.dtype, window, strides, lows, identity), s4[0],
                  n * int(np.prod(window)), dims, [self.address(args[1]), self.address(pos)])
        out = self.alloc(v, i)
        self.free.append(positions)
        self.lines.append(f"{out}[...] = 0")
        # rows of dim 0 scatter to disjoint places when windows do not overlap across it
        disjoint = window[0] == 1 and strides[0] == 1 and lows[0] == 0
        self.call(kernels.get("scatter_positions", source.dtype, "int64", v.dtype), s4[0],
                  n if disjoint else 0, dims,
                  [self.address(args[0]), self.address(pos), self.address(out)])

    def control(self, i, ins, args):
        def sub(f, donate=()):
            return PlanBuilder(f, donate, f"{self.name}/{f.name}", top=False).build()
        obj = loop_over_plans(ins, sub, control)
        self._call_python(i, ins, args, obj, copy=False)

    def fallback(self, i, ins, args):
        prim = PRIMITIVES[ins.prim]
        log.log("fallback", f"{ins.prim}: no lowering in the cpu backend; the plan calls its "
                            f"NumPy implementation")
        attrs = dict(ins.attrs)
        run = at_location(prim.impl, ins.results[0].src if ins.results else None)
        self._call_python(i, ins, args, lambda *a: run(*a, **attrs))

    def _call_python(self, i, ins, args, fn, copy=True):
        """Results of a Python callable: owned arrays of the right dtypes."""
        dtypes = [np.dtype(r.dtype) for r in ins.results]
        if copy:
            def call(*a, _fn=fn, _dt=dtypes):
                return [np.array(o, dtype=d, order="C") for o, d in zip(_fn(*a), _dt)]
        else:
            call = fn
        name = self.glob("py", call)
        outs = [self.fresh_name("x") for _ in ins.results]
        lhs = ", ".join(outs) + ("," if len(outs) == 1 else "")
        self.lines.append(f"{lhs} = {name}({', '.join(args)})")
        for r, n in zip(ins.results, outs):
            self._bind(r, Buffer("ext"), n)
