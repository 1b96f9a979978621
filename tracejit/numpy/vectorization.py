"""``tnp.vectorize``: NumPy's ``np.vectorize`` on traced arrays.

NumPy calls the Python function once per element; here it is traced once,
on one element (or one core block, with ``signature=``), and the trace is
batched over every element at once (the batching rules of ``vmap``), so
the function may use any tracejit.numpy operation, and the result is one
array program that ``jit`` compiles and ``grad`` differentiates. Its body
sees traced scalars, so Python control flow on their values needs
``tnp.where`` or ``tracejit.control.cond``, as in ``jax.numpy.vectorize``.

Arguments broadcast against each other (their loop dimensions, those
before a signature's core dimensions); ``excluded`` positions and
keywords are passed through unchanged; ``otypes`` casts the results (and
gives size-0 input its result dtype, where NumPy needs it too).
"""
from __future__ import annotations

import functools
import re

import numpy as np

from ..core import trace_pytree
from ..errors import ShapeError
from ..ir.types import TensorType
from ..primitives import batch_util as bu
from ..primitives.batch_interpreter import batch_eval, typed
from ..tree import tree_flatten, tree_unflatten
from . import base as tnp

_ARG = r"\(\s*(?:\w+(?:\s*,\s*\w+)*)?\s*\)"
_SIGNATURE = re.compile(rf"^\s*{_ARG}(?:\s*,\s*{_ARG})*\s*->\s*{_ARG}(?:\s*,\s*{_ARG})*\s*$")


def parse_signature(signature: str):
    """'(m,n),(n)->(m)' -> ([('m', 'n'), ('n',)], [('m',)]), as NumPy's gufuncs."""
    if not _SIGNATURE.match(signature):
        raise ValueError(f"vectorize: not a valid gufunc signature: {signature!r}")
    ins, outs = signature.split("->")

    def groups(text):
        return [tuple(d.strip() for d in g.split(",") if d.strip())
                for g in re.findall(r"\(([^)]*)\)", text)]
    return groups(ins), groups(outs)


class vectorize:
    """``np.vectorize(pyfunc, otypes=None, doc=None, excluded=None,
    signature=None)``, also usable as a decorator."""

    def __init__(self, pyfunc=None, otypes=None, doc=None, excluded=None, cache=False,
                 signature=None):
        self.pyfunc = pyfunc
        if isinstance(otypes, str):
            otypes = list(otypes)
        self.otypes = None if otypes is None else [np.dtype(t) for t in otypes]
        self.excluded = set(excluded or ())
        self.signature = signature
        self.core = parse_signature(signature) if signature is not None else None
        if pyfunc is not None:
            functools.update_wrapper(self, pyfunc)
            if doc is not None:
                self.__doc__ = doc

    def __call__(self, *args, **kwargs):
        if self.pyfunc is None:   # @vectorize(otypes=...) used as a decorator
            return vectorize(args[0], self.otypes, None, self.excluded, signature=self.signature)
        keys = [i for i in range(len(args)) if i not in self.excluded] + \
            [k for k in kwargs if k not in self.excluded]
        values = [args[k] if isinstance(k, int) else kwargs[k] for k in keys]
        return _apply(self, keys, values, args, kwargs)


def _apply(vec, keys, values, args, kwargs):
    name = getattr(vec.pyfunc, "__name__", "f")
    xs = [tnp.asarray(v) for v in values]
    in_core = vec.core[0] if vec.core else [()] * len(xs)
    out_core = vec.core[1] if vec.core else None
    if len(in_core) != len(xs):
        raise TypeError(f"vectorize({name}): signature {vec.signature!r} has {len(in_core)} "
                        f"inputs, the call passes {len(xs)}")
    sizes, loops = {}, []
    for x, dims in zip(xs, in_core):
        if x.ndim < len(dims):
            raise ValueError(f"vectorize({name}): an input of shape {x.shape} has fewer "
                             f"dimensions than its core dimensions {dims}")
        loops.append(tuple(x.shape[:x.ndim - len(dims)]))
        for d, n in zip(dims, x.shape[x.ndim - len(dims):]):
            if sizes.setdefault(d, n) != n:
                raise ValueError(f"vectorize({name}): inconsistent size for core dimension "
                                 f"{d!r}: {sizes[d]} and {n}")
    loop = tnp.broadcast_shapes(*loops) if loops else ()
    count = int(np.prod(loop, dtype=np.int64))
    if count == 0:
        return _empty(vec, name, loop, out_core, sizes)
    flat = []
    for x, lp in zip(xs, loops):
        core = tuple(x.shape[len(lp):])
        flat.append(tnp.reshape(tnp.broadcast_to(x, loop + core), (count,) + core))
    types = [TensorType(tuple(x.shape[1:]), x.dtype.name) for x in flat]

    def one(*leaves):
        a, kw = list(args), dict(kwargs)
        for k, v in zip(keys, leaves):
            if isinstance(k, int):
                a[k] = v
            else:
                kw[k] = v
        return vec.pyfunc(*a, **kw)
    fn, captured, out_tree = trace_pytree(one, types, tree_flatten(tuple(types))[1], name)
    outs, batched = batch_eval(fn, flat + list(captured),
                               [True] * len(flat) + [False] * len(captured))
    results = []
    for i, (o, r, b) in enumerate(zip(outs, fn.results, batched)):
        o = o if b else bu.bcast(typed(o, r), count)
        o = tnp.reshape(o, loop + tuple(r.shape))
        if out_core is not None and i < len(out_core) and len(out_core[i]) != len(r.shape):
            raise ValueError(f"vectorize({name}): output {i} has {len(r.shape)} core "
                             f"dimensions, the signature says {out_core[i]}")
        if vec.otypes is not None and i < len(vec.otypes):
            o = tnp.astype(o, vec.otypes[i])
        results.append(o)
    return tree_unflatten(out_tree, results)


def _empty(vec, name, loop, out_core, sizes):
    if vec.otypes is None:
        raise ValueError(f"vectorize({name}): cannot call vectorize on size 0 inputs "
                         f"unless `otypes` is set (as NumPy)")
    cores = out_core or [()] * len(vec.otypes)
    try:
        outs = [tnp.zeros(loop + tuple(sizes[d] for d in core), t)
                for core, t in zip(cores, vec.otypes)]
    except KeyError as e:
        raise ShapeError(f"vectorize({name}): output core dimension {e} is unknown for "
                         f"size 0 inputs") from None
    return outs[0] if len(outs) == 1 else tuple(outs)


__all__ = ["vectorize"]
