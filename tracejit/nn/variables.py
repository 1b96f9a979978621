"""Variables the TensorFlow 1.x way: ``get_variable`` inside ``variable_scope``,
made pure by :func:`transform` (Hands-On ML Ch. 9, "Sharing Variables").

    def relu(x):
        threshold = nn.get_variable("threshold", shape=(),
                                    initializer=nn.initializers.constant(0.0))
        w = nn.get_variable("weights", shape=(x.shape[1], 1))
        return tnp.maximum(x @ w, threshold)

    def model(x):
        outputs = []
        for i in range(5):
            with nn.variable_scope("relu", reuse=(i >= 1)):
                outputs.append(relu(x))
        return nn.add_n(outputs)

    net = nn.transform(model)
    params = net.init(key, x)       # {"relu/threshold": ..., "relu/weights": ...}
    y = net.apply(params, x)        # under jit and grad as any pure function

``init(key, *args)`` runs the function once and returns every variable that
``get_variable`` created, a dict keyed by the scoped names; ``apply(params,
*args)`` runs it again with ``get_variable`` returning ``params[name]``.
Each variable's initial value is drawn from ``fold_in(key, hash of its
name)``, so it does not depend on the order of creation.

TensorFlow's rules, checked in both passes: in a scope with ``reuse=None``
or ``False`` (the default), ``get_variable`` creates the variable, and a
second creation of the same name raises ``ValueError("Variable relu/threshold
already exists, disallowed ...")``; with ``reuse=True`` it returns the
existing variable, and a missing one raises ``ValueError("Variable
relu/threshold does not exist ...")``; with ``reuse=nn.AUTO_REUSE`` it
creates or reuses.  Inner scopes inherit ``reuse=True``; within a block,
``scope.reuse_variables()`` turns reuse on for the rest of it.  A shape
given when reusing must match the variable's.  As in TensorFlow, a variable
scope also opens a name scope for the other values (made unique: the five
ReLUs above compute in ``relu``, ``relu_1``, ... ``relu_4``), while the
variables keep the variable scope's name.
"""
from __future__ import annotations

import threading
import zlib

import numpy as np

from .. import random
from .. import numpy as tnp
from ..errors import TracejitError
from ..naming import name_scope, valid_scope_name
from . import initializers

__all__ = ["transform", "Transformed", "get_variable", "variable_scope", "VariableScope",
           "get_variable_scope", "AUTO_REUSE", "VariableError"]


class VariableError(TracejitError, ValueError):
    """A variable created twice without reuse, reused before creation, or
    reused with another shape."""


class _AutoReuse:
    def __repr__(self):
        return "nn.AUTO_REUSE"


AUTO_REUSE = _AutoReuse()
"""``reuse=nn.AUTO_REUSE``: ``get_variable`` creates a variable if it is
missing and reuses it otherwise."""


class VariableScope:
    """A variable scope: its full ``name`` ("" at the top) and ``reuse``
    (``False``, ``True`` or ``AUTO_REUSE``)."""

    def __init__(self, name: str, reuse):
        self.name = name
        self.reuse = reuse

    def reuse_variables(self):
        """Reuse the variables from here to the end of the block (TensorFlow's
        ``scope.reuse_variables()``; it cannot be turned off again)."""
        self.reuse = True

    def __repr__(self):
        return f"VariableScope(name={self.name!r}, reuse={self.reuse!r})"


class _Frame:
    """One ``init`` or ``apply`` pass of a transformed function."""

    def __init__(self, key, params):
        self.key, self.params = key, params
        self.created: dict = {}          # name -> value, this pass
        self.scopes = [VariableScope("", False)]
        self.default_names: dict = {}    # (parent, default_name) -> times used


_local = threading.local()


def _frames() -> list:
    if not hasattr(_local, "frames"):
        _local.frames = []
    return _local.frames


def _frame(what) -> _Frame:
    frames = _frames()
    if not frames:
        raise VariableError(f"nn.{what} works inside a function transformed by nn.transform "
                            f"(during its init or apply)")
    return frames[-1]


def get_variable_scope() -> VariableScope:
    """The current variable scope."""
    return _frame("get_variable_scope").scopes[-1]


class variable_scope:
    """``with nn.variable_scope("layer1", reuse=None):`` -- a context manager
    that prefixes the names of the variables ``get_variable`` makes inside it
    (``"layer1/weights"``).  ``name_or_scope`` may be a :class:`VariableScope`
    captured earlier (``with variable_scope(...) as scope``) to re-enter it by
    its full name; with ``name_or_scope=None``, ``default_name`` is made
    unique (``"relu"``, ``"relu_1"``, ...).  ``reuse``: ``None`` (inherit),
    ``True``, ``False`` or :data:`AUTO_REUSE` (see the module docstring)."""

    def __init__(self, name_or_scope, reuse=None, default_name: str | None = None):
        if reuse not in (None, True, False) and reuse is not AUTO_REUSE:
            raise ValueError(f"reuse must be None, True, False or nn.AUTO_REUSE, got {reuse!r}")
        if name_or_scope is None and default_name is None:
            raise ValueError("variable_scope needs a name (or a default_name)")
        if isinstance(name_or_scope, str) and not _valid_name(name_or_scope):
            raise ValueError(f"a variable scope name must be non-empty and not start or end "
                             f"with '/', got {name_or_scope!r}")
        self._name_or_scope, self._reuse, self._default_name = name_or_scope, reuse, default_name

    def __enter__(self) -> VariableScope:
        frame = _frame("variable_scope")
        parent = frame.scopes[-1]
        given = self._name_or_scope
        if isinstance(given, VariableScope):
            name = given.name
        else:
            if given is None:
                key = (parent.name, self._default_name)
                count = frame.default_names.get(key, 0)
                frame.default_names[key] = count + 1
                given = self._default_name + (f"_{count}" if count else "")
            name = f"{parent.name}/{given}" if parent.name else given
        if parent.reuse is True:     # inherited, and cannot be turned off inside
            reuse = True
        elif self._reuse is None:
            reuse = parent.reuse
        else:
            reuse = self._reuse
        scope = VariableScope(name, reuse)
        # Other values get a name scope, made unique as any (relu, relu_1...).
        self._names = name_scope(valid_scope_name(name.rsplit("/", 1)[-1]))
        self._names.__enter__()
        frame.scopes.append(scope)
        self._frame = frame
        return scope

    def __exit__(self, *exc):
        self._frame.scopes.pop()
        self._names.__exit__(*exc)
        return False


def _valid_name(name) -> bool:
    return isinstance(name, str) and bool(name) and name.strip("/") == name


def _shape(shape):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def _initial_value(initializer, key, shape, dtype, name):
    if initializer is None:
        initializer = initializers.glorot_uniform()
    if callable(initializer) or isinstance(initializer, str):
        if shape is None:
            raise VariableError(f"Shape of a new variable ({name}) must be fully defined, "
                                f"but it is None: pass shape=")
        value = initializers.get(initializer)(key, shape, dtype)
    else:
        value = tnp.asarray(initializer, dtype)
        if shape is not None and tuple(tnp.shape(value)) != shape:
            raise VariableError(f"variable {name}: the initial value has shape "
                                f"{tuple(tnp.shape(value))}, not shape={shape}")
    return value


def get_variable(name: str, shape=None, dtype=np.float32, initializer=None):
    """The variable ``name`` of the current variable scope: created (from
    ``initializer``, a tracejit initializer ``(key, shape, dtype)``, its name,
    or an initial value; default Glorot uniform, as TensorFlow) or reused,
    as the scope's ``reuse`` says (see the module docstring)."""
    if not _valid_name(name):
        raise ValueError(f"a variable name must be a non-empty string that does not start or "
                         f"end with '/', got {name!r}")
    frame = _frame("get_variable")
    scope = frame.scopes[-1]
    full = f"{scope.name}/{name}" if scope.name else name
    shape = _shape(shape)
    exists = full in frame.created
    if exists and scope.reuse is False:
        raise VariableError(f"Variable {full} already exists, disallowed. Did you mean to set "
                            f"reuse=True or reuse=nn.AUTO_REUSE in variable_scope?")
    if not exists and scope.reuse is True:
        raise VariableError(f"Variable {full} does not exist, or was not created with "
                            f"get_variable(). Did you mean to set reuse=nn.AUTO_REUSE in "
                            f"variable_scope?")
    if exists:
        value = frame.created[full]
        if shape is not None and tuple(tnp.shape(value)) != shape:
            raise VariableError(f"Trying to share variable {full}, but specified shape {shape} "
                                f"and found shape {tuple(tnp.shape(value))}.")
        return value
    if frame.params is None:
        key = random.fold_in(frame.key, zlib.crc32(full.encode()) & 0x7FFFFFFF)
        value = _initial_value(initializer, key, shape, dtype, full)
    else:
        if full not in frame.params:
            raise VariableError(f"Variable {full} is not in params (the function created it "
                                f"now but not during init); params has "
                                f"{sorted(frame.params)}")
        value = frame.params[full]
        if shape is not None and tuple(tnp.shape(value)) != shape:
            raise VariableError(f"Variable {full} has shape {tuple(tnp.shape(value))} in "
                                f"params, but get_variable asks for shape {shape}")
    frame.created[full] = value
    return value


class Transformed:
    """A function that calls :func:`get_variable`, as a pair of pure functions
    ``init(key, *args, **kwargs) -> params`` and ``apply(params, *args,
    **kwargs) -> outputs`` (see the module docstring)."""

    def __init__(self, fn):
        self.fn = fn

    def _run(self, frame, args, kwargs):
        frames = _frames()
        frames.append(frame)
        try:
            out = self.fn(*args, **kwargs)
        finally:
            frames.pop()
        return out, frame.created

    def init(self, key, *args, **kwargs) -> dict:
        """Run the function once and return the variables it created, keyed by
        their scoped names."""
        if key is None:
            raise ValueError("init needs a random key: init(tracejit.random.key(seed), ...)")
        return dict(self._run(_Frame(key, None), args, kwargs)[1])

    def apply(self, params, *args, **kwargs):
        """The function's outputs, ``get_variable`` returning ``params[name]``."""
        if not isinstance(params, dict):
            raise TypeError(f"apply expects the params dict that init returned, got "
                            f"{type(params).__name__}")
        out, created = self._run(_Frame(None, params), args, kwargs)
        unused = sorted(set(params) - set(created))
        if unused:
            raise VariableError(f"params has variables the function did not use: {unused}")
        return out

    def __repr__(self):
        return f"nn.transform({getattr(self.fn, '__name__', self.fn)!r})"


def transform(fn) -> Transformed:
    """``fn``, which calls :func:`get_variable`, as an object with pure
    ``init(key, *args)`` and ``apply(params, *args)``."""
    if not callable(fn):
        raise TypeError(f"nn.transform expects a function, got {type(fn).__name__}")
    return Transformed(fn)
