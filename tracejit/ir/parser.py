"""Reads the text form of the IR (see printer.py and docs/ir.md) back into a
:class:`Function`: ``str(parse(str(f))) == str(f)`` for every Function.

The parser checks the syntax and that every value is defined once before
it is used; types against primitives' shape rules are the verifier's job
(``tracejit.ir.verify``).
"""
from __future__ import annotations

import ast
import re

from ..errors import IRParseError
from .core import Function, Instr, Var
from .dims import Dim
from .names import NAME_RE
from .types import LONG, TensorType

_TOKEN_RE = re.compile(r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<arrow>->)
  | (?P<float>-?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+|-inf\b)
  | (?P<int>-?\d+)
  | (?P<undefined>%<)
  | (?P<value>%[A-Za-z0-9_.][A-Za-z0-9_./-]*)
  | (?P<fname>@(?:[A-Za-z0-9_.<>$-]+|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()\[\]{},=:~*+-])
""", re.VERBOSE)

_KEYWORD_VALUES = {"True": True, "False": False, "None": None,
                   "inf": float("inf"), "nan": float("nan")}


class _Token:
    __slots__ = ("kind", "text", "line", "col")

    def __init__(self, kind, text, line, col):
        self.kind, self.text, self.line, self.col = kind, text, line, col

    def describe(self) -> str:
        return "end of input" if self.kind == "eof" else repr(self.text)


def _tokenize(text: str, source_lines) -> list[_Token]:
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        col = pos - line_start + 1
        if m is None:
            raise _error(source_lines, line, col, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind == "undefined":
            raise _error(source_lines, line, col,
                         "'%<undefined ...>' marks a value that was never defined: the "
                         "printed Function was not valid (tracejit.ir.verify says why)")
        if kind == "newline":
            line, line_start = line + 1, m.end()
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, m.group(), line, col))
        pos = m.end()
    tokens.append(_Token("eof", "", line, pos - line_start + 1))
    return tokens


def _error(source_lines, line, col, message) -> IRParseError:
    text = source_lines[line - 1] if 0 < line <= len(source_lines) else ""
    return IRParseError(f"line {line}, column {col}: {message}\n    {text}\n    {' ' * (col - 1)}^")


class _Parser:
    def __init__(self, text: str):
        self.source_lines = text.split("\n")
        self.tokens = _tokenize(text, self.source_lines)
        self.pos = 0

    # --- token helpers -------------------------------------------------------
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def next(self) -> _Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok.text == text and tok.kind in ("punct", "ident", "arrow")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.pos += 1
            return True
        return False

    def expect(self, text: str, what: str | None = None) -> _Token:
        if not self.at(text):
            self.fail(f"expected {what or repr(text)}")
        return self.next()

    def expect_kind(self, kind: str, what: str) -> _Token:
        if self.peek().kind != kind:
            self.fail(f"expected {what}")
        return self.next()

    def fail(self, message: str, tok: _Token | None = None):
        """Raise at ``tok``; a missing token is reported just after the
        previous one when the next token is on a later line."""
        missing = tok is None
        tok = tok or self.peek()
        line, col = tok.line, tok.col
        if message.startswith("expected"):
            message += f", found {tok.describe()}"
            prev = self.tokens[self.pos - 1] if self.pos else None
            if missing and prev is not None and prev.line < tok.line:
                line, col = prev.line, prev.col + len(prev.text)
        raise _error(self.source_lines, line, col, message)

    def comma_list(self, close: str, item, what: str) -> list:
        """``item (',' item)* close``, or just ``close``."""
        items = []
        if self.accept(close):
            return items
        while True:
            items.append(item())
            if self.accept(close):
                return items
            self.expect(",", f"',' or '{close}' after {what}")

    # --- grammar ------------------------------------------------------------
    def function(self) -> Function:
        self.expect("func", "'func'")
        tok = self.expect_kind("fname", "a function name such as @f")
        name = tok.text[1:]
        if name[0] in "'\"":
            name = ast.literal_eval(name)
        scope: dict[str, tuple[Var, int]] = {}
        self.expect("(", "'(' before the parameters")
        params = self.comma_list(")", lambda: self.definition(scope), "a parameter")
        self.expect("->", "'->' before the result types")
        self.expect("(", "'(' before the result types")
        out_types = self.comma_list(")", self.type, "a result type")
        self.expect("{", "'{' to open the function body")
        body = []
        while not self.at("return"):
            body.append(self.instr(scope))
        self.next()
        self.expect("(", "'(' after return")
        ret_tok = self.peek()
        results = self.comma_list(")", lambda: self.use(scope), "a returned value")
        self.expect("}", "'}' to close the function body")
        if [v.type for v in results] != out_types:
            self.fail(f"return types ({', '.join(str(v.type) for v in results)}) differ from "
                      f"the declared result types ({', '.join(map(str, out_types))})", ret_tok)
        return Function(params, body, results, name)

    def definition(self, scope) -> Var:
        tok = self.expect_kind("value", "a value name such as %0")
        self.expect(":", f"':' and a type after {tok.text}")
        var = Var(self.type(), name=self.own_name(tok))
        if tok.text in scope:
            self.fail(f"{tok.text} is defined twice (first on line {scope[tok.text][1]})", tok)
        scope[tok.text] = (var, tok.line)
        return var

    def own_name(self, tok) -> str | None:
        """The value's name: None for ``%3``, ``"hidden1/linear"`` for
        ``%hidden1/linear``."""
        text = tok.text[1:]
        if text.isdigit():
            return None
        if not NAME_RE.fullmatch(text):
            self.fail(f"{tok.text} is not a valid value name (%N, or a scoped name such as "
                      f"%hidden1/linear)", tok)
        return text

    def use(self, scope) -> Var:
        tok = self.expect_kind("value", "a value name such as %0")
        if tok.text not in scope:
            self.fail(f"{tok.text} is used before it is defined (sub-functions are closed: "
                      f"they see only their own parameters)", tok)
        return scope[tok.text][0]

    def type(self) -> TensorType:
        tok = self.expect_kind("ident", "a type such as f32[2,3]")
        if tok.text not in LONG:
            self.fail(f"unknown dtype {tok.text!r} (known: {', '.join(LONG)})", tok)
        self.expect("[", f"'[' and the shape after {tok.text}")
        dims = self.comma_list("]", self.dim, "a dimension")
        return TensorType(tuple(dims), LONG[tok.text], self.accept("~"))

    def dim(self):
        """A dimension: ``784``, or a symbolic size: ``b``, ``784*b``, ``b+1``."""
        total = self.dim_term()
        while True:
            if self.accept("+"):
                total = total + self.dim_term()
            elif self.accept("-"):
                total = total - self.dim_term()
            elif self.peek().kind == "int" and self.peek().text.startswith("-"):
                total = total - self.dim_term(negated=True)   # b-1 reads as b, -1
            else:
                return total

    def dim_term(self, negated=False):
        term = 1
        while True:
            tok = self.peek()
            if tok.kind == "ident":
                term = term * Dim(self.next().text)
            elif negated:
                term = term * -int(self.next().text)
                negated = False
            else:
                term = term * self.int_token("a dimension")
            if not self.accept("*"):
                return term

    def int_token(self, what: str) -> int:
        tok = self.expect_kind("int", what)
        if int(tok.text) < 0:
            self.fail(f"{what} must not be negative", tok)
        return int(tok.text)

    def instr(self, scope) -> Instr:
        start = self.peek()
        results = []
        if start.kind == "value":
            results = self.comma_list_until("=", self.type_decl)
        prim_tok = self.expect_kind("ident", "a primitive name or 'return'")
        attrs = {}
        if self.accept("["):
            for key, tok, value in self.comma_list("]", self.attr, "an attribute"):
                self.add_attr(attrs, key, tok, value)
        self.expect("(", f"'(' and the operands of {prim_tok.text}")
        operands = self.comma_list(")", lambda: self.use(scope), "an operand")
        if self.accept("{"):
            while not self.accept("}"):
                key, tok, value = self.attr()
                self.add_attr(attrs, key, tok, value)
        result_vars = []
        for tok, t in results:
            if tok.text in scope:
                self.fail(f"{tok.text} is defined twice (first on line {scope[tok.text][1]})", tok)
            var = Var(t, name=self.own_name(tok))
            scope[tok.text] = (var, tok.line)
            result_vars.append(var)
        if prim_tok.text == "constant" and len(result_vars) == 1 and list(attrs) == ["value"]:
            t = result_vars[0].type
            attrs.update(dtype=t.dtype, weak=t.weak)
        return Instr(prim_tok.text, operands, attrs, result_vars)

    def comma_list_until(self, end: str, item) -> list:
        items = [item()]
        while not self.accept(end):
            self.expect(",", f"',' or '{end}' after a result")
            items.append(item())
        return items

    def type_decl(self) -> tuple[_Token, TensorType]:
        tok = self.expect_kind("value", "a value name such as %0")
        self.expect(":", f"':' and a type after {tok.text}")
        return tok, self.type()

    def attr(self):
        tok = self.expect_kind("ident", "an attribute name")
        self.expect("=", f"'=' after attribute {tok.text}")
        return tok.text, tok, self.value()

    def add_attr(self, attrs, key, tok, value):
        if key in attrs:
            self.fail(f"attribute {key} is given twice", tok)
        attrs[key] = value

    def value(self):
        tok = self.peek()
        if tok.kind == "int" and self.tokens[self.pos + 1].text == "*":
            return self.dim()   # a symbolic size: 784*b
        if tok.kind == "int":
            return int(self.next().text)
        if tok.kind == "ident" and tok.text not in _KEYWORD_VALUES and tok.text != "func":
            return self.dim()   # a symbolic size: b
        if tok.kind == "float":
            return float(self.next().text)
        if tok.kind == "string":
            return ast.literal_eval(self.next().text)
        if tok.kind == "ident" and tok.text in _KEYWORD_VALUES:
            return _KEYWORD_VALUES[self.next().text]
        if self.at("func"):
            return self.function()
        if self.accept("("):
            items = []
            while not self.accept(")"):
                items.append(self.value())
                if self.accept(")"):
                    if len(items) == 1:
                        self.fail("a one-element tuple needs a trailing comma, as in (3,)",
                                  self.tokens[self.pos - 1])
                    break
                self.expect(",", "',' or ')' in a tuple")
            return tuple(items)
        self.fail("expected an attribute value (a number, string, True, False, None, "
                  "inf, nan, a tuple or a func)")


def parse(text: str) -> Function:
    """The Function whose text form is ``text`` (one ``func``, as printed by
    ``str(fn)``). Raises ``tracejit.errors.IRParseError`` naming the line."""
    p = _Parser(text)
    fn = p.function()
    if p.peek().kind != "eof":
        p.fail("expected end of input after the function", p.peek())
    return fn
