"""Errors a user can act on: one class per misuse, each naming the user's
own file and line (tracejit's frames are filtered out) and the shapes
involved."""
from __future__ import annotations

import linecache
import os
import sys

import numpy as np

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_internal(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PKG_DIR + os.sep)


def user_frame():
    """The innermost stack frame outside tracejit (the user's code)."""
    f = sys._getframe(1)
    while f is not None and _is_internal(f.f_code.co_filename):
        f = f.f_back
    return f


def user_location() -> str | None:
    f = user_frame()
    if f is None:
        return None
    return f"{f.f_code.co_filename}:{f.f_lineno}"


class TracejitError(Exception):
    """Base class. The message ends with the user's line, when known."""

    def __init__(self, message: str, location: str | None = "auto"):
        if location == "auto":
            location = user_location()
        self.location = location
        self.detail = message
        if location:
            line = _source_line(location)
            message = f"{message}\n  at {location}" + (f": {line}" if line else "")
        super().__init__(message)


def _source_line(location: str) -> str | None:
    path, _, lineno = location.rpartition(":")
    try:
        text = linecache.getline(path, int(lineno)).strip()
    except ValueError:
        return None
    return text or None


class ShapeError(TracejitError, ValueError):
    """Operands whose shapes do not fit the operation."""


class DTypeError(TracejitError, TypeError):
    """An unsupported dtype, or a dtype an operation does not accept."""


class ArgumentTypeError(TracejitError, TypeError):
    """An argument to a jitted function that is not an array, scalar or pytree."""


class TreeStructureError(TracejitError, ValueError):
    """Pytrees that should have the same structure but do not."""


class ScalarOverflowError(TracejitError, OverflowError):
    """A Python integer that does not fit the dtype it meets (NumPy 2 raises
    OverflowError there too)."""


class TracerBoolConversionError(TracejitError, TypeError):
    """Python control flow (``if``, ``while``, ``and``, ``bool()``) on a traced value."""


class ConcretizationError(TracejitError, TypeError):
    """A traced value used where a concrete Python value is needed
    (``int(x)``, ``float(x)``, a shape, ``np.asarray``)."""


class SymbolicDimensionError(ConcretizationError):
    """A symbolic dimension (``None`` in ``jit(..., input_specs=...)``) used
    where a concrete size is needed, or an argument that contradicts its spec."""


class UnexpectedTracerError(TracejitError, RuntimeError):
    """A traced value that escaped the function it was traced in (leaked)."""


class NonDifferentiableError(TracejitError, TypeError):
    """A gradient asked of an integer or boolean input."""


class LinAlgError(TracejitError, np.linalg.LinAlgError):
    """A matrix a decomposition or solve cannot take: singular, not positive
    definite, or an iteration that did not converge. Also a
    ``numpy.linalg.LinAlgError``, so code written for NumPy catches it."""


class IRParseError(TracejitError, ValueError):
    """Text that is not valid tracejit IR."""

    def __init__(self, message: str):
        super().__init__(message, location=None)


class IRVerifyError(TracejitError, ValueError):
    """An IR Function that breaks a rule (types, definitions, results)."""

    def __init__(self, message: str):
        super().__init__(message, location=None)


def at_location(fn, location):
    """``fn`` with any TracejitError it raises re-pointed at ``location``: a
    compiled plan runs an instruction long after the user's line recorded
    it, so a failure found then (a singular matrix) names that line."""
    if location is None:
        return fn

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TracejitError as e:
            raise type(e)(e.detail, location=location) from None
    return run


def filter_traceback(tb):
    """Drop tracejit's own frames from a traceback so the user's frames show."""
    frames = []
    while tb is not None:
        if not _is_internal(tb.tb_frame.f_code.co_filename):
            frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return None
    for a, b in zip(frames, frames[1:]):
        a.tb_next = b
    frames[-1].tb_next = None
    return frames[0]


class api_boundary:
    """Wrap the body of a public entry point (a jitted call, ``make_ir``,
    ``grad``...) in ``with api_boundary():`` so that a TracejitError leaving
    it shows only the user's frames (unless TRACEJIT_TRACEBACK=full).

    A context manager rather than ``except: raise``: an exception that
    leaves a ``with`` block gets no new frame for the function holding it,
    so no tracejit frame is left at all.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, TracejitError) and os.environ.get("TRACEJIT_TRACEBACK") != "full":
            exc.with_traceback(filter_traceback(tb))
            exc.__suppress_context__ = True
        return False


__all__ = [n for n in dir() if n.endswith("Error")] + ["user_location", "api_boundary",
                                                        "at_location"]


class CheckpointError(TracejitError):
    """A checkpoint is missing, corrupt, inconsistent, or does not match the
    model. It is about a file, not a line of the user's code, so the message
    carries no location."""

    def __init__(self, message: str, location: str | None = None):
        super().__init__(message, location)
