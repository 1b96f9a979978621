"""The transform pipeline every jitted Function goes through before a
backend sees it; ``tracejit ir --stage`` prints each stage."""
from __future__ import annotations

from .ir.core import Function
from .transforms.simplify import simplify


def optimize(fn: Function) -> Function:
    """Simplify a traced Function: DCE, CSE, constant folding and algebraic
    rewrites to a fixed point, then verify it (tracejit/transforms/simplify.py)."""
    return simplify(fn)
