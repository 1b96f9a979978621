"""The transform pipeline every jitted Function goes through before a
backend sees it; ``tracejit ir --stage`` prints each stage."""
from __future__ import annotations

from .ir.core import Function


def optimize(fn: Function) -> Function:
    """Simplify a traced Function (no-op until the simplify passes exist)."""
    try:
        from .transforms.simplify import simplify
    except ImportError:
        return fn
    return simplify(fn)
