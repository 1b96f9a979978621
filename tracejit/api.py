"""``jit`` and ``make_ir``: tracing user functions with pytree arguments."""
from __future__ import annotations

import functools
import inspect
import time

import numpy as np

from . import arguments, log
from . import stages
from .backends import default_backend, get_backend
from .core import current_trace, leaf_type
from .device import Array, device_put
from .errors import ArgumentTypeError, api_boundary
from .ir.types import TensorType
from .specs import check_leaf
from .specs import leaf_specs as specs_of_leaves
from .symbolic import SymbolicExecutable
from .tiered import TieredExecutable, enabled_by_default
from .transforms.specialize import is_symbolic
from .tree import tree_flatten, tree_unflatten


class _Signature:
    """Splits a call's arguments into static values and a dynamic pytree."""

    def __init__(self, fun, static_argnums, static_argnames):
        self.static_argnums = tuple(sorted({static_argnums} if isinstance(static_argnums, int)
                                           else set(static_argnums)))
        self.static_argnames = tuple({static_argnames} if isinstance(static_argnames, str)
                                     else static_argnames)
        try:
            self.params = list(inspect.signature(fun).parameters)
        except (TypeError, ValueError):
            self.params = []

    def split(self, args, kwargs):
        statics = []
        dyn_args = []
        for i, a in enumerate(args):
            name = self.params[i] if i < len(self.params) else None
            if i in self.static_argnums or (name is not None and name in self.static_argnames):
                statics.append((i, a))
            else:
                dyn_args.append(a)
        dyn_kwargs = {}
        for k, v in kwargs.items():
            idx = self.params.index(k) if k in self.params else None
            if k in self.static_argnames or (idx is not None and idx in self.static_argnums):
                statics.append((k, v))
            else:
                dyn_kwargs[k] = v
        for key, v in statics:
            try:
                hash(v)
            except TypeError:
                raise ArgumentTypeError(
                    f"static argument {key!r} must be hashable, got {type(v).__name__}; "
                    f"use a tuple instead of a list") from None
        return tuple(statics), (tuple(dyn_args), dyn_kwargs)

    @staticmethod
    def merge(statics, dyn_args, dyn_kwargs):
        args = list(dyn_args)
        kwargs = dict(dyn_kwargs)
        for key, v in statics:
            if isinstance(key, int):
                args.insert(key, v)
            else:
                kwargs[key] = v
        return args, kwargs


def _trace(fun, sig, statics, dyn, name, int_probe=(), types=None):
    """Trace ``fun`` for this call; returns (Function, captured, out_treedef).
    Leaves at ``int_probe`` positions are traced as weak int64; ``types``
    (one per leaf, or None) overrides the leaves' own types (input_specs)."""
    leaves, treedef = tree_flatten(dyn)
    in_types = [arguments.INT_TYPE if i in int_probe
                else types[i] if types is not None and types[i] is not None
                else leaf_type(x, f"#{i}")
                for i, x in enumerate(leaves)]

    def call(dyn_args, dyn_kwargs):
        args, kwargs = sig.merge(statics, dyn_args, dyn_kwargs)
        return fun(*args, **kwargs)
    return stages.trace(call, in_types, treedef, name)


def make_ir(fun, static_argnums=(), static_argnames=()):
    """``make_ir(f)(*args)`` returns the traced IR Function of ``f`` (captured
    arrays become trailing parameters)."""
    sig = _Signature(fun, static_argnums, static_argnames)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with api_boundary():
            statics, dyn = sig.split(args, kwargs)
            fn, _, _ = _trace(fun, sig, statics, dyn, getattr(fun, "__name__", "f"))
        return fn
    return wrapped


def _fast_signature(leaves):
    """What determines the types of these leaves, cheaply (a call's dispatch
    cost was mostly typing each leaf): shape and dtype of NumPy arrays and
    scalars, the class of Python floats, bools and int64-sized ints; None
    when a leaf is anything else (device arrays, tracers, big ints, lists),
    which take the full path."""
    sig = []
    for x in leaves:
        t = type(x)
        if t is np.ndarray or isinstance(x, np.generic):
            sig.append((t, x.shape, x.dtype))
        elif t is float or t is bool or (t is int and -2**63 <= x < 2**63):
            sig.append(t)
        else:
            return None
    return tuple(sig)


def _describe_change(old, new):
    """Why a signature missed the cache, in words."""
    (ot, otypes, ostat, ob), (nt, ntypes, nstat, nb) = old, new
    if ob != nb:
        return f"backend changed from {ob} to {nb}"
    if ot != nt:
        return f"argument tree structure changed: {ot} -> {nt}"
    if ostat != nstat:
        return f"static arguments changed: {ostat} -> {nstat}"
    diffs = [f"leaf {i}: {a} -> {b}" for i, (a, b) in enumerate(zip(otypes, ntypes)) if a != b]
    return "argument types changed: " + "; ".join(diffs)


class JitFunction:
    """A function compiled per argument signature (see :func:`jit`)."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), backend=None,
                 donate_argnums=(), tiered=None, input_specs=None):
        functools.update_wrapper(self, fun)
        if not hasattr(self, "__name__"):   # functools.partial, callable objects
            target = fun.func if isinstance(fun, functools.partial) else type(fun)
            self.__name__ = getattr(target, "__name__", "fun")
            self.__qualname__ = getattr(target, "__qualname__", self.__name__)
        self.fun = fun
        self._sig = _Signature(fun, static_argnums, static_argnames)
        self.backend = backend
        self.donate_argnums = tuple({donate_argnums} if isinstance(donate_argnums, int)
                                    else donate_argnums)
        self.tiered = tiered
        self.input_specs = None if input_specs is None else tuple(input_specs)
        self._cache = {}
        self._fast_keys = {}   # _fast_signature's key -> the cache key it stands for
        self._int_targets = {}   # per cache key: {Python int leaf: dtypes it is used as}
        self._last_key = None
        self.trace_count = 0

    def _backend_name(self, leaves=()):
        """The explicit backend, else cuda when an argument is on the GPU,
        else the default (tracejit.backends.default_backend)."""
        if self.backend:
            return self.backend
        if any(isinstance(x, Array) for x in leaves):
            return "cuda"
        return default_backend()

    def __call__(self, *args, **kwargs):
        if current_trace() is not None:
            return self.fun(*args, **kwargs)   # inline into the enclosing trace
        with api_boundary():
            return self._call(args, kwargs)

    def _call(self, args, kwargs):
        statics, dyn = self._sig.split(args, kwargs)
        leaves, treedef = tree_flatten(dyn)
        fast = _fast_signature(leaves) if self.input_specs is None else None
        key = None
        if fast is not None:   # a signature seen before: its key without typing each leaf
            fast = (treedef, fast, statics, self.backend or default_backend())
            key = self._fast_keys.get(fast)
        if key is None:
            types = tuple(("Python int beyond int64", leaf_type(x, f"#{i}"))
                          if arguments.is_big_int(x) else leaf_type(x, f"#{i}")
                          for i, x in enumerate(leaves))
            if self.input_specs is not None:
                types = self._spec_types(args, statics, types)
            key = (treedef, types, statics, self._backend_name(leaves))
            if fast is not None:
                self._fast_keys[fast] = key
        backend = key[3]
        entry = self._cache.get(key)
        if entry is None:
            if self._last_key is not None:
                log.log("retrace", f"{self.__name__}: retracing because "
                        f"{_describe_change(self._last_key, key)}")
            entry, self._int_targets[key] = self._compile(statics, dyn, backend, leaves, types)
            self._cache[key] = entry
        self._last_key = key
        executable, captured, out_tree = entry
        arguments.check_ints(leaves, self._int_targets[key])
        if backend == "cuda":   # device arrays stay; NumPy ones are uploaded by the plan
            flat = [x if isinstance(x, Array) else arguments.as_array(x)
                    for x in leaves] + list(captured)
        else:
            flat = [arguments.as_array(x) for x in leaves] + list(captured)
        outs = executable(flat)
        return tree_unflatten(out_tree, outs)

    def _spec_types(self, args, statics, types):
        """The call's leaf types with input_specs applied: a leaf with a spec
        is traced with the spec's (possibly symbolic) type, once checked
        against it (tracejit/specs.py)."""
        static_positions = {k for k, _ in statics if isinstance(k, int)}
        specs = [self.input_specs[i] if i < len(self.input_specs) else None
                 for i in range(len(args)) if i not in static_positions]
        dyn_args = [a for i, a in enumerate(args) if i not in static_positions]
        leaf_spec = specs_of_leaves(dyn_args, specs)
        return tuple(check_leaf(t, leaf_spec[i], f"argument #{i}")
                     if i < len(leaf_spec) and leaf_spec[i] is not None
                     and isinstance(t, TensorType) else t
                     for i, t in enumerate(types))

    def _donated_leaves(self, statics, dyn):
        """Flat leaf positions of the donated positional arguments (static
        ones take no leaves, so positions are counted without them)."""
        if not self.donate_argnums:
            return ()
        dyn_args, _ = dyn
        static_positions = {k for k, _ in statics if isinstance(k, int)}
        positions = [i for i in range(len(dyn_args) + len(static_positions))
                     if i not in static_positions]
        donated, start = [], 0
        for i, a in zip(positions, dyn_args):
            n = len(tree_flatten(a)[0])
            if i in self.donate_argnums:
                donated.extend(range(start, start + n))
            start += n
        return tuple(donated)

    def _compile(self, statics, dyn, backend, leaves, types):
        self.trace_count += 1
        types = [t if isinstance(t, TensorType) and t.symbolic else None for t in types]
        ints = [i for i, x in enumerate(leaves) if arguments.is_python_int(x)]
        big = tuple(i for i in ints if arguments.is_big_int(leaves[i]))
        if big:   # beyond int64: allowed only where every use makes it a float
            probe = _trace(self.fun, self._sig, statics, dyn, self.__name__, int_probe=big)[0]
            arguments.check_big_int_uses(leaves, arguments.int_targets(probe, big))
        with stages.timed(stages.TRACE, self.__name__):
            fn, captured, out_tree = _trace(self.fun, self._sig, statics, dyn, self.__name__,
                                            types=types)
        int_targets = arguments.int_targets(fn, [i for i in ints if i not in big])
        with stages.timed(stages.SIMPLIFY, self.__name__):
            fn = stages.simplify(fn)
        donate = self._donated_leaves(statics, dyn)
        if is_symbolic(fn):   # one plan per set of sizes, built on its first call
            executable = SymbolicExecutable(
                fn, functools.partial(self._executable, backend=backend, donate=donate),
                self.__name__)
        else:
            executable = self._executable(fn, backend, donate)
        captured = [arguments.native(np.asarray(c)) for c in captured]
        if backend == "cuda":   # uploaded once per compiled entry, not per call
            captured = device_put(captured, "cuda")
        return (executable, captured, out_tree), int_targets

    def _executable(self, fn, backend, donate):
        """The compiled (or tiered) executable of a concrete Function."""
        tiered = self.tiered if self.tiered is not None else enabled_by_default()
        if tiered and backend == "cpu":   # the interpreter runs on host arrays only
            build = functools.partial(get_backend(backend).compile, background=True)
            return TieredExecutable(fn, build, donate, self.__name__)
        with stages.timed(stages.COMPILE, self.__name__, f" for {backend}"):
            return stages.compile(fn, backend, donate)

    def wait_compiled(self, timeout=None) -> bool:
        """Block until every plan of this function that is compiling in the
        background (``tiered=True``) is ready; True if all are."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        executables = []
        for executable, _, _ in list(self._cache.values()):
            plans = executable.plans.values() if isinstance(executable, SymbolicExecutable) \
                else [executable]
            executables.extend(plans)
        for executable in executables:
            if isinstance(executable, TieredExecutable):
                left = None if deadline is None else max(0.0, deadline - time.perf_counter())
                if not executable.wait(left):
                    return False
        return True

    def lower(self, *args, **kwargs):
        """The traced Function for these arguments (not compiled)."""
        with api_boundary():
            statics, dyn = self._sig.split(args, kwargs)
            leaves, _ = tree_flatten(dyn)
            types = [leaf_type(x, f"#{i}") for i, x in enumerate(leaves)]
            if self.input_specs is not None:
                types = self._spec_types(args, statics, types)
            return _trace(self.fun, self._sig, statics, dyn, self.__name__, types=types)[0]


def jit(fun=None, *, static_argnums=(), static_argnames=(), backend=None, donate_argnums=(),
        tiered=None, input_specs=None):
    """Compile ``fun`` per argument signature.

    Arguments are pytrees of NumPy arrays and Python scalars (scalars are
    weakly typed, so a new learning rate does not recompile). The compiled
    function is cached per (tree structure, leaf shapes and dtypes, static
    values, backend). ``backend`` is 'cpu', 'cuda' or 'reference' (the NumPy
    interpreter); by default cuda when an argument is a device array
    (tracejit.device_put), else $TRACEJIT_BACKEND, else CUDA on a GPU, else
    CPU. The cuda backend returns device arrays (``tracejit.Array``).
    ``donate_argnums`` lets the compiled function reuse those arguments'
    buffers for its outputs. ``tiered=True`` runs the first calls of each
    signature on the reference interpreter while its plan compiles in the
    background (tracejit/tiered.py); None follows ``$TRACEJIT_TIERED``.

    ``input_specs`` (one entry per positional argument: a ShapeDtypeStruct,
    a pytree of them shaped like the argument, or None for "as called")
    traces an argument with the spec's shape, where a ``None`` dimension is
    symbolic: ``input_specs=[ShapeDtypeStruct((None, 784), np.float32)]``
    gives one trace and one traced Function for every batch size
    (``trace_count`` stays 1; docs/symbolic_shapes.md).
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, backend=backend,
                                 donate_argnums=donate_argnums, tiered=tiered,
                                 input_specs=input_specs)
    return JitFunction(fun, static_argnums, static_argnames, backend, donate_argnums, tiered,
                       input_specs)


