"""``memory_estimate(f, *args)``: how many bytes a compiled ``f`` holds at its
peak (Hands-On ML Ch. 13, "Memory Requirements").

The estimate walks the Function a backend compiles (traced, simplified and
fused into kernels, as ``jit`` does) in program order and keeps a running
total of the buffers that are alive:

- the inputs (the arguments and the arrays ``f`` captures), for the whole
  call: the caller holds them;
- each intermediate, from the instruction that writes it to the last one
  that reads it (its buffer is then free for a later value), the way the
  CPU plan reuses its arena; a ``reshape`` is a view of its operand's
  buffer, and a kernel that reads an input only at the element it writes
  writes its output over that input when the input dies there (a bias add
  and ReLU over a convolution's output take no new memory);
- the outputs, from when they are written to the end.

The peak is the largest total at any instruction. Inside control flow
(``cond``, ``while``, ``scan``) the body's own peak is added at that step.
Not counted: scratch space of library calls (a convolution's im2col
buffer), the interpreter's and Numba's own memory.

Inference of a CNN then needs about its parameters, its input and two
consecutive layers' outputs; a training step (``mode="train"``, or a
function that calls ``value_and_grad``) keeps every forward activation that
the backward pass reads, as the chapter says.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .api import make_ir
from .backends.cpu.codegen import LoweringError, generate
from .ir.core import Function
from .stages import simplify as optimize
from .transforms.fusion import fuse
from .transforms.autodiff import vjp
from .tree import tree_map
from . import numpy as tnp

__all__ = ["memory_estimate", "MemoryEstimate", "function_memory"]


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of a compiled function: ``peak`` (inputs + intermediates and
    outputs alive at the busiest instruction), ``inputs``, ``outputs``,
    ``intermediates_at_peak``, ``all_intermediates`` (every value the plan
    materializes, as if nothing were freed or reused), and where the peak is
    (``peak_step``: the instruction's index in the fused Function and
    ``peak_primitive``)."""

    peak: int
    inputs: int
    outputs: int
    intermediates_at_peak: int
    all_intermediates: int
    peak_step: int
    peak_primitive: str

    def __int__(self):
        return self.peak

    def lines(self) -> list[str]:
        """The estimate as ``# ...`` comment lines (``tracejit ir --stats``)."""
        return [f"# memory: peak {_size(self.peak)} ({self.peak} bytes) at step "
                f"{self.peak_step} ({self.peak_primitive})",
                f"# memory: inputs {_size(self.inputs)}, intermediates at the peak "
                f"{_size(self.intermediates_at_peak)}, outputs {_size(self.outputs)}, "
                f"all intermediates {_size(self.all_intermediates)}"]

    def __str__(self):
        return (f"peak {_size(self.peak)}: inputs {_size(self.inputs)}, intermediates "
                f"{_size(self.intermediates_at_peak)}, outputs {_size(self.outputs)} (at step "
                f"{self.peak_step}, {self.peak_primitive})")


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes} B"


def _nbytes(v) -> int:
    return int(np.prod(v.shape, dtype=np.int64)) * np.dtype(v.dtype).itemsize


def _inplace_pairs(ins):
    """(operand index, result index) pairs a fused kernel may write over."""
    try:
        return generate(ins.attrs["body"], ins.attrs["kind"]).inplace
    except LoweringError:
        return frozenset()


class _Buffer:
    __slots__ = ("nbytes", "refs", "owned")

    def __init__(self, nbytes, owned):
        self.nbytes, self.refs, self.owned = nbytes, 0, owned


def function_memory(fn: Function) -> MemoryEstimate:
    """The estimate for a fused Function (module docstring)."""
    last = {}
    for i, ins in enumerate(fn.body):
        for x in ins.operands:
            last[x] = i
    end = len(fn.body)
    for v in fn.results:
        last[v] = end
    for i, ins in reversed(list(enumerate(fn.body))):   # a view keeps its base alive
        if ins.prim == "reshape":
            base, view = ins.operands[0], ins.results[0]
            last[base] = max(last.get(base, i), last.get(view, i))

    buffers: dict = {}
    inputs = 0
    for p in fn.params:
        if p not in buffers:
            buffers[p] = _Buffer(_nbytes(p), owned=False)
            buffers[p].refs += 1
            inputs += buffers[p].nbytes
    live = 0                      # bytes of intermediates and outputs alive
    peak, peak_live, peak_step, peak_prim = inputs, 0, -1, "inputs"
    total = 0

    def bind(v, buf):
        buf.refs += 1
        buffers[v] = buf

    def release(v):
        nonlocal live
        buf = buffers.pop(v, None)
        if buf is not None:
            buf.refs -= 1
            if buf.refs == 0 and buf.owned:
                live -= buf.nbytes

    for i, ins in enumerate(fn.body):
        extra = 0
        if ins.prim == "reshape":
            bind(ins.results[0], buffers[ins.operands[0]])
        else:
            pairs = _inplace_pairs(ins) if ins.prim == "fusion" else frozenset()
            for k, r in enumerate(ins.results):
                reused = None
                for j, x in enumerate(ins.operands):
                    b = buffers.get(x)
                    if (j, k) in pairs and b is not None and b.owned and b.refs == 1 and \
                            last.get(x) == i and x.type.strong() == r.type.strong():
                        reused = b
                        break
                if reused is not None:     # the operand's buffer passes to the result
                    del buffers[ins.operands[j]]
                    reused.refs -= 1
                    bind(r, reused)
                    continue
                buf = _Buffer(_nbytes(r), owned=True)
                bind(r, buf)
                live += buf.nbytes
                total += buf.nbytes
            if ins.prim != "fusion":
                for sub in ins.subfunctions().values():
                    inner = function_memory(sub)
                    extra = max(extra, inner.peak - inner.inputs - inner.outputs)
                    total += inner.all_intermediates
        if inputs + live + extra > peak:
            peak, peak_live, peak_step, peak_prim = inputs + live + extra, live + extra, i, ins.prim
        for x in dict.fromkeys(ins.operands):
            if last.get(x) == i:
                release(x)
        for r in ins.results:
            if r not in last:
                release(r)
    outputs = sum(b.nbytes for b in {id(buffers[v]): buffers[v] for v in fn.results
                                     if buffers[v].owned}.values())
    return MemoryEstimate(peak=peak, inputs=inputs, outputs=outputs,
                          intermediates_at_peak=peak_live, all_intermediates=total,
                          peak_step=peak_step, peak_primitive=peak_prim)


def _placeholder(x):
    """An argument as a zero-stride array: a shape and a dtype, no memory
    (``x`` may be an array or anything with ``.shape`` and ``.dtype``)."""
    if isinstance(x, (np.ndarray, np.generic, bool, int, float)):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return np.broadcast_to(np.zeros((), np.dtype(x.dtype)), tuple(x.shape))
    return x


def _training(f):
    """``f``'s forward and backward pass: the gradient of ``f``'s outputs
    (summed) with respect to its first argument (the parameters)."""
    def step(first, *rest, **kwargs):
        out, pullback = vjp(lambda p: f(p, *rest, **kwargs), first)
        return pullback(tree_map(tnp.ones_like, out))[0]
    return step


def memory_estimate(f, *args, mode: str = "infer", static_argnums=(), static_argnames=(),
                    **kwargs) -> MemoryEstimate:
    """Peak bytes of ``jit(f)`` called with ``args`` (a :class:`MemoryEstimate`;
    ``int(estimate)`` is the peak). ``args`` are arrays, or any objects with
    ``.shape`` and ``.dtype`` (nothing is allocated; ``f`` is traced, not run).
    ``mode="train"`` estimates ``f``'s forward and backward pass instead: the
    gradient with respect to the first argument (``f(params, x)``), which
    keeps the forward activations the backward pass reads.
    See the module docstring for what is counted."""
    if mode not in ("infer", "train"):
        raise ValueError(f'mode must be "infer" or "train", got {mode!r}')
    if mode == "train" and (static_argnums or static_argnames or not args):
        raise ValueError('mode="train" differentiates f(params, ...) with respect to its '
                         'first argument: pass it, and no static arguments')
    args, kwargs = tree_map(_placeholder, (args, kwargs))
    fun = _training(f) if mode == "train" else f
    traced = make_ir(fun, static_argnums, static_argnames)(*args, **kwargs)
    return function_memory(fuse(optimize(traced)))
