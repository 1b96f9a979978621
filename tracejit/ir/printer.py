"""The text form of the IR: one instruction a line, every value typed.

    func @name(%0: f32[2,3], %1: f32[]~) -> (f32[2,3]) {
      %2: f32[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=()](%1)
      %3: f32[2,3] = mul(%0, %2)
      return (%3)
    }

Values are numbered in order of definition, separately in each Function
(sub-Functions are closed, so their numbering starts again at %0); a value
with a name (``tracejit.name_scope``, ``name=``) prints as that name,
``%hidden1/linear``, made unique within its Function (``%relu_1/max``).
Attributes that hold a sub-Function are printed after the instruction, in a
``{ name = func ... }`` block. ``constant`` leaves out its ``dtype`` and
``weak`` attributes when they repeat its result type. ``parser.parse`` reads
this form back; docs/ir.md gives the grammar.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .dims import Dim
from .names import value_names

#: Function names printed bare after ``@``; any other name is quoted.
NAME_RE = re.compile(r"[A-Za-z0-9_.<>$-]+")


def format_attr(value) -> str:
    """One attribute value (no sub-Functions) in a form the parser reads
    back exactly: floats as ``repr`` (``inf``, ``-inf``, ``nan``, ``-0.0``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, Dim):
        return str(value)
    if isinstance(value, tuple):
        inner = ", ".join(format_attr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def format_name(name: str) -> str:
    return "@" + (name if NAME_RE.fullmatch(name) else repr(name))


def _holds_function(value, function_type) -> bool:
    if isinstance(value, function_type):
        return True
    return isinstance(value, tuple) and any(_holds_function(v, function_type) for v in value)


def constant_attrs_implied(ins) -> bool:
    """Whether a constant's dtype/weak attrs repeat its result type (and so
    are left out of the text)."""
    if ins.prim != "constant" or len(ins.results) != 1 or \
            list(ins.attrs) != ["value", "dtype", "weak"]:
        return False
    t = ins.results[0].type
    return ins.attrs["dtype"] == getattr(t, "dtype", None) and \
        ins.attrs["weak"] == getattr(t, "weak", None)


class _Printer:
    """Builds the lines of a Function and remembers on which line (1-based)
    each instruction starts, so the verifier can point at it.

    ``function_type`` is the class of the Function being printed (that of
    its sub-Functions too): this module does not import tracejit.ir.core,
    which imports it to give Functions their ``str``."""

    def __init__(self, function_type):
        self.function_type = function_type
        self.lines: list[str] = []
        self.line_of: dict[int, int] = {}   # id(Instr) -> line number

    def function(self, fn, indent: str, head: str = ""):
        # %N by position, or %scope/name for a named value (made unique)
        names = {v: n if n.startswith("%") else "%" + n
                 for v, n in value_names(fn, lambda v, i, ins: f"%{i}").items()}

        def ref(v):
            return names.get(v) or f"%<undefined {v.type}>"

        params = ", ".join(f"{ref(p)}: {p.type}" for p in fn.params)
        outs = ", ".join(str(v.type) for v in fn.results)
        self.lines.append(f"{indent}{head}func {format_name(fn.name)}({params}) -> ({outs}) {{")
        for ins in fn.body:
            self.instr(ins, indent + "  ", ref)
        self.lines.append(f"{indent}  return ({', '.join(ref(v) for v in fn.results)})")
        self.lines.append(f"{indent}}}")

    def instr(self, ins, indent: str, ref):
        self.line_of.setdefault(id(ins), len(self.lines) + 1)
        attrs = ins.attrs
        if constant_attrs_implied(ins):
            attrs = {"value": attrs["value"]}
        plain = {k: v for k, v in attrs.items() if not _holds_function(v, self.function_type)}
        regions = {k: v for k, v in attrs.items() if _holds_function(v, self.function_type)}
        results = ", ".join(f"{ref(r)}: {r.type}" for r in ins.results)
        lhs = f"{results} = " if ins.results else ""
        attr_text = ", ".join(f"{k}={format_attr(v)}" for k, v in plain.items())
        head = (f"{indent}{lhs}{ins.prim}" + (f"[{attr_text}]" if plain else "")
                + f"({', '.join(ref(v) for v in ins.operands)})")
        if not regions:
            self.lines.append(head)
            return
        self.lines.append(head + " {")
        for k, v in regions.items():
            self.value(v, indent + "  ", f"{k} = ")
        self.lines.append(f"{indent}}}")

    def value(self, value, indent: str, head: str, tail: str = ""):
        """A region attribute value: a Function, or a tuple holding one,
        printed over several lines."""
        if isinstance(value, self.function_type):
            self.function(value, indent, head)
            self.lines[-1] += tail
        elif _holds_function(value, self.function_type):
            self.lines.append(f"{indent}{head}(")
            for i, v in enumerate(value):
                last = i == len(value) - 1
                self.value(v, indent + "  ", "", "," if len(value) == 1 or not last else "")
            self.lines.append(f"{indent}){tail}")
        else:
            self.lines.append(f"{indent}{head}{format_attr(value)}{tail}")


def format_lines(fn) -> tuple[list[str], dict[int, int]]:
    """The printed lines of Function ``fn`` and a map ``id(instr) -> line
    number`` covering the instructions of its sub-Functions too."""
    p = _Printer(type(fn))
    p.function(fn, "")
    return p.lines, p.line_of


def format_function(fn) -> str:
    return "\n".join(format_lines(fn)[0])
