"""Small helpers for the batching (vmap) rules written next to each primitive.

A batched value carries the batch as its *leading* dimension (the vmap
driver, tracejit/transforms/batching.py, moves a user's ``in_axes`` there
on entry and to ``out_axes`` on exit), so a rule only needs one flag per
operand: ``batched[i]`` is True when operand ``i`` has that extra leading
dimension. Rules bind primitives, so they run eagerly or record into the
active trace, like the differentiation rules (see ad_util.py).
"""
from __future__ import annotations

from .ad_util import aval, p
from ..core import PRIMITIVES


def axis_size(vals, batched) -> int:
    """The batch size: the leading dimension of any batched operand."""
    for v, b in zip(vals, batched):
        if b:
            return aval(v).shape[0]
    raise ValueError("batching rule called with no batched operand")


def bcast(x, size):
    """An unbatched value repeated ``size`` times along a new leading dim."""
    t = aval(x)
    return p("broadcast_in_dim", x, shape=(size,) + t.shape,
             broadcast_dimensions=tuple(range(1, t.ndim + 1)))


def materialize(vals, batched, size=None):
    """Every operand batched (unbatched ones broadcast)."""
    size = axis_size(vals, batched) if size is None else size
    return [v if b else bcast(v, size) for v, b in zip(vals, batched)]


def shift(dims, k=1):
    """Dimension numbers moved past ``k`` new leading dims."""
    return tuple(d + k for d in dims)


def moveaxis(x, src, dst):
    """``x`` with dimension ``src`` moved to position ``dst``."""
    n = aval(x).ndim
    src, dst = src % n, dst % n
    if src == dst:
        return x
    perm = [d for d in range(n) if d != src]
    perm.insert(dst, src)
    return p("transpose", x, permutation=tuple(perm))


def all_batched(prim):
    """The rule of a primitive whose operands and results are all arrays of
    one rank pattern (elementwise ops): broadcast the unbatched operands and
    apply the primitive unchanged."""
    def rule(vals, batched, **attrs):
        outs = PRIMITIVES[prim].bind(*materialize(vals, batched), **attrs)
        return outs, [True] * len(outs)
    return rule


def shifted_axes(prim, *names):
    """The rule of a one-operand primitive whose attributes ``names`` are
    axes (a tuple or an int): the same primitive with those axes moved one
    place right, past the batch dimension."""
    def rule(vals, batched, **attrs):
        for n in names:
            a = attrs[n]
            attrs[n] = shift(a) if isinstance(a, tuple) else a + 1
        outs = PRIMITIVES[prim].bind(*vals, **attrs)
        return outs, [True] * len(outs)
    return rule
