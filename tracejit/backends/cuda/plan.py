"""The plan: a fused Function -> a list of steps run on device arrays.

Each instruction of the fused Function becomes one step: a kernel launch,
a library call (tracejit/backends/cuda/library.py: matrix products,
convolutions, scatters), a view (``reshape`` of a materialized value), a
sub-plan loop (cond/while/scan, control.py) or, for a primitive with
neither, a host fallback (copy the operands to the host, run the
primitive's NumPy implementation, copy the results back; logged under
``TRACEJIT_LOG=fallback``).

Everything a launch needs is resolved when the plan is built, not per call:
the kernel is compiled for its one signature, its grid and block sizes and
its scalar arguments (counts and dims) are fixed, and on a GPU the step
keeps a prepared launch (launch.py: the kernel's argument list built once,
only the arrays' addresses written in per call).

Buffers (all from allocator.py's caching pool). Intermediates are device
arrays allocated when the plan is built and reused by liveness; a loop kernel that reads an input only at the
element it writes may write its output over that input when the input dies
there. Results are new device arrays on each call, except that a donated
argument's buffer is reused for a result of the same shape and dtype once
the argument is dead. Because intermediates persist, calls of one plan
from several threads run one at a time. Device arrays of rank-0 values
have shape (1,) throughout (codegen.kernel_shape).
"""
from __future__ import annotations

import threading
import time
import warnings

import numpy as np

from ... import log
from ...core import PRIMITIVES, eval_function
from ...device import host_view
from ...errors import at_location
from ...ir.core import Function, Var
from ...kernel.control import loop_over_plans
from ...kernel.liveness import Buffer, BufferPlan
from . import allocator, cache, codegen, control
from .codegen import kernel_shape
from .launch import launcher
from .snippets import SIMULATOR

#: Threads per block of loop kernels and of reductions (powers of two). The
#: simulator runs one Python thread per CUDA thread: small blocks, few blocks.
LOOP_BLOCK = 32 if SIMULATOR else 256
REDUCE_BLOCK = 8 if SIMULATOR else 256
MAX_GRID = 2 if SIMULATOR else 65535
#: Reduction layouts (codegen.generate's ``strategy``), for kernels with one
#: phase of reductions and only reduced outputs ("single"). With the
#: innermost axis kept: one thread per kept index (coalesced reads), split
#: over the reduced elements when there are few kept indices. Else, with
#: fewer kept indices than SPLIT_BLOCKS: each kept index's elements are
#: shared by up to MAX_SPLITS blocks (enough to make SPLIT_BLOCKS blocks in
#: all, each with at least SPLIT_MIN_ELEMENTS elements). A split's partial
#: results are combined by a second kernel in a fixed order (bit-identical
#: results from run to run: no atomics). Everything else: one block per
#: kept index.
SPLIT_BLOCKS = 4 if SIMULATOR else 1024
MAX_SPLITS = 4 if SIMULATOR else 1024
SPLIT_MIN_ELEMENTS = 2 * REDUCE_BLOCK if SIMULATOR else 8 * REDUCE_BLOCK
#: Column reductions are split over the reduced elements until they have
#: COLUMN_THREADS threads, each reducing at least COLUMN_MIN_ELEMENTS.
COLUMN_THREADS = 2 * LOOP_BLOCK if SIMULATOR else 1 << 17
COLUMN_MIN_ELEMENTS = 2 if SIMULATOR else 32


def reduction_layout(shape: codegen.ReductionShape) -> tuple[str, int]:
    """(strategy, splits) of a reduction kernel: ``rows``, ``columns``,
    ``split`` (partials per block) or ``column_split`` (partials per
    thread), with the number of partial results per kept index."""
    if not shape.single:
        return "rows", 1
    if shape.inner_kept:
        splits = min(MAX_SPLITS, -(-COLUMN_THREADS // max(shape.kept, 1)),
                     shape.reduced // COLUMN_MIN_ELEMENTS)
        return ("column_split", splits) if splits >= 2 else ("columns", 1)
    splits = min(MAX_SPLITS, -(-SPLIT_BLOCKS // max(shape.kept, 1)),
                 shape.reduced // SPLIT_MIN_ELEMENTS)
    if splits >= 2:
        return "split", splits
    return "rows", 1


def library_lowerings() -> dict:
    """``library.LOWERINGS`` (prim -> builder of a run function), or {} when
    the library module is missing or fails to import."""
    try:
        from . import library
    except ImportError:
        return {}
    return getattr(library, "LOWERINGS", {})


def _empty(shape, dtype):
    return allocator.empty(shape, dtype)


def as_bits(a):
    """An array as a kernel takes it: float16 and bfloat16 as their uint16
    bits (tracejit/kernel/halfs.py)."""
    return a.view(np.uint16) if a.dtype.itemsize == 2 and a.dtype.kind in "fV" else a


class PlanBuilder(BufferPlan):
    def __init__(self, fn: Function, donate=(), name="plan", top=True):
        super().__init__(fn, donate)
        self.name = name
        self.top = top
        self.slot: dict[Var, int] = {}
        self.free: dict[tuple, list] = {}          # (shape, dtype) -> free device buffers
        self.steps: list = []
        self.describe: list[str] = []
        self.device_bytes = 0
        self.timing = {"codegen": 0.0, "compile": 0.0}
        self.lowerings = library_lowerings()

    # --- slots and buffers -------------------------------------------------------------
    def slot_of(self, v: Var) -> int:
        if v not in self.slot:
            self.slot[v] = len(self.slot)
        return self.slot[v]

    def key(self, t):
        return (kernel_shape(t.shape), t.dtype)

    def recycle(self, b):
        self.free.setdefault(self.key(b.type), []).append(b)

    def output(self, v: Var, step: int, inplace=()):
        """How step ``step`` gets the array for its output ``v``: a callable
        env -> device array; ``inplace`` lists inputs it may write over."""
        key = self.key(v.type)
        x = self.in_place(v, step, inplace)
        if x is not None:
            b = self.buf[x]
            self.bind(v, b)
            return self._getter(b, x)
        if v in self.must_fresh:
            b = self.donated(v)
            if b is not None:
                self.bind(v, b)
                return self._getter(b, None)
            self.bind(v, Buffer("fresh", type=v.type))
            shape, dtype = key
            return lambda env: _empty(shape, dtype)
        pool = self.free.get(key)
        if pool:
            b = pool.pop()
        else:
            b = Buffer("pooled", _empty(*key), type=v.type)
            self.device_bytes += int(np.prod(key[0])) * np.dtype(v.dtype).itemsize
        b.type = v.type
        self.bind(v, b)
        return self._getter(b, None)

    @staticmethod
    def _getter(b, x):
        if b.kind == "pooled":
            data = b.data
            return lambda env: data
        slot = b.donor
        return lambda env: env[slot]

    # --- the plan ------------------------------------------------------------------------
    def build(self):
        fn = self.fn
        self.liveness()
        for p in fn.params:
            s = self.slot_of(p)
            self.bind(p, Buffer("param", donor=s if p in self.donate else None, type=p.type))
        self.walk()
        return self._runner()

    def _runner(self):
        nslots = len(self.slot)
        param_slots = [self.slot[p] for p in self.fn.params]
        result_slots = [self.slot[v] for v in self.fn.results]
        steps = self.steps

        def run(args):
            env = [None] * nslots
            for s, a in zip(param_slots, args):
                env[s] = a
            for step in steps:
                step(env)
            return [env[s] for s in result_slots]
        if not self.top:
            return run
        lock = threading.Lock()
        describe, name = self.describe, self.name
        timed = [log.enabled("compile")]

        def run_top(args):
            with lock:
                if timed[0]:   # the first call, under TRACEJIT_LOG=compile
                    timed[0] = False
                    return _timed_run(name, steps, describe, nslots, param_slots,
                                      result_slots, args)
                return run(args)
        return run_top

    def step(self, i, ins):
        p = ins.prim
        if p == "fusion":
            return self.kernel(i, ins)
        if p == "reshape":
            return self.view(i, ins)
        if p in ("cond", "while", "scan"):
            return self.control(i, ins)
        if p in self.lowerings:
            return self.library(i, ins)
        return self.fallback(i, ins)

    def _add(self, step, what):
        self.steps.append(step)
        self.describe.append(what)

    def kernel(self, i, ins):
        body, kind = ins.attrs["body"], ins.attrs["kind"]
        start = time.perf_counter()
        try:
            strategy, splits = "loop", 1
            if kind == "reduction":
                strategy, splits = reduction_layout(codegen.reduction_shape(body))
            block = LOOP_BLOCK if strategy in ("loop", "columns", "column_split") else REDUCE_BLOCK
            if strategy in ("split", "column_split"):
                first = "split" if strategy == "split" else "column"
                sources = [codegen.generate(body, kind, block, f"{first}_{s}", splits)
                           for s in ("partial", "final")]
            else:
                sources = [codegen.generate(body, kind, block, strategy)]
        except codegen.LoweringError as e:
            log.log("fallback", f"{body.name}: {e}; running it with the reference "
                                f"interpreter on the host")
            return self._host(i, ins, lambda *a: eval_function(body, list(a)), body.name)
        self.timing["codegen"] += time.perf_counter() - start
        start = time.perf_counter()
        dispatchers = []
        for ks in sources:
            log.log("source", f"{body.name} ({ks.strategy}):\n{ks.source}")
            try:
                dispatchers.append(cache.load(ks.source, ks.arg_types, body.name))
            except Exception as e:   # a kernel numba-cuda cannot compile: a tracejit bug
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                warnings.warn(f"tracejit cuda: {body.name} did not compile ({type(e).__name__}: "
                              f"{msg}); it runs on the host (TRACEJIT_LOG=source shows it)",
                              RuntimeWarning, stacklevel=2)
                log.log("fallback", f"{body.name}: did not compile: {e}")
                return self._host(i, ins, lambda *a: eval_function(body, list(a)), body.name)
        self.timing["compile"] += time.perf_counter() - start
        ks = sources[-1]
        in_slots = [self.slot_of(x) for x in ins.operands]
        getters = [self.output(r, i, [x for j, x in enumerate(ins.operands)
                                      if (j, k) in ks.inplace])
                   for k, r in enumerate(ins.results)]
        out_slots = [self.slot_of(r) for r in ins.results]
        # a split reduction's partial results: scratch that lives with the plan
        partials = tuple(self._scratch((ks.scalars[0] * splits,), t) for t in ks.partials)
        launches, what = [], []   # (launch, its scalar arguments) per kernel
        for src, dispatcher in zip(sources, dispatchers):
            per_block = 1 if src.strategy in ("rows", "split_partial", "split_final") else block
            grid = min(max(-(-src.units // per_block), 1), MAX_GRID)
            launches.append(launcher(dispatcher, grid, block, src.scalars))
            what.append(f"grid {grid} x {block}")
        units = ks.units

        def step(env):
            outs = [g(env) for g in getters]
            if units:
                arrays = tuple(map(as_bits, (*[env[s] for s in in_slots], *outs, *partials)))
                for launch in launches:
                    launch(*arrays)
            for s, o in zip(out_slots, outs):
                env[s] = o
        unit = "elements" if kind == "loop" else "kept indices"
        layout = "" if kind == "loop" else f" {strategy}" + (f" x{splits}" if splits > 1 else "")
        self._add(step, f"{body.name} ({kind}{layout}, {units} {unit}, {', then '.join(what)})")

    def _scratch(self, shape, dtype):
        self.device_bytes += int(np.prod(shape)) * np.dtype(dtype).itemsize
        return _empty(shape, dtype)

    def view(self, i, ins):
        v, x = ins.results[0], ins.operands[0]
        src, dst = self.slot_of(x), self.slot_of(v)
        shape = kernel_shape(v.shape)
        self.bind(v, self.buf[x])

        def step(env):
            a = env[src]
            env[dst] = a if tuple(a.shape) == shape else a.reshape(shape)
        self._add(step, "reshape (view)")

    def library(self, i, ins):
        run = self.lowerings[ins.prim](ins)
        in_slots = [self.slot_of(x) for x in ins.operands]
        in_shapes = [tuple(x.shape) for x in ins.operands]
        out_slots = [self.slot_of(r) for r in ins.results]
        out_shapes = [kernel_shape(r.shape) for r in ins.results]
        for r in ins.results:
            self.bind(r, Buffer("ext", type=r.type))

        def step(env):
            ops = []
            for s, shape in zip(in_slots, in_shapes):
                a = env[s]
                ops.append(a if tuple(a.shape) == shape else a.reshape(shape))
            outs = run(*ops)
            for s, shape, o in zip(out_slots, out_shapes, outs):
                env[s] = o if tuple(o.shape) == shape else o.reshape(shape)
        self._add(step, f"{ins.prim} (library)")

    def control(self, i, ins):
        def sub(f, donate=()):
            return PlanBuilder(f, donate, f"{self.name}/{f.name}", top=False).build()
        obj = loop_over_plans(ins, sub, control)
        in_slots = [self.slot_of(x) for x in ins.operands]
        out_slots = [self.slot_of(r) for r in ins.results]
        for r in ins.results:
            self.bind(r, Buffer("ext", type=r.type))

        def step(env):
            outs = obj(*[env[s] for s in in_slots])
            for s, o in zip(out_slots, outs):
                env[s] = o
        self._add(step, f"{ins.prim} (sub-plans)")

    def fallback(self, i, ins):
        prim = PRIMITIVES[ins.prim]
        attrs = dict(ins.attrs)
        log.log("fallback", f"{ins.prim}: no lowering in the cuda backend; the plan runs its "
                            f"NumPy implementation on the host")
        run = at_location(prim.impl, ins.results[0].src if ins.results else None)
        self._host(i, ins, lambda *a: run(*a, **attrs), ins.prim)

    def _host(self, i, ins, fn, what):
        """A step copying the operands to the host, calling ``fn`` on NumPy
        arrays and copying its results back."""
        in_slots = [self.slot_of(x) for x in ins.operands]
        in_shapes = [tuple(x.shape) for x in ins.operands]
        out_slots = [self.slot_of(r) for r in ins.results]
        outs_t = [(kernel_shape(r.shape), np.dtype(r.dtype)) for r in ins.results]
        for r in ins.results:
            self.bind(r, Buffer("ext", type=r.type))

        def step(env):
            ops = [host_view(env[s].copy_to_host()).reshape(shape)
                   for s, shape in zip(in_slots, in_shapes)]
            outs = fn(*ops)
            for s, (shape, dtype), o in zip(out_slots, outs_t, outs):
                env[s] = allocator.upload(np.asarray(o, dtype), shape)
        self._add(step, f"{what} (host fallback)")


def _timed_run(name, steps, describe, nslots, param_slots, result_slots, args):
    """One run that logs each step's host time (its launch overhead, as
    launches are asynchronous) under TRACEJIT_LOG=compile."""
    env = [None] * nslots
    for s, a in zip(param_slots, args):
        env[s] = a
    lines = []
    for step, what in zip(steps, describe):
        start = time.perf_counter()
        step(env)
        lines.append(f"  {1e6 * (time.perf_counter() - start):8.1f} us  {what}")
    log.log("compile", f"{name}: first call, host time per step (launch overhead; "
                       f"includes first-launch setup):\n" + "\n".join(lines))
    log.log("compile", f"{name}: after the first call, {allocator.describe()}")
    return [env[s] for s in result_slots]
