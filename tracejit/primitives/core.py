"""The primitive registry.

A primitive is defined once, in the file of its family, as one block: its
shape/dtype rule, its NumPy reference implementation, and next to them its
differentiation rules. Everything user-facing decomposes into primitives at
trace time; backends only need a lowering per primitive.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir.types import TensorType

PRIMITIVES: dict[str, "Primitive"] = {}


class Primitive:
    """One IR operation.

    shape_rule(*in_types, **attrs) -> list[TensorType]
        Raises ``ShapeError`` (tracejit.errors) on operands it cannot take.
    impl(*arrays, **attrs) -> list[np.ndarray]
        The reference semantics; the numpy backend and eager mode run it.
    vjp(cts, primals, outs, **attrs) -> list of cotangents (None = zero)
        Written with tracejit ops so it works eagerly and under tracing;
        ``cts`` may contain None for outputs with no cotangent; an entry
        of the result may be a zero-argument callable, called only when
        that operand needs a cotangent (for expensive transposes).
    jvp(primals, tangents, outs, **attrs) -> list of output tangents
    vjp_fwd(primals, active, **attrs) -> (outs, residuals), optional
        For primitives that need more than their primals and outputs to
        differentiate (scan, cond, custom_vjp_call): reverse mode calls it
        instead of binding the primitive, and then passes ``residuals`` to
        ``vjp`` in place of ``primals``; ``active`` flags the operands that
        need cotangents. See tracejit/transforms/autodiff.py.
    batch(vals, batched, **attrs) -> (outs, out_batched)
        The vmap rule: ``batched[i]`` says whether operand ``i`` carries a
        leading batch dimension; returns the results of the batched
        operation and which of them carry one. See
        tracejit/transforms/batching.py and primitives/batch_util.py.
    kind: 'elementwise', 'shape', 'reduce', 'linalg', 'conv', 'random',
        'control' or 'other'; fusion and backends group by it.
    """

    def __init__(self, name: str, kind: str, shape_rule: Callable, impl: Callable,
                 differentiable: bool = True):
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name} defined twice")
        self.name = name
        self.kind = kind
        self.shape_rule = shape_rule
        self.impl = impl
        self.differentiable = differentiable
        self.vjp = None
        self.jvp = None
        self.vjp_fwd = None
        self.batch = None
        PRIMITIVES[name] = self

    def bind(self, *args, **attrs):
        """Apply the primitive: record it when tracing, run it otherwise.
        Always returns a list of results."""
        from ..tracing import bind
        return bind(self, args, attrs)

    def __call__(self, *args, **attrs):
        """Single-result convenience form of :meth:`bind`."""
        out = self.bind(*args, **attrs)
        return out[0] if len(out) == 1 else out

    def def_vjp(self, rule):
        self.vjp = rule
        return rule

    def def_jvp(self, rule):
        self.jvp = rule
        return rule

    def def_batch(self, rule):
        self.batch = rule
        return rule

    def __repr__(self):
        return f"<primitive {self.name}>"


def out_types(prim: Primitive, in_types, attrs) -> list[TensorType]:
    outs = prim.shape_rule(*in_types, **attrs)
    return list(outs) if isinstance(outs, (list, tuple)) else [outs]


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def np_dtype(t: TensorType):
    return np.dtype(t.dtype)
