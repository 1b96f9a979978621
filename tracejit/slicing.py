"""``dynamic_slice`` and ``dynamic_update_slice``: slices whose start
indices are traced values, as ``jax.lax``'s, built from existing primitives
(so every backend, autodiff and vmap already handle them):

- ``dynamic_slice``: per dimension with a traced start, a ``gather`` of
  ``start + iota(size)`` (a static start is a ``slice``);
- ``dynamic_update_slice``: the update ``gather``-ed into the operand's
  shape (index ``j - start``, clamped) and ``select``-ed into the window.

Starts are clamped as XLA clamps them: into ``[0, n - size]``, so the
window always lies inside the operand (a start past the end moves the
window back; a negative start is 0). Sizes are static Python ints.
Differentiable (gather's transpose is scatter_add, select's is select) and
batchable like the primitives they are made of.
"""
from __future__ import annotations

import numpy as np

from .errors import ConcretizationError, ShapeError
from .ir.types import INTS
from .primitives.ad_util import aval, p
from .core import Tracer


def _array(x):
    return x if isinstance(x, Tracer) else np.asarray(x)


def _static(s):
    """A start index known now (a Python or NumPy integer), or None."""
    if isinstance(s, Tracer):
        return None
    a = np.asarray(s)
    if a.shape != () or a.dtype.kind not in "iu":
        raise ShapeError(f"a start index must be an integer scalar, got {a.dtype}{list(a.shape)}")
    return int(a)


def _traced_start(s, n, size):
    """``clip(s, 0, n - size)`` as an int64 scalar value."""
    t = aval(s)
    if t.shape != () or t.dtype not in INTS:
        raise ShapeError(f"a start index must be an integer scalar, got {t}")
    s = p("convert", s, dtype="int64")
    s = p("max", s, np.zeros((), np.int64))
    return p("min", s, np.asarray(n - size, np.int64))


def _start(s, n, size):
    st = _static(s)
    if st is not None:
        return min(max(st, 0), n - size)
    return _traced_start(s, n, size)


def _check(x, starts, sizes, what):
    shape = aval(x).shape
    if len(starts) != len(shape) or len(sizes) != len(shape):
        raise ShapeError(f"{what}: {len(starts)} start indices and {len(sizes)} sizes for an "
                         f"operand of rank {len(shape)}")
    for d, (n, k) in enumerate(zip(shape, sizes)):
        if not 0 <= k <= n:
            raise ShapeError(f"{what}: size {k} of dim {d} does not fit in {n}")


def _iota(n):
    return p("iota", shape=(n,), dimension=0, dtype="int64")


def dynamic_slice(x, start_indices, slice_sizes):
    """``x[s0:s0+k0, s1:s1+k1, ...]`` for possibly traced starts ``s`` and
    static sizes ``k`` (starts clamped into ``[0, n - k]``)."""
    x = _array(x)
    sizes = tuple(int(k) for k in slice_sizes)
    starts = list(start_indices)
    _check(x, starts, sizes, "dynamic_slice")
    for d, (s, k) in enumerate(zip(starts, sizes)):
        shape = aval(x).shape
        n = shape[d]
        s = _start(s, n, k)
        if isinstance(s, int):
            if s == 0 and k == n:
                continue
            start = tuple(s if i == d else 0 for i in range(len(shape)))
            limit = tuple(s + k if i == d else m for i, m in enumerate(shape))
            x = p("slice", x, start=start, limit=limit, strides=(1,) * len(shape))
            continue
        idx = p("add", p("broadcast_in_dim", s, shape=(k,), broadcast_dimensions=()), _iota(k))
        x = p("gather", x, idx, axis=d)
    return x


def dynamic_update_slice(x, update, start_indices):
    """``x`` with ``update`` written at possibly traced ``start_indices``
    (clamped so that the whole update lands inside ``x``)."""
    x, update = _array(x), _array(update)
    tx, tu = aval(x), aval(update)
    if tu.ndim != tx.ndim:
        raise ShapeError(f"dynamic_update_slice: update {tu} and operand {tx} differ in rank")
    if tu.dtype != tx.dtype:
        update = p("convert", update, dtype=tx.dtype)
    starts = list(start_indices)
    _check(x, starts, tu.shape, "dynamic_update_slice")
    if 0 in tu.shape:
        return x
    g, mask = update, None
    for d, (s, n, k) in enumerate(zip(starts, tx.shape, tu.shape)):
        s = _start(s, n, k)
        rel = p("sub", _iota(n), p("broadcast_in_dim", np.asarray(s, np.int64) if isinstance(s, int)
                                    else s, shape=(n,), broadcast_dimensions=()))
        idx = p("min", p("max", rel, np.zeros(n, np.int64)), np.full(n, k - 1, np.int64))
        g = p("gather", g, idx, axis=d)
        inside = p("and", p("ge", rel, np.zeros(n, np.int64)), p("lt", rel, np.full(n, k, np.int64)))
        inside = p("broadcast_in_dim", inside, shape=tx.shape, broadcast_dimensions=(d,))
        mask = inside if mask is None else p("and", mask, inside)
    return p("select", mask, g, x)


# --- basic slicing with traced bounds: x[i * b:(i + 1) * b] ------------------------------
def _linear(v, defs):
    """``v`` (an int or an integer tracer) as a linear form ``{atom: coef}``
    over the trace's values (key None: the constant term), found by
    following add/sub/neg/mul-by-constant/integer-convert instructions; None
    where it is not one."""
    if isinstance(v, (int, np.integer)):
        return {None: int(v)}
    if not isinstance(v, Tracer):
        return None
    var = v._var
    ins = defs.get(var)
    if ins is None:
        return {var: 1}
    if ins.prim == "constant":
        return {None: int(ins.attrs["value"])} if ins.results[0].type.dtype in INTS else None
    ops = [Tracer(v._trace, o) for o in ins.operands]
    if ins.prim in ("add", "sub"):
        a, b = _linear(ops[0], defs), _linear(ops[1], defs)
        if a is None or b is None:
            return {var: 1}
        sign = 1 if ins.prim == "add" else -1
        out = dict(a)
        for k, c in b.items():
            out[k] = out.get(k, 0) + sign * c
        return out
    if ins.prim == "neg":
        a = _linear(ops[0], defs)
        return {var: 1} if a is None else {k: -c for k, c in a.items()}
    if ins.prim == "mul":
        a, b = _linear(ops[0], defs), _linear(ops[1], defs)
        if a is not None and b is not None:
            for x, y in ((a, b), (b, a)):
                if set(y) <= {None}:
                    return {k: c * y.get(None, 0) for k, c in x.items()}
        return {var: 1}
    if ins.prim == "convert" and ins.results[0].type.dtype in INTS and \
            ins.operands[0].type.dtype in INTS:
        return _linear(ops[0], defs) or {var: 1}
    return {var: 1}


def _static_size(start, stop):
    """``stop - start`` if it is the same integer whatever the traced
    values are (e.g. ``(i + 1) * b - i * b``), else None."""
    trace = next(x._trace for x in (start, stop) if isinstance(x, Tracer))
    defs = {r: ins for ins in trace.body for r in ins.results}
    a, b = _linear(stop, defs), _linear(start, defs)
    if a is None or b is None:
        return None
    diff = dict(a)
    for k, c in b.items():
        diff[k] = diff.get(k, 0) - c
    if any(c != 0 for k, c in diff.items() if k is not None):
        return None
    return diff.get(None, 0)


def apply_traced_slices(x, idx):
    """For NumPy indexing: apply the slices of ``idx`` (one entry per dim of
    ``x``) whose start or stop is traced as one ``dynamic_slice``; returns
    ``x`` and ``idx`` with those slices replaced by ``slice(None)``. The
    size (stop - start) must not depend on traced values; the start is
    clamped into ``[0, n - size]`` as in dynamic_slice (not counted from
    the end when negative)."""
    shape = aval(x).shape
    starts, sizes, new_idx, found = [], [], [], False
    for d, i in enumerate(idx):
        if isinstance(i, slice) and (isinstance(i.start, Tracer) or isinstance(i.stop, Tracer)):
            if i.step not in (None, 1):
                raise ConcretizationError("a slice with traced bounds needs step 1 (use "
                                          "tracejit.lax.dynamic_slice, then a static slice)")
            start = 0 if i.start is None else i.start
            stop = shape[d] if i.stop is None else i.stop
            size = _static_size(start, stop)
            if size is None or not 0 <= size <= shape[d]:
                raise ConcretizationError(
                    f"slicing dim {d} (of size {shape[d]}) with traced bounds needs a "
                    f"size (stop - start) known while tracing, e.g. x[i:i + 4] or "
                    f"x[i * b:(i + 1) * b]; use tracejit.lax.dynamic_slice(x, starts, sizes)")
            starts.append(start)
            sizes.append(size)
            new_idx.append(slice(None))
            found = True
        else:
            starts.append(0)
            sizes.append(shape[d] if d < len(shape) else 0)
            new_idx.append(i)
    if not found:
        return x, idx
    return dynamic_slice(x, starts, sizes), tuple(new_idx)
