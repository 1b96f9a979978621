"""What the IR knows about each operation: the primitive registry.

An instruction names its primitive (``Instr.prim``); ``Instr.primitive`` is
the :class:`PrimitiveDef` registered under that name. A primitive's facts
(is it elementwise, a reduction, expensive, commutative, an index op?) are
declared once, where the primitive is defined (tracejit/primitives/), and
passes ask them here instead of keeping their own lists of names.

Binding a primitive (recording it into a trace, or running it eagerly) is
tracing's business: :class:`tracejit.core.Primitive` adds it. This module
only holds what the IR itself (the verifier, the passes) needs.
"""
from __future__ import annotations

from typing import Callable

from .types import TensorType

#: name -> primitive, filled as the family modules of tracejit/primitives load.
PRIMITIVES: dict[str, "PrimitiveDef"] = {}

KINDS = ("elementwise", "shape", "reduce", "linalg", "conv", "random", "control", "other")


class PrimitiveDef:
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
        need cotangents. See tracejit/primitives/ad_interpreter.py.
    batch(vals, batched, **attrs) -> (outs, out_batched)
        The vmap rule: ``batched[i]`` says whether operand ``i`` carries a
        leading batch dimension; returns the results of the batched
        operation and which of them carry one. See
        tracejit/transforms/batching.py and primitives/batch_util.py.
    kind: one of :data:`KINDS`; fusion and backends group by it.

    Facts, declared as keyword arguments where the primitive is defined:

    reduction
        Reduces the operand over ``axes`` (a kernel's reduction phase).
    index_op
        Computable at any index from its operands read at derived indices
        (a gather-like view: broadcast, reshape, slice, pad, ...), so fusion
        can fold it into a kernel's index arithmetic.
    expensive
        Costly enough per element that a kernel computes it once and stores
        it rather than recomputing it at several indices.
    commutative
        ``f(a, b) == f(b, a)`` exactly in IEEE arithmetic (max and min are
        not: which zero ``max(-0.0, 0.0)`` returns depends on the order);
        simplification orders the operands so that common-subexpression
        elimination sees both spellings as one.
    """

    def __init__(self, name: str, kind: str, shape_rule: Callable, impl: Callable,
                 differentiable: bool = True, *, reduction: bool = False,
                 index_op: bool = False, expensive: bool = False, commutative: bool = False):
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name} defined twice")
        if kind not in KINDS:
            raise ValueError(f"primitive {name}: unknown kind {kind!r}")
        self.name = name
        self.kind = kind
        self.shape_rule = shape_rule
        self.impl = impl
        self.differentiable = differentiable
        self.reduction = reduction
        self.index_op = index_op
        self.expensive = expensive
        self.commutative = commutative
        self.vjp = None
        self.jvp = None
        self.vjp_fwd = None
        self.batch = None
        PRIMITIVES[name] = self

    @property
    def elementwise(self) -> bool:
        """Computes each output element from the operand elements at the
        same index (operands broadcast to the output's shape)."""
        return self.kind == "elementwise"

    @property
    def fusible(self) -> bool:
        """Can be part of a fused kernel: elementwise, an index op or a reduction."""
        return self.elementwise or self.index_op or self.reduction

    def out_types(self, in_types, attrs) -> list[TensorType]:
        """The result types for operands of ``in_types`` (the shape rule,
        always as a list)."""
        outs = self.shape_rule(*in_types, **attrs)
        return list(outs) if isinstance(outs, (list, tuple)) else [outs]

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

