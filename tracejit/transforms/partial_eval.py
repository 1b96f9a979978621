"""Partial evaluation: split a Function into what is known now and what
waits for values given later (JAX's ``pe.partial_eval``, on our IR).

``split(fn, unknown)`` takes the flags of ``fn``'s params that are not known
yet. An instruction is unknown when one of its operands is; everything
else is known and can run now. The known Function computes the known
results and the *residuals*, the known values that unknown instructions
(or unknown-side results) read; the unknown Function takes the residuals
and the unknown params, and computes the rest. Constants are copied to
whichever side reads them rather than passed as residuals.

``linearize`` uses it on a traced ``jvp``: the primal computation runs
once, and the returned linear map holds only the tangent arithmetic.
"""
from __future__ import annotations

from ..ir.core import Function, Instr
from .simplify import dce


def split(fn: Function, unknown, known_results):
    """``(known_fn, unknown_fn)``.

    ``unknown[i]`` flags ``fn.params[i]``; ``known_results[j]`` says result
    ``j`` must come out of the known side (ValueError if it depends on an
    unknown param). ``known_fn(*known params) -> (*known results,
    *residuals)``; ``unknown_fn(*residuals, *unknown params) -> the other
    results``, both in ``fn``'s order."""
    is_unknown = {p for p, u in zip(fn.params, unknown) if u}
    known_body, unknown_body, constants = [], [], {}
    for ins in fn.body:
        if ins.prim == "constant":
            constants[ins.results[0]] = ins
        elif any(v in is_unknown for v in ins.operands):
            unknown_body.append(ins)
            is_unknown.update(ins.results)
        else:
            known_body.append(ins)
    for r, k in zip(fn.results, known_results):
        if k and r in is_unknown:
            raise ValueError(f"{fn.name}: a result that must be known depends on an unknown value")
    late = [r for r, k in zip(fn.results, known_results) if not k]
    residuals, seen = [], set()
    for v in [v for ins in unknown_body for v in ins.operands] + late:
        if v not in is_unknown and v not in constants and v not in seen:
            seen.add(v)
            residuals.append(v)
    early = [r for r, k in zip(fn.results, known_results) if k]
    known = Function([p for p, u in zip(fn.params, unknown) if not u],
                     _with_constants(known_body, constants, early + residuals),
                     early + residuals, fn.name + "_known")
    rest = Function(residuals + [p for p, u in zip(fn.params, unknown) if u],
                    _with_constants(unknown_body, constants, late), late, fn.name + "_unknown")
    return dce(known), dce(rest)


def _with_constants(body, constants, results) -> list[Instr]:
    """``body`` preceded by the constant instructions it (or ``results``) reads."""
    used = {v for ins in body for v in ins.operands} | set(results)
    return [ins for v, ins in constants.items() if v in used] + body
