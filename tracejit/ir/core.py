"""SSA values, instructions and functions: the whole IR data model.

A :class:`Function` is closed: its body only refers to its own parameters
and to values defined earlier in its body. Structured control flow (cond,
while, scan) is an ordinary instruction whose attributes hold sub-Functions,
which are closed too (everything they use is passed in as an operand).
"""
from __future__ import annotations

from .primitive import PRIMITIVES, PrimitiveDef
from .printer import format_function
from .types import TensorType


class Var:
    """An SSA value. Identity is the object; names are given when printing.

    ``src`` is the user's ``file:line`` that created the value (for errors);
    ``name`` its scoped name (``"hidden1/linear"``, see tracejit/naming.py)
    or None (printed ``%N``).
    """
    __slots__ = ("type", "src", "name")

    def __init__(self, type: TensorType, src: str | None = None, name: str | None = None):
        self.type = type
        self.src = src
        self.name = name

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    def __repr__(self):
        return f"Var({self.type})"


class Instr:
    """``results = prim[attrs](operands)``; attrs are hashable Python values
    (ints, floats, bools, strings, None, nested tuples) or sub-Functions."""
    __slots__ = ("prim", "operands", "attrs", "results")

    def __init__(self, prim: str, operands, attrs, results):
        self.prim = prim
        self.operands = list(operands)
        self.attrs = dict(attrs)
        self.results = list(results)

    @property
    def primitive(self) -> PrimitiveDef:
        """The registered primitive this instruction applies (its facts and
        rules); KeyError for a name no primitive has."""
        return PRIMITIVES[self.prim]

    def subfunctions(self):
        return {k: v for k, v in self.attrs.items() if isinstance(v, Function)}

    def __repr__(self):
        return f"Instr({self.prim}, {len(self.operands)} in, {len(self.results)} out)"


class Function:
    def __init__(self, params, body, results, name: str = "f"):
        self.params = list(params)
        self.body = list(body)
        self.results = list(results)
        self.name = name

    @property
    def in_types(self):
        return [v.type for v in self.params]

    @property
    def out_types(self):
        return [v.type for v in self.results]

    def __str__(self):
        return format_function(self)

    def __repr__(self):
        return f"<Function @{self.name}: {len(self.body)} instructions>"

    def num_instructions(self, recursive: bool = True) -> int:
        n = 0
        for ins in self.body:
            n += 1
            if recursive:
                n += sum(f.num_instructions() for f in ins.subfunctions().values())
        return n
