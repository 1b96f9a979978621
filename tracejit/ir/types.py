"""Tensor types of the IR: a shape and a dtype, plus NumPy's promotion rules.

A Python scalar passed to a jitted function or mixed into an expression is
*weakly typed* (as in JAX and NEP 50): it takes the dtype of the arrays it
meets instead of widening them, so ``x_f32 * 0.5`` stays float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from .dims import Dim, parse_dim, product
from .dtypes import TABLE, load_bfloat16

#: Short names used in the text form, in promotion order within each kind
#: (the dtypes and their facts: tracejit/ir/dtypes.py).
SHORT = {name: d.short for name, d in TABLE.items()}
LONG = {v: k for k, v in SHORT.items()}
DTYPES = tuple(SHORT)
FLOATS = tuple(name for name, d in TABLE.items() if d.kind == 2)
INTS = tuple(name for name, d in TABLE.items() if d.kind == 1)


def canonical_dtype(dtype) -> str:
    """The IR name ('float32', ...) of a NumPy dtype, or raise TypeError."""
    if isinstance(dtype, str) and dtype == "bfloat16":
        load_bfloat16()   # registers the name with NumPy
    name = np.dtype(dtype).name
    if name not in SHORT:
        raise TypeError(f"dtype {name} is not supported by tracejit "
                        f"(supported: {', '.join(DTYPES)})")
    return name


def kind(dtype: str) -> int:
    """0 for bool, 1 for integers, 2 for floats."""
    return 0 if dtype == "bool" else 1 if dtype in INTS else 2


@dataclass(frozen=True)
class TensorType:
    shape: tuple
    dtype: str
    weak: bool = False

    def __post_init__(self):
        shape = tuple(d if isinstance(d, Dim) else int(d) for d in self.shape)
        if any(not isinstance(d, Dim) and d < 0 for d in shape):
            raise ShapeError(f"negative dimensions are not allowed: shape {shape}")
        object.__setattr__(self, "shape", shape)
        if self.dtype == "bfloat16":
            load_bfloat16()   # NumPy knows the name from here on (tracejit/ir/dtypes.py)
        if not isinstance(self.weak, (bool, np.bool_)):   # e.g. a parsed attribute weak=b
            raise TypeError(f"weak must be True or False, got {self.weak!r}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self):
        """The element count: an int, or a Dim when a dimension is symbolic."""
        return product(self.shape)

    @property
    def symbolic(self) -> bool:
        return any(isinstance(d, Dim) for d in self.shape)

    def strong(self) -> "TensorType":
        return TensorType(self.shape, self.dtype) if self.weak else self

    def __str__(self):
        dims = ",".join(str(d) for d in self.shape)
        return f"{SHORT[self.dtype]}[{dims}]" + ("~" if self.weak else "")

    @staticmethod
    def of(x) -> "TensorType":
        """The type of a concrete value: Python scalars are weak."""
        if isinstance(x, (bool, np.bool_)) and not isinstance(x, np.ndarray):
            return TensorType((), "bool", weak=isinstance(x, bool))
        if isinstance(x, int):
            return TensorType((), "int64", weak=True)
        if isinstance(x, float) and not isinstance(x, np.generic):   # np.float64 is strong
            return TensorType((), "float64", weak=True)
        x = np.asarray(x)
        return TensorType(x.shape, canonical_dtype(x.dtype))


def result_type(*types: TensorType) -> tuple[str, bool]:
    """NumPy 2 (NEP 50) promotion of operand dtypes: returns (dtype, weak).

    Weak operands only matter when they are of a higher kind than every
    strong operand: an int array times a Python float gives float64.
    """
    strong = [t.dtype for t in types if not t.weak]
    weak = [t.dtype for t in types if t.weak]
    if not strong:
        return max(weak, key=kind), True
    dtype = strong[0]
    for d in strong[1:]:
        dtype = np.promote_types(dtype, d).name
    if weak and kind(max(weak, key=kind)) > kind(dtype):
        w = max(weak, key=kind)
        dtype = "float64" if kind(w) == 2 else "int64"
    return canonical_dtype(dtype), False


def parse_type(text: str) -> TensorType:
    """Inverse of ``str(TensorType)``: 'f32[2,3]', 'f64[]~' or 'f32[b,784]'
    (a name is a symbolic dimension; ``None`` is the batch dimension ``b``)."""
    text = text.strip()
    weak = text.endswith("~")
    if weak:
        text = text[:-1]
    short, _, rest = text.partition("[")
    if short not in LONG or not rest.endswith("]"):
        raise ValueError(f"bad type {text!r}")
    dims = rest[:-1].strip()
    shape = tuple(parse_dim(d) for d in dims.split(",")) if dims else ()
    return TensorType(shape, LONG[short], weak)
