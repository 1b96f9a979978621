"""Which values a ``checkpoint`` saves instead of recomputing (JAX's
``jax.checkpoint_policies``).

A policy is called with each instruction of the checkpointed function
(``tracejit.ir.Instr``: ``prim``, ``operands`` with their ``type``,
``attrs``, ``results`` with their ``name``) and returns True to save its
results for the backward pass. Only plain primitives are asked; structured
ones (scan, cond) are always recomputed. Names are those of
``tracejit.name_scope`` and ``name=``: ``save_only_these_names("logits")``
saves a value named ``logits`` or ``<scope>/logits``.
"""
from __future__ import annotations

__all__ = ["everything_saveable", "nothing_saveable", "dots_saveable", "checkpoint_dots",
           "dots_with_no_batch_dims_saveable", "save_only_these_names",
           "save_anything_except_these_names"]


def everything_saveable(ins) -> bool:
    """Save everything: no recomputation (and no memory saved)."""
    return True


def nothing_saveable(ins) -> bool:
    """Save nothing but the inputs: recompute everything (the default)."""
    return False


def dots_saveable(ins) -> bool:
    """Save the results of matrix products; recompute the cheap elementwise
    work between them."""
    return ins.prim == "dot_general"


checkpoint_dots = dots_saveable


def dots_with_no_batch_dims_saveable(ins) -> bool:
    """Save the results of matrix products that have no batch dimensions."""
    if ins.prim != "dot_general":
        return False
    (_, (lhs_batch, _)) = ins.attrs["dimension_numbers"]
    return not lhs_batch


def _named(ins, names) -> bool:
    for r in ins.results:
        if r.name and any(r.name == n or r.name.endswith("/" + n) for n in names):
            return True
    return False


def save_only_these_names(*names):
    """A policy saving the values with these names (module docstring)."""
    def policy(ins) -> bool:
        return _named(ins, names)
    return policy


def save_anything_except_these_names(*names):
    """A policy saving every value except those with these names."""
    def policy(ins) -> bool:
        return not _named(ins, names)
    return policy
