"""All primitives, by family. Importing this package registers them."""
from . import core, elementwise, shape, reduce, linalg, linalg_lapack, conv, random  # noqa: F401
from . import control, fusion  # noqa: F401
from .core import PRIMITIVES, Primitive  # noqa: F401
