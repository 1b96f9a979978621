"""tracejit: trace Python array functions, differentiate, fuse and compile them.

    import tracejit
    import tracejit.numpy as tnp

    @tracejit.jit
    def step(params, x, y): ...
"""
from . import primitives  # noqa: F401  (registers every primitive)
from .api import jit, make_ir, JitFunction
from .device import device_put, devices, Array
from .errors import (TracejitError, ShapeError, DTypeError, ArgumentTypeError,
                     TracerBoolConversionError, ConcretizationError,
                     UnexpectedTracerError, NonDifferentiableError)
from .tree import (tree_flatten, tree_unflatten, tree_map, tree_leaves,
                   register_pytree_node, register_dataclass)
from . import numpy, lax, ir  # noqa: F401
from . import random  # noqa: F401
from .transforms.autodiff import vjp, jvp, grad, value_and_grad
from .transforms.custom_derivatives import stop_gradient, custom_vjp, custom_jvp
from .transforms.batching import vmap
from .transforms.jacobians import jacfwd, jacrev, hessian, linearize
from .abstract import eval_shape, ShapeDtypeStruct
from .transforms.checkpoint import checkpoint, remat
from .control import cond, while_loop, fori_loop, scan
from . import nn, optim  # noqa: F401  (after the API they build on)
from . import data, train  # noqa: F401  (after nn and optim, which train uses)
from . import testing  # noqa: F401  (gradient checks; numpy only, ~2 ms)
from .memory import memory_estimate

__version__ = "0.1.0"

__all__ = ["jit", "make_ir", "JitFunction", "device_put", "devices", "Array",
           "numpy", "lax", "ir", "random",
           "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves",
           "register_pytree_node", "register_dataclass",
           "TracejitError", "ShapeError", "DTypeError", "ArgumentTypeError",
           "TracerBoolConversionError", "ConcretizationError",
           "UnexpectedTracerError", "NonDifferentiableError",
           "vjp", "jvp", "grad", "value_and_grad", "stop_gradient", "custom_vjp", "custom_jvp", "vmap",
           "jacfwd", "jacrev", "hessian", "linearize", "eval_shape", "ShapeDtypeStruct",
           "checkpoint", "remat",
           "cond", "while_loop", "fori_loop", "scan", "nn", "optim", "data", "train",
           "memory_estimate"]
