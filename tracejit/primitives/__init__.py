"""All primitives, by family. Importing this package registers them."""
from ..core import PRIMITIVES, Primitive  # noqa: F401
from . import control, conv, elementwise, fusion, linalg, linalg_lapack, random, reduce, shape  # noqa: F401
