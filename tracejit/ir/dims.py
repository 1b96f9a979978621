"""Symbolic dimensions: a size that is known only when the function runs.

``jit(f, input_specs=[ShapeDtypeStruct((None, 784), np.float32)])`` traces
``f`` once with a :class:`Dim` named ``b`` as the first dimension of ``x``;
the IR prints it by name (``f32[b,784]``) and one trace serves every batch
size. A ``Dim`` is a monomial ``coefficient * name * name ...`` so that the
shape arithmetic tracing needs works on it: the element count of a
``[b,28,28]`` array is ``784*b``, and a reshape to ``(-1, 784)`` divides it
back to ``b``. Anything else a concrete size is needed for (``int(d)``,
``d < 3``, ``d + 1``) raises :class:`~tracejit.errors.SymbolicDimensionError`.

A ``Dim`` is never equal to an int, so broadcasting treats it as a size
other than 1: ``[b,4] + [1,4]`` is ``[b,4]``, ``[b] + [3]`` is an error.
"""
from __future__ import annotations

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


class Dim:
    """``coef * product of factors``; an unknown size (see the module doc)."""
    __slots__ = ("coef", "factors")

    def __new__(cls, name=None, coef=1, factors=None):
        if factors is None:
            factors = (name,)
        factors = tuple(sorted(factors))
        if not factors or coef == 0:
            return int(coef)
        self = object.__new__(cls)
        self.coef = int(coef)
        self.factors = factors
        return self

    def __reduce__(self):
        return (Dim, (None, self.coef, self.factors))

    @property
    def names(self):
        return set(self.factors)

    def evaluate(self, sizes: dict) -> int:
        """The size when each factor's name has its size in ``sizes``."""
        n = self.coef
        for f in self.factors:
            n *= sizes[f]
        return n

    def __eq__(self, other):
        return isinstance(other, Dim) and (self.coef, self.factors) == (other.coef, other.factors)

    def __hash__(self):
        return hash(("Dim", self.coef, self.factors))

    def __mul__(self, other):
        if isinstance(other, Dim):
            return Dim(None, self.coef * other.coef, self.factors + other.factors)
        if isinstance(other, int) or hasattr(other, "__index__"):
            return Dim(None, self.coef * int(other), self.factors)
        return NotImplemented

    __rmul__ = __mul__

    def __floordiv__(self, other):
        """Exact division only: ``784*b // 784`` is ``b``."""
        if isinstance(other, Dim):
            left = list(self.factors)
            for f in other.factors:
                if f not in left:
                    _error(self, f"a division by {other}")
                left.remove(f)
            if self.coef % other.coef:
                _error(self, f"a division by {other}")
            return Dim(None, self.coef // other.coef, left)
        if isinstance(other, int) or hasattr(other, "__index__"):
            other = int(other)
            if other == 0 or self.coef % other:
                _error(self, f"a division by {other}")
            return Dim(None, self.coef // other, self.factors)
        return NotImplemented

    def __rfloordiv__(self, other):
        _error(self, "a division")

    def __mod__(self, other):
        """0 when the division is exact (a reshape's divisibility check)."""
        if isinstance(other, int) and other != 0 and self.coef % other == 0:
            return 0
        if isinstance(other, Dim):
            try:
                self // other
                return 0
            except SymbolicDimensionError:
                pass
        _error(self, f"a remainder by {other}")

    def __rmod__(self, other):
        _error(self, f"a remainder of {other}")

    def __add__(self, other):
        if isinstance(other, Dim) and other.factors == self.factors:
            return Dim(None, self.coef + other.coef, self.factors)
        if isinstance(other, int) and other == 0:
            return self
        _error(self, f"a sum with {other}")

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        if isinstance(other, Dim) and other.factors == self.factors:
            return Dim(None, self.coef - other.coef, self.factors)
        _error(self, f"a difference with {other}")

    def __rsub__(self, other):
        _error(self, f"a difference with {other}")

    def __neg__(self):
        _error(self, "a negation")

    def __int__(self):
        _error(self, "int()")

    def __index__(self):
        _error(self, "a place that needs a Python int")

    def __float__(self):
        _error(self, "float()")

    def __bool__(self):
        _error(self, "a truth test")

    # A size is never negative: comparisons that hold for every size answer.
    def __lt__(self, other):
        if isinstance(other, int) and other <= 0:
            return False
        _error(self, f"a comparison with {other}")

    def __ge__(self, other):
        if isinstance(other, int) and other <= 0:
            return True
        _error(self, f"a comparison with {other}")

    def __le__(self, other):
        if isinstance(other, int) and other < 0:
            return False
        _error(self, f"a comparison with {other}")

    def __gt__(self, other):
        if isinstance(other, int) and other < 0:
            return True
        _error(self, f"a comparison with {other}")

    def __str__(self):
        names = "*".join(self.factors)
        return names if self.coef == 1 else f"{self.coef}*{names}"

    def __repr__(self):
        return f"Dim({str(self)!r})"


def is_symbolic(d) -> bool:
    return isinstance(d, Dim)


def has_symbolic(shape) -> bool:
    return any(isinstance(d, Dim) for d in shape)


def parse_dim(text: str):
    """A dimension of the text form: ``784``, ``b``, ``784*b``; ``None`` is
    :data:`BATCH`."""
    text = text.strip()
    if text == "None":
        return Dim(BATCH)
    coef, factors = 1, []
    for part in text.split("*"):
        part = part.strip()
        if part.isdigit():
            coef *= int(part)
        elif part.isidentifier():
            factors.append(part)
        else:
            raise ValueError(f"bad dimension {text!r}")
    return Dim(None, coef, factors) if factors else coef


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
            if isinstance(d, Dim) and d.coef == 1 and len(d.factors) == 1:
                name = d.factors[0]
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
