"""The compilation pipeline, named once.

Every jitted function goes through the stages of :data:`ORDER`::

    trace -> simplify -> fuse -> codegen -> compile

``jit`` (tracejit/api.py) runs :func:`trace` and :func:`simplify` and hands
the simplified Function to the backend (:func:`compile`), whose ``compile``
runs the last three stages its own way: :func:`fuse` into kernels, generate
each kernel's code, compile it (through the kernel cache) into a plan.
``tracejit ir --stage`` prints the IR after a stage (cli.STAGES says which
of these each of its stages is), and ``TRACEJIT_LOG=compile`` names each
stage's time with these names (:func:`timed`).

Tools that time the stages (benchmarks/bench_compile.py) wrap the functions
of this module; callers use them through the module for that reason.
"""
from __future__ import annotations

from . import log
from .backends import get_backend
from .core import trace_pytree
from .ir.core import Function
from .transforms import fusion
from .transforms.simplify import simplify as simplify_function

TRACE, SIMPLIFY, FUSE, CODEGEN, COMPILE = "trace", "simplify", "fuse", "codegen", "compile"
#: The stages, in the order a jitted function goes through them.
ORDER = (TRACE, SIMPLIFY, FUSE, CODEGEN, COMPILE)


def trace(fun, in_types, in_tree, name: str = "f"):
    """Trace ``fun`` on pytrees into a closed Function: ``(Function,
    captured values, out tree)`` (tracejit.core.trace_pytree)."""
    return trace_pytree(fun, in_types, in_tree, name)


def simplify(fn: Function) -> Function:
    """DCE, CSE, constant folding and algebraic rewrites to a fixed point,
    then verify (tracejit/transforms/simplify.py): what a backend compiles."""
    return simplify_function(fn)


def fuse(fn: Function) -> Function:
    """Group a simplified Function's instructions into kernels (``fusion``
    instructions; tracejit/transforms/fusion.py). Backends run it first."""
    return fusion.fuse(fn)


def compile(fn: Function, backend: str, donate=()):
    """The backend's executable of a simplified Function (it fuses,
    generates code and compiles)."""
    return get_backend(backend).compile(fn, donate=donate)


def timed(stage: str, name: str, detail: str = ""):
    """Log a stage's time under ``TRACEJIT_LOG=compile`` as ``name: stage``."""
    if stage not in ORDER:
        raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(ORDER)}")
    return log.timed("compile", f"{name}: {stage}{detail}")
