"""Tracing: run a Python function on tracers and record primitives as IR.

This module is the core every other layer builds on: the :class:`Primitive`
(a registered :class:`~tracejit.ir.primitive.PrimitiveDef` that can be
bound), the :class:`Trace` and its :class:`Tracer` values, :func:`bind`,
:func:`eval_function`, and the helpers that trace a function on pytrees
(:func:`trace_pytree`, used by jit, the control-flow functions and
autodiff) with the types of its leaves (:func:`leaf_type`).

Every primitive application goes through :func:`bind`. With no trace
active it runs the primitive's reference implementation on NumPy arrays
(eager mode, so a user can debug a step without compiling); otherwise it
appends an instruction to the innermost active trace. Values from outside
that trace (NumPy arrays, tracers of an enclosing trace) are *captured*: they
become extra parameters of the traced Function, so every Function is closed.

A Tracer's operators and array methods (``x + y``, ``x.sum()``, ``x[i]``,
``x.T``) are NumPy's: tracejit.numpy installs them
(tracejit/numpy/tracer_methods.py), so this module never imports it.
"""
from __future__ import annotations

import threading

import numpy as np

from . import arguments
from .device import Array
from .errors import (ArgumentTypeError, ConcretizationError, DTypeError,
                     TracerBoolConversionError, UnexpectedTracerError, user_location)
from .ir.core import Function, Instr, Var
from .ir.primitive import PRIMITIVES, PrimitiveDef
from .ir.types import FLOATS, TensorType, canonical_dtype
from .naming import name_results, naming_context
from .specs import ShapeDtypeStruct
from .tree import tree_flatten, tree_unflatten

__all__ = ["PRIMITIVES", "Primitive", "Trace", "Tracer", "bind", "constant_value", "current_trace",
           "eval_function", "trace_function", "trace_flat", "trace_pytree",
           "leaf_type", "leaf_types"]


class Primitive(PrimitiveDef):
    """A primitive that can be applied: :meth:`bind` records it into the
    active trace or runs it eagerly. Every primitive in
    tracejit/primitives/ is one; see :class:`~tracejit.ir.primitive.PrimitiveDef`
    for its rules and facts."""

    def bind(self, *args, **attrs):
        """Apply the primitive: record it when tracing, run it otherwise.
        Always returns a list of results."""
        return bind(self, args, attrs)

    def __call__(self, *args, **attrs):
        """Single-result convenience form of :meth:`bind`."""
        out = self.bind(*args, **attrs)
        return out[0] if len(out) == 1 else out


_local = threading.local()


def _stack() -> list:
    s = getattr(_local, "stack", None)
    if s is None:
        s = _local.stack = []
    return s


def current_trace():
    s = _stack()
    return s[-1] if s else None


class Trace:
    def __init__(self, name: str = "f"):
        self.name = name
        self.params: list[Var] = []
        self.body: list[Instr] = []
        self.captured_values: list = []   # outside values, in capture order
        self.capture_vars: list[Var] = []
        self._captured: dict[int, Var] = {}
        self.active = True

    def new_param(self, type: TensorType) -> "Tracer":
        v = Var(type, user_location())
        self.params.append(v)
        return Tracer(self, v)

    def to_var(self, x) -> Var:
        if isinstance(x, Tracer):
            if x._trace is self:
                return x._var
            if not x._trace.active:
                raise UnexpectedTracerError(
                    f"a traced value {x._var.type} escaped the function it was "
                    f"traced in (created at {x._var.src}); return it from that "
                    f"function instead of storing it in a global or closure")
            return self._capture(x, x._var.type)
        if isinstance(x, (bool, int, float, np.generic)) or (
                isinstance(x, np.ndarray) and x.ndim == 0):
            return self.constant(x)
        if isinstance(x, np.ndarray):
            return self._capture(x, TensorType.of(x))
        if hasattr(x, "__array__") and not isinstance(x, (list, tuple, dict)):
            arr = np.asarray(x)
            return self._capture(arr, TensorType.of(arr))
        raise ArgumentTypeError(f"cannot use a value of type {type(x).__name__} "
                                f"as an array in a traced function")

    def _capture(self, value, type: TensorType) -> Var:
        v = self._captured.get(id(value))
        if v is None:
            v = Var(type.strong() if isinstance(value, np.ndarray) else type)
            self._captured[id(value)] = v
            self.captured_values.append(value)
            self.capture_vars.append(v)
        return v

    def constant(self, x) -> Var:
        t = TensorType.of(x)
        value = x.item() if isinstance(x, (np.ndarray, np.generic)) else x
        if t.dtype == "bool":
            value = bool(value)
        elif t.dtype in FLOATS:
            value = float(value)
        else:
            value = int(value)
        v = Var(t, user_location())
        name_results("constant", [v], implicit=True)
        self.body.append(Instr("constant", [], {"value": value, "dtype": t.dtype, "weak": t.weak}, [v]))
        return v

    def record(self, prim, args, attrs):
        operands = [self.to_var(a) for a in args]
        types = prim.out_types([v.type for v in operands], attrs)
        src = user_location()
        results = [Var(t, src) for t in types]
        name_results(prim.name, results)
        self.body.append(Instr(prim.name, operands, attrs, results))
        return [Tracer(self, r) for r in results]


def bind(prim, args, attrs):
    trace = current_trace()
    if trace is None:
        for a in args:
            if isinstance(a, Tracer):
                trace = a._trace
                if not trace.active:
                    raise UnexpectedTracerError(
                        f"a traced value {a._var.type} (created at {a._var.src}) "
                        f"was used after its trace ended: it leaked out of a "
                        f"jitted or differentiated function")
        arrays = [np.asarray(a) for a in args]
        # Shape rule first, so eager mode raises the same errors as tracing.
        prim.out_types([TensorType.of(a) for a in args], attrs)
        outs = prim.impl(*arrays, **attrs)
        return [np.asarray(o) for o in outs]
    return trace.record(prim, args, attrs)


def trace_function(fun, in_types, name="f"):
    """Trace ``fun(*tracers)`` (flat in, flat out) into a closed Function.

    Returns ``(function, captured_values)``: the Function's parameters are
    the ``in_types`` followed by one per captured outside value.
    """
    trace = Trace(name)
    _stack().append(trace)
    try:
        with naming_context():
            tracers = [trace.new_param(t) for t in in_types]
            outs = fun(*tracers)
            out_vars = [trace.to_var(o) for o in outs]
    finally:
        _stack().pop()
        trace.active = False
    fn = Function(trace.params + trace.capture_vars, trace.body, out_vars, name)
    return fn, trace.captured_values


def constant_value(ins: Instr):
    """The value of a ``constant`` instruction: a Python scalar when weakly
    typed, else a 0-d NumPy array of its dtype."""
    t = ins.results[0].type
    val = ins.attrs["value"]
    return val if t.weak else np.asarray(val, dtype=t.dtype)


def eval_function(fn: Function, args):
    """Run ``fn`` on ``args`` by binding each instruction: eagerly on NumPy
    arrays, or inlined into the active trace when tracing."""
    env = dict(zip(fn.params, args))
    for ins in fn.body:
        if ins.prim == "constant":
            env[ins.results[0]] = constant_value(ins)
            continue
        outs = ins.primitive.bind(*[env[v] for v in ins.operands], **ins.attrs)
        for r, o in zip(ins.results, outs):
            env[r] = o
    return [env[v] for v in fn.results]


class Tracer:
    """A traced array value. Behaves like a NumPy array of a known shape and
    dtype whose contents are not known until the compiled function runs."""
    __slots__ = ("_trace", "_var")
    __array_priority__ = 1000

    def __init__(self, trace: Trace, var: Var):
        self._trace = trace
        self._var = var

    # --- static facts -------------------------------------------------
    @property
    def aval(self) -> TensorType:
        return self._var.type

    @property
    def shape(self):
        return self._var.type.shape

    @property
    def dtype(self):
        return np.dtype(self._var.type.dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return self._var.type.size

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __repr__(self):
        return f"Traced<{self._var.type}>"

    # --- things that need a concrete value ----------------------------
    def __bool__(self):
        raise TracerBoolConversionError(
            f"Python control flow on a traced value {self._var.type}: its value "
            f"is not known while tracing. Use tracejit.numpy.where, "
            f"tracejit.cond or tracejit.while_loop, or mark the argument static "
            f"(static_argnums)")

    def _concrete(self, what):
        raise ConcretizationError(
            f"{what} needs a concrete value, but this is a traced value "
            f"{self._var.type}; mark the argument static (static_argnums) "
            f"if it must be a Python value")

    def __int__(self):
        self._concrete("int()")

    def __float__(self):
        self._concrete("float()")

    def __index__(self):
        self._concrete("using a traced value as an index or size")

    def __array__(self, dtype=None, copy=None):
        self._concrete("converting to a NumPy array")

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        return id(self)


# --- tracing functions on pytrees -------------------------------------------------
def leaf_type(x, path) -> TensorType:
    """The type of an argument leaf (``path`` names it in errors): a tracer's
    own, a device Array's, or that of a NumPy array or Python scalar."""
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, ShapeDtypeStruct):   # make_ir and `tracejit ir` on symbolic shapes
        return x.type
    if isinstance(x, Array):
        try:
            return TensorType(x.shape, canonical_dtype(x.dtype))
        except TypeError as e:
            raise DTypeError(f"argument {path}: {e}") from None
    if arguments.is_big_int(x):
        return arguments.BIG_INT_TYPE
    if isinstance(x, (bool, int, float, np.ndarray, np.generic)):
        try:
            return TensorType.of(x)
        except TypeError as e:
            raise DTypeError(f"argument {path}: {e}; convert it first, "
                             f"e.g. x.astype(np.float32)") from None
    raise ArgumentTypeError(
        f"argument {path} has type {type(x).__name__}; jitted functions take "
        f"NumPy arrays, device arrays (tracejit.device_put), Python scalars and "
        f"pytrees (dict, list, tuple, namedtuple, registered dataclass) of them; "
        f"pass other values with "
        f"static_argnums/static_argnames")


def leaf_types(leaves) -> list[TensorType]:
    """:func:`leaf_type` of each leaf, named ``#i`` in errors."""
    return [leaf_type(x, f"#{i}") for i, x in enumerate(leaves)]


def trace_flat(flat, in_types, name="f"):
    """Trace ``flat(*tracers) -> (out_leaves, meta)``; returns
    ``(function, captured_values, meta)``. ``meta`` is whatever ``flat``
    learned while running (typically the output's tree structure)."""
    metas = []

    def run(*tracers):
        out_leaves, meta = flat(*tracers)
        metas.append(meta)
        return out_leaves
    fn, captured = trace_function(run, in_types, name)
    return fn, captured, metas[0]


def trace_pytree(fun, in_types, in_tree, name="f"):
    """Trace ``fun(*tree_unflatten(in_tree, tracers))`` (a function on pytrees
    returning a pytree) for leaves of ``in_types``; returns
    ``(function, captured_values, out_tree)``. The one way jit, the
    control-flow functions and autodiff trace a user's function."""
    return trace_flat(lambda *leaves: tree_flatten(fun(*tree_unflatten(in_tree, leaves))),
                      in_types, name)
