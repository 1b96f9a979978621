"""tracejit: trace Python array functions, differentiate, fuse and compile them.

    import tracejit
    import tracejit.numpy as tnp

    @tracejit.jit
    def step(params, x, y): ...
"""
from . import primitives  # noqa: F401  (registers every primitive)
from . import data, ir, lax, nn, numpy, optim, random, testing, train  # noqa: F401
from .abstract import ShapeDtypeStruct, eval_shape
from .api import JitFunction, jit, make_ir
from .control import cond, fori_loop, scan, subfunction, while_loop
from .device import Array, device_put, devices
from .errors import (ArgumentTypeError, ConcretizationError, DTypeError, NonDifferentiableError,
                     ShapeError, TracejitError, TracerBoolConversionError, UnexpectedTracerError)
from .memory import memory_estimate
from .naming import name_scope
from .transforms.autodiff import grad, jvp, value_and_grad, vjp
from .transforms.batching import vmap
from .transforms import checkpoint_policies
from .transforms.checkpoint import checkpoint, remat
from .transforms.custom_derivatives import custom_jvp, custom_vjp, stop_gradient
from .transforms.jacobians import hessian, jacfwd, jacrev, linearize
from .tree import (register_dataclass, register_pytree_node, tree_flatten, tree_leaves,
                   tree_map, tree_unflatten)

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
           "checkpoint", "remat", "checkpoint_policies",
           "cond", "while_loop", "fori_loop", "scan", "subfunction", "nn", "optim", "data", "train",
           "memory_estimate", "name_scope"]
