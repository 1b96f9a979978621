"""Checks the rules every IR Function must keep, so that a broken transform
fails loudly where it broke the program instead of in a backend later:

- every operand is defined before it is used, in the same Function
  (sub-Functions are closed: they see only their own parameters);
- every value is defined once (as a parameter or as one result);
- every primitive is registered, and its results have exactly the types
  its shape rule gives for the operand types and attributes;
- attributes are hashable values (ints, symbolic sizes, floats, bools, strings, None,
  nested tuples) or sub-Functions, which are verified in turn;
- every returned value is defined.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import IRVerifyError, TracejitError
from .core import Function, Var
from .dims import Dim
from .primitive import PRIMITIVES
from .printer import format_lines
from . import dtypes
from .types import FLOATS, SHORT, TensorType


def verify(fn: Function) -> None:
    """Return None if ``fn`` is well formed, else raise ``IRVerifyError``
    listing each problem with its line in ``str(fn)``."""
    try:
        lines, line_of = format_lines(fn)
    except Exception:   # a value with a malformed type cannot be printed
        lines, line_of = [], {}
    problems: list[str] = []
    _Checker(problems, lines, line_of).function(fn, f"@{fn.name}")
    if problems:
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise IRVerifyError(f"IR verification of @{fn.name} failed "
                            f"({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
                            + "\n".join(shown) + more)


def _type_problem(t) -> str | None:
    if not isinstance(t, TensorType):
        return f"has type {t!r}, not a TensorType"
    if t.dtype not in SHORT:
        return f"has unknown dtype {t.dtype!r}"
    if any(d < 0 for d in t.shape):
        return f"has a negative dimension in shape {t.shape}"
    return None


def _attr_problem(value) -> str | None:
    if value is None or isinstance(value, (bool, int, float, str, Function, Dim)):
        return None
    if isinstance(value, tuple):
        for v in value:
            p = _attr_problem(v)
            if p:
                return p
        return None
    hint = "; use a tuple" if isinstance(value, list) else ""
    return f"is a {type(value).__name__} ({value!r}){hint}"


def _sub_functions(value, path):
    if isinstance(value, Function):
        yield path, value
    elif isinstance(value, tuple):
        for i, v in enumerate(value):
            yield from _sub_functions(v, f"{path}[{i}]")


class _Checker:
    def __init__(self, problems, lines, line_of):
        self.problems = problems
        self.lines = lines
        self.line_of = line_of

    def where(self, ins, fn_path) -> str:
        line = self.line_of.get(id(ins))
        if line is None:
            return f"{fn_path}, {ins.prim}"
        return f"{fn_path}, line {line}: {self.lines[line - 1].strip()}"

    def function(self, fn: Function, path: str):
        defined: dict[Var, str] = {}

        def define(v, what, where):
            if not isinstance(v, Var):
                self.problems.append(f"  {where}\n    {what} is a {type(v).__name__}, not a Var")
                return
            if v in defined:
                self.problems.append(f"  {where}\n    {what} is already defined "
                                     f"({defined[v]}); each value is defined once")
            else:
                defined[v] = what
            p = _type_problem(v.type)
            if p:
                self.problems.append(f"  {where}\n    {what} {p}")

        for i, p in enumerate(fn.params):
            define(p, f"parameter {i}", f"{path}, parameters")

        for ins in fn.body:
            where = self.where(ins, path)
            problems_before = len(self.problems)
            for i, v in enumerate(ins.operands):
                if not isinstance(v, Var):
                    self.problems.append(f"  {where}\n    operand {i} is a "
                                         f"{type(v).__name__}, not a Var")
                elif v not in defined:
                    definer = next((d for d in fn.body if v in d.results), None)
                    line = self.line_of.get(id(definer))
                    why = ("is not defined in this function (sub-functions are closed: "
                           "pass outer values in as operands)" if definer is None else
                           "is used before its definition" + (f" on line {line}" if line else ""))
                    self.problems.append(f"  {where}\n    operand {i} ({v.type}) {why}")
            for key, value in ins.attrs.items():
                p = _attr_problem(value)
                if p:
                    self.problems.append(f"  {where}\n    attribute {key} {p}; attributes "
                                         f"are ints, floats, bools, strings, None, tuples "
                                         f"or Functions")
                for sub_path, sub in _sub_functions(value, key):
                    self.function(sub, f"{path} > {ins.prim} {sub_path} @{sub.name}")
            prim = PRIMITIVES.get(ins.prim)
            if prim is None:
                self.problems.append(f"  {where}\n    unknown primitive {ins.prim!r}")
            elif len(self.problems) == problems_before and \
                    all(isinstance(r, Var) for r in ins.results):
                self.check_types(ins, prim, where)
            for i, r in enumerate(ins.results):
                define(r, f"result {i}", where)

        for i, v in enumerate(fn.results):
            if not isinstance(v, Var) or v not in defined:
                self.problems.append(f"  {path}, return\n    returned value {i} "
                                     f"({getattr(v, 'type', v)}) is not defined in this function")

    def check_types(self, ins, prim, where):
        in_types = [v.type for v in ins.operands]
        try:
            inspect.signature(prim.shape_rule).bind(*in_types, **ins.attrs)
        except TypeError as e:
            self.problems.append(f"  {where}\n    {ins.prim} does not take {len(in_types)} "
                                 f"operand(s) and attributes ({', '.join(ins.attrs)}): {e}")
            return
        try:
            want = prim.out_types(in_types, ins.attrs)
        except TracejitError as e:
            self.problems.append(f"  {where}\n    the shape rule rejects the operands: {e.detail}")
            return
        except Exception as e:   # a rule that crashed on malformed attrs
            self.problems.append(f"  {where}\n    the shape rule failed: "
                                 f"{type(e).__name__}: {e}")
            return
        got = [r.type for r in ins.results]
        if len(got) != len(want):
            self.problems.append(f"  {where}\n    {ins.prim} gives {len(want)} result(s), "
                                 f"the instruction has {len(got)}")
            return
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                self.problems.append(f"  {where}\n    result {i} has type {g} but "
                                     f"{ins.prim}'s shape rule gives {w}")
        if ins.prim == "constant":
            self.check_constant(ins, where)

    def check_constant(self, ins, where):
        value, dtype = ins.attrs["value"], ins.attrs["dtype"]
        if dtype == "bool":
            kinds = (bool, np.bool_)
        elif dtype == "bfloat16":
            kinds = (float, np.floating, dtypes.bfloat16)
        else:
            kinds = (float, np.floating) if dtype in FLOATS else (int, np.integer)
        if not isinstance(value, kinds) or (dtype != "bool" and isinstance(value, bool)):
            self.problems.append(f"  {where}\n    constant value {value!r} "
                                 f"({type(value).__name__}) does not fit dtype {dtype}")
