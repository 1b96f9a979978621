"""Symbolic dimensions: a size that is known only when the function runs.

``jit(f, input_specs=[ShapeDtypeStruct((None, 784), np.float32)])`` traces
``f`` once with a :class:`Dim` named ``b`` as the first dimension of ``x``;
the IR prints it by name (``f32[b,784]``) and one trace serves every batch
size. A ``Dim`` is a polynomial in the names with integer coefficients, so that
the shape arithmetic of tracing and differentiation works on it: the
element count of a ``[b,28,28]`` array is ``784*b``, a reshape to
``(-1, 784)`` divides it back to ``b`` (exact divisions only), and a
padding computation ``b + k - 1 - (b - 1) - k`` is 0. A comparison is
answered when it holds (or fails) for every size (``b >= 0``); anything
else that needs a concrete size (``int(d)``, ``d < 3``, ``d / 2``) raises
:class:`~tracejit.errors.SymbolicDimensionError`.

A ``Dim`` is never equal to an int, so broadcasting treats it as a size
other than 1: ``[b,4] + [1,4]`` is ``[b,4]``, ``[b] + [3]`` is an error.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import SymbolicDimensionError

#: The name a ``None`` dimension of an input spec gets: every ``None`` is
#: the same (batch) dimension; name dimensions with strings to tell them apart.
BATCH = "b"


def _error(d, what):
    raise SymbolicDimensionError(
        f"dimension {d} is symbolic (its size is known only when the function is called), "
        f"so it cannot be used in {what}; express the computation with shapes instead "
        f"(x.reshape(-1, ...), tracejit.numpy.mean), or call jit without input_specs")


def _as_terms(x):
    """``{factors: coefficient}`` of a Dim or an int (``()`` is the constant)."""
    if isinstance(x, Dim):
        return dict(x.terms)
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return {(): int(x)} if x else {}
    return None


class Dim:
    """A size that is a polynomial in named unknown sizes with integer
    coefficients (see the module doc); ``Dim("b")`` is the size ``b``."""
    __slots__ = ("terms",)

    def __new__(cls, name: str):
        return cls.make({(name,): 1})

    @classmethod
    def make(cls, terms: dict):
        """The Dim of ``{factors: coefficient}``, or an int if it is constant."""
        terms = {tuple(sorted(f)): int(c) for f, c in terms.items() if c}
        if not any(terms):   # no term with a factor: a plain int
            return terms.get((), 0)
        self = object.__new__(cls)
        self.terms = tuple(sorted(terms.items()))
        return self

    def __reduce__(self):
        return (_make_dim, (dict(self.terms),))

    @property
    def name(self):
        """The name of a plain symbolic size (``b``), else None."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and len(self.terms[0][0]) == 1:
            return self.terms[0][0][0]
        return None

    @property
    def names(self) -> set:
        return {n for f, _ in self.terms for n in f}

    def evaluate(self, sizes: dict) -> int:
        """The size when each name has its size in ``sizes``."""
        total = 0
        for factors, coef in self.terms:
            for f in factors:
                coef *= sizes[f]
            total += coef
        return total

    def _minimum(self):
        """A lower bound for every size the names may take (sizes are >= 0),
        or None when a negative coefficient leaves it unknown."""
        if any(c < 0 for f, c in self.terms if f):
            return None
        return dict(self.terms).get((), 0)

    def __eq__(self, other):
        return isinstance(other, Dim) and self.terms == other.terms

    def __hash__(self):
        return hash(("Dim", self.terms))

    # --- arithmetic: exact, or SymbolicDimensionError -------------------------------
    def __add__(self, other):
        o = _as_terms(other)
        if o is None:
            return NotImplemented
        t = dict(self.terms)
        for f, c in o.items():
            t[f] = t.get(f, 0) + c
        return Dim.make(t)

    __radd__ = __add__

    def __neg__(self):
        return Dim.make({f: -c for f, c in self.terms})

    def __sub__(self, other):
        o = _as_terms(other)
        if o is None:
            return NotImplemented
        return self + Dim.make({f: -c for f, c in o.items()})

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        o = _as_terms(other)
        if o is None:
            return NotImplemented
        t = {}
        for f1, c1 in self.terms:
            for f2, c2 in o.items():
                f = tuple(sorted(f1 + f2))
                t[f] = t.get(f, 0) + c1 * c2
        return Dim.make(t)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        """Exact division only: ``784*b // 784`` is ``b``, ``b*n // n`` is ``b``."""
        q = self._divide(other)
        if q is None:
            _error(self, f"a division by {other}")
        return q

    def _divide(self, other):
        if isinstance(other, Dim):   # by a single term: c * names
            if len(other.terms) != 1:
                return None
            (factors, coef), = other.terms
        elif isinstance(other, (int, np.integer)) and other:
            factors, coef = (), int(other)
        else:
            return None
        t = {}
        for f, c in self.terms:
            left = list(f)
            for name in factors:
                if name not in left:
                    return None
                left.remove(name)
            if c % coef:
                return None
            t[tuple(left)] = c // coef
        return Dim.make(t)

    def __rfloordiv__(self, other):
        _error(self, f"a division of {other}")

    def __mod__(self, other):
        """0 when the division is exact (a reshape's divisibility check)."""
        if self._divide(other) is not None:
            return 0
        _error(self, f"a remainder by {other}")

    def __rmod__(self, other):
        _error(self, f"a remainder of {other}")

    def __truediv__(self, other):
        _error(self, f"a division by {other}")

    __rtruediv__ = __truediv__

    def __int__(self):
        _error(self, "int()")

    def __index__(self):
        _error(self, "a place that needs a Python int")

    def __float__(self):
        _error(self, "float()")

    def __bool__(self):
        _error(self, "a truth test")

    # --- comparisons: answered where every size of the names agrees -------------------
    def _compare(self, other, op, what):
        low = self._minimum()
        if isinstance(other, Dim):
            diff = self - other
            if not isinstance(diff, Dim):
                return op(diff, 0)
            return diff._compare(0, op, what)
        if low is not None and isinstance(other, (int, np.integer)):
            # self ranges over [low, inf): answer if op holds or fails for all of them
            if op in (_lt, _le) and not op(low, other):
                return False
            if op in (_gt, _ge) and op(low, other):
                return True
        _error(self, f"a comparison ({what} {other})")

    def __lt__(self, other):
        return self._compare(other, _lt, "<")

    def __le__(self, other):
        return self._compare(other, _le, "<=")

    def __gt__(self, other):
        return self._compare(other, _gt, ">")

    def __ge__(self, other):
        return self._compare(other, _ge, ">=")

    def __str__(self):
        parts = []
        for factors, coef in sorted(self.terms, key=lambda t: (not t[0], t[0])):   # constant last
            body = "*".join(factors)
            if not factors:
                text = str(abs(coef))
            elif abs(coef) == 1:
                text = body
            else:
                text = f"{abs(coef)}*{body}"
            sign = "-" if coef < 0 else "+"
            parts.append(text if not parts and coef > 0 else f"{sign}{text}")
        return "".join(parts)

    def __repr__(self):
        return f"Dim({str(self)!r})"


def _make_dim(terms):
    return Dim.make(terms)


def _lt(a, b):
    return a < b


def _le(a, b):
    return a <= b


def _gt(a, b):
    return a > b


def _ge(a, b):
    return a >= b


def is_symbolic(d) -> bool:
    return isinstance(d, Dim)


def has_symbolic(shape) -> bool:
    return any(isinstance(d, Dim) for d in shape)


_TERM = re.compile(r"\s*([+-]?)\s*([0-9A-Za-z_*\s]+?)\s*(?=[+-]|$)")


def parse_dim(text: str):
    """A dimension of the text form: ``784``, ``b``, ``784*b``, ``b+1``;
    ``None`` is :data:`BATCH`."""
    text = text.strip()
    if text == "None":
        return Dim(BATCH)
    total, pos = 0, 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"bad dimension {text!r}")
        term = 1
        for part in m.group(2).split("*"):
            part = part.strip()
            if part.isdigit():
                term = term * int(part)
            elif part.isidentifier():
                term = term * Dim(part)
            else:
                raise ValueError(f"bad dimension {text!r}")
        total = total - term if m.group(1) == "-" else total + term
        pos = m.end()
    return total


def spec_dim(d):
    """A dimension of an input spec: an int, ``None`` (:data:`BATCH`), a
    name, or a Dim."""
    if d is None:
        return Dim(BATCH)
    if isinstance(d, Dim):
        return d
    if isinstance(d, str):
        if not d.isidentifier():
            raise ValueError(f"a symbolic dimension is named by an identifier, got {d!r}")
        return Dim(d)
    return int(d)


def product(dims):
    """The product of sizes, exact for ints and Dims (``np.prod`` is not)."""
    n = 1
    for d in dims:
        n = d * n if isinstance(d, Dim) else n * int(d)
    return n


def bind_dims(types, shapes, where):
    """``{name: size}`` from the concrete ``shapes`` of arrays of ``types``;
    raises SymbolicDimensionError when one name gets two sizes. ``where(i)``
    names the i-th array in errors."""
    sizes, seen = {}, {}
    for i, (t, shape) in enumerate(zip(types, shapes)):
        for axis, d in enumerate(t.shape):
            if isinstance(d, Dim) and d.name is not None:
                name = d.name
                n = shape[axis]
                if name in sizes and sizes[name] != n:
                    raise SymbolicDimensionError(
                        f"symbolic dimension {name} is {sizes[name]} in {seen[name]} but {n} "
                        f"in {where(i)} (axis {axis}); arrays sharing a dimension name must "
                        f"agree on its size")
                sizes.setdefault(name, n)
                seen.setdefault(name, f"{where(i)} (axis {axis})")
    return sizes


def broadcast_shapes(*shapes):
    """NumPy's broadcasting of shapes that may hold Dims (a Dim is never 1);
    raises ValueError where they do not broadcast, as ``np.broadcast_shapes``."""
    if not any(isinstance(d, Dim) for s in shapes for d in s):
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        size = 1
        for s in shapes:
            d = s[axis - ndim + len(s)] if axis - ndim + len(s) >= 0 else 1
            if isinstance(d, int) and d == 1:
                continue
            if isinstance(size, int) and size == 1:
                size = d
            elif not (d == size):
                raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(size)
    return tuple(out)
