"""The IR: typed SSA values, instructions, Functions, their text form."""
from .core import Function, Instr, Var  # noqa: F401
from .parser import parse  # noqa: F401
from .printer import format_function  # noqa: F401
from .types import TensorType, parse_type, result_type  # noqa: F401
from .verifier import verify  # noqa: F401
