"""Names and scopes of traced values, as TensorFlow names graph nodes.

    with tracejit.name_scope("hidden1"):
        z = tnp.dot(x, w, name="linear")     # %hidden1/linear = dot_general ...
        h = nn.relu(z)                       # %hidden1/select_n ... (the primitive)

Inside ``name_scope(s)`` every value a primitive creates is named
``s/<primitive>``; ``name=`` on a ``tnp`` or ``nn`` function names its
result ``s/<name>`` instead (and puts the values it computes on the way in
the scope ``s/<name>/``).  Scopes nest.  Names are unique within one traced
Function, as TensorFlow makes them: a second ``name_scope("relu")`` is
``relu_1``, a second value ``hidden1/linear`` is ``hidden1/linear_1``.
Outside a trace (eager mode) names are not recorded.

The tracer calls :func:`name_results` for each instruction it records and
opens a :func:`naming_context` per Function it traces (that is where
uniqueness is kept); autodiff re-binds a Function's instructions with
:func:`keep_names` so values keep their names, and binds the backward pass
under the scope ``gradients/``.
"""
from __future__ import annotations

import contextlib
import functools
import re
import threading
import types

from .ir.names import check_name, scope_of, unique_name
from .tree import tree_leaves

__all__ = ["name_scope", "valid_scope_name", "current_scope", "naming_context", "name_results", "keep_names",
           "with_name", "name_outputs", "add_name_keyword"]

_local = threading.local()


def _state():
    state = getattr(_local, "state", None)
    if state is None:
        state = _local.state = {"scopes": [], "contexts": [], "forced": None}
    return state


def current_scope() -> str:
    """The full name of the innermost :func:`name_scope` (``""`` outside any)."""
    scopes = _state()["scopes"]
    return scopes[-1] if scopes else ""


def _used():
    contexts = _state()["contexts"]
    return contexts[-1] if contexts else None


def valid_scope_name(name: str) -> str:
    """``name`` made a valid scope name: characters other than letters,
    digits, ``_``, ``.``, ``-`` and ``/`` become ``_``, and a leading digit
    or ``-`` gets a ``_`` before it (for names chosen elsewhere, such as a
    layer's, that need not follow the rule)."""
    clean = re.sub(r"[^A-Za-z0-9_.\-/]", "_", str(name)).strip("/") or "_"
    clean = re.sub(r"/+", "/", clean)
    return re.sub(r"(^|/)(?=[0-9-])", r"\1_", clean)


def _join(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


@contextlib.contextmanager
def name_scope(name: str):
    """A context manager: values created inside are named ``name/...``
    (nested scopes: ``outer/inner/...``); yields the scope's full name, made
    unique in the Function being traced (``relu``, ``relu_1``, ...).  A
    ``name`` ending in ``/`` re-enters that exact (absolute) scope."""
    state = _state()
    if isinstance(name, str) and name.endswith("/") and len(name) > 1:
        full = check_name(name[:-1], "name_scope")
    else:
        full = _join(current_scope(), check_name(name, "name_scope"))
        used = _used()
        if used is not None:
            full = unique_name(full, used)
    state["scopes"].append(full)
    try:
        yield full
    finally:
        state["scopes"].pop()


@contextlib.contextmanager
def naming_context():
    """Names made unique from here to the end of the block: one per traced
    Function (the tracer opens it)."""
    contexts = _state()["contexts"]
    contexts.append(set())
    try:
        yield
    finally:
        contexts.pop()


@contextlib.contextmanager
def keep_names(names):
    """Bind with these names: the next instruction recorded names its results
    ``names`` (a list, ``None`` entries unnamed), scoped by the current
    scope and made unique; used to re-bind a Function's instructions."""
    state = _state()
    saved, state["forced"] = state["forced"], list(names)
    try:
        yield
    finally:
        state["forced"] = saved


def name_results(prim: str, results, implicit: bool = False) -> None:
    """Name the results of one recorded instruction (module docstring):
    ``scope/prim`` inside a scope, the kept names while re-binding, else
    nothing.  ``implicit``: an instruction the tracer adds on its own (a
    constant for a Python scalar operand), which never takes kept names."""
    state = _state()
    used = _used()
    if used is None:
        return
    forced = state["forced"]
    if forced is not None and not implicit:
        state["forced"] = None
        for var, name in zip(results, forced):
            if name:
                var.name = unique_name(_join(current_scope(), name), used)
        return
    scope = current_scope()
    if forced is not None and implicit:   # a constant of a re-bound instruction:
        kept = next((n for n in forced if n), "")   # in that instruction's scope
        scope = _join(scope, scope_of(kept)) if scope_of(kept) else scope
    if scope and results:
        results[0].name = unique_name(_join(scope, prim), used)


def _var(x):
    return getattr(x, "_var", None)


def name_outputs(outputs, full: str, inputs=()) -> None:
    """Name the traced arrays in ``outputs`` that are not among ``inputs``
    (arrays created by the call): the first ``full``, the others ``full_1``,
    ``full_2``... (unique)."""
    used = _used()
    if used is None:
        return
    given = {id(v) for v in map(_var, inputs) if v is not None}
    first = True
    for out in outputs:
        var = _var(out)
        if var is None or id(var) in given:
            continue
        var.name = full if first else unique_name(full, used)
        first = False


def with_name(fn):
    """``fn`` with a ``name=`` keyword (module docstring): the call runs in
    the scope ``name`` and its results are named like that scope."""
    @functools.wraps(fn)
    def named(*args, name=None, **kwargs):
        if name is None:
            return fn(*args, **kwargs)
        with name_scope(name) as full:
            out = fn(*args, **kwargs)
        name_outputs(tree_leaves(out), full, tree_leaves((args, kwargs)))
        return out
    return named


def add_name_keyword(namespace: dict, names) -> None:
    """Give the functions ``namespace[n]`` for ``n`` in ``names`` a ``name=``
    keyword (:func:`with_name`); other objects are left alone, and aliases
    (``lrn = local_response_normalization``) stay one function."""
    wrappers: dict = {}
    for n in names:
        value = namespace.get(n)
        if isinstance(value, types.FunctionType) and not getattr(value, "_with_name", False):
            if id(value) not in wrappers:
                wrappers[id(value)] = with_name(value)
                wrappers[id(value)]._with_name = True
            namespace[n] = wrappers[id(value)]
