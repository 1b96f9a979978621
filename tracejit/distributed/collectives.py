"""Collectives on pytrees of arrays: one flat buffer per dtype per call.

Each call flattens the tree, packs the leaves of each dtype into one
contiguous buffer (in leaf order), runs one MPI collective per buffer and
unpacks the result into a tree of NumPy arrays with the input's structure,
shapes and dtypes.  A typical gradient tree is all float32, so an
:func:`allreduce` of it is a single ``MPI_Allreduce``, not one message per
layer.  Every rank must pass a tree of the same structure, shapes and
dtypes (as with any MPI collective, a mismatch is an MPI error).

In the one-process world the collectives return copies of their input
(``allgather`` stacks it once), so code written for many ranks runs
unchanged on one.

:func:`stats` counts the bytes each rank sent and the seconds spent inside
collectives, for the benchmarks' communication share.
"""
from __future__ import annotations

import pickle
import time

import numpy as np

from ..tree import tree_flatten, tree_unflatten
from .world import world

__all__ = ["FlatTree", "allreduce", "iallreduce", "broadcast", "allgather", "broadcast_object",
           "allgather_object", "stats", "reset_stats", "Pending"]

_OPS = ("sum", "mean", "max", "min")
_stats = {"calls": 0, "bytes": 0, "seconds": 0.0}


def stats() -> dict:
    """``{"calls", "bytes", "seconds"}`` of this rank's collectives since the
    last :func:`reset_stats` (bytes: the payload this rank contributed)."""
    return dict(_stats)


def reset_stats() -> None:
    _stats.update(calls=0, bytes=0, seconds=0.0)


def _record(nbytes, seconds):
    _stats["calls"] += 1
    _stats["bytes"] += int(nbytes)
    _stats["seconds"] += seconds


class FlatTree:
    """The leaves of a tree packed into one flat buffer per dtype
    (``.buffers``: ``{dtype: 1-D array}``, copies); :meth:`unpack` rebuilds
    the tree from those buffers or from others of the same sizes."""

    def __init__(self, tree):
        leaves, self.treedef = tree_flatten(tree)
        arrays = [np.asarray(leaf) for leaf in leaves]
        self.shapes = [a.shape for a in arrays]
        self.dtypes = [a.dtype for a in arrays]
        order = list(dict.fromkeys(self.dtypes))
        self.buffers = {}
        for dtype in order:
            parts = [a.ravel() for a in arrays if a.dtype == dtype]
            self.buffers[dtype] = (np.concatenate(parts) if parts
                                   else np.zeros(0, dtype)).astype(dtype, copy=True)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers.values())

    def unpack(self, buffers=None, leading=()):
        """The tree rebuilt from ``buffers`` (default: the packed ones); with
        ``leading`` each flat buffer has that many more leading axes."""
        buffers = self.buffers if buffers is None else buffers
        offsets = dict.fromkeys(buffers, 0)
        leaves = []
        for shape, dtype in zip(self.shapes, self.dtypes):
            n = int(np.prod(shape, dtype=np.int64))
            start = offsets[dtype]
            flat = buffers[dtype][..., start:start + n]
            leaves.append(flat.reshape(tuple(leading) + tuple(shape)))
            offsets[dtype] = start + n
        return tree_unflatten(self.treedef, leaves)


def _check_op(op, packed):
    if op not in _OPS:
        raise ValueError(f"allreduce: op must be one of {', '.join(map(repr, _OPS))}, "
                         f"got {op!r}")
    if op == "mean":
        bad = [d for d in packed.buffers if not np.issubdtype(d, np.inexact)]
        if bad:
            raise TypeError(f"allreduce(op='mean') needs floating-point leaves, got "
                            f"{', '.join(d.name for d in bad)} (use op='sum')")


def _mpi_op(MPI, op):
    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]


def _finish(packed, op, size):
    if op == "mean" and size > 1:
        for buffer in packed.buffers.values():
            buffer /= size
    return packed.unpack()


def allreduce(tree, op: str = "mean"):
    """The elementwise ``op`` ("mean", "sum", "max", "min") of ``tree`` over
    all ranks, on every rank."""
    packed = FlatTree(tree)
    _check_op(op, packed)
    w = world()
    if w.comm is not None and w.size > 1:
        started = time.perf_counter()
        for buffer in packed.buffers.values():
            if buffer.size:
                w.comm.Allreduce(w.MPI.IN_PLACE, buffer, op=_mpi_op(w.MPI, op))
        _record(packed.nbytes, time.perf_counter() - started)
    return _finish(packed, op, w.size)


class Pending:
    """A non-blocking allreduce in flight; :meth:`wait` returns its tree."""

    def __init__(self, packed, op, requests, started):
        self._packed, self._op, self._requests = packed, op, requests
        self._started = started
        self._result = None

    def done(self) -> bool:
        return not self._requests or world().MPI.Request.Testall(self._requests)

    def wait(self):
        if self._result is None:
            if self._requests:
                world().MPI.Request.Waitall(self._requests)
                _record(self._packed.nbytes, time.perf_counter() - self._started)
            self._result = _finish(self._packed, self._op, world().size)
        return self._result


def iallreduce(tree, op: str = "mean") -> Pending:
    """Start :func:`allreduce` without waiting (``MPI_Iallreduce``): compute
    something else, then ``.wait()`` for the tree."""
    packed = FlatTree(tree)
    _check_op(op, packed)
    w = world()
    requests = []
    if w.comm is not None and w.size > 1:
        requests = [w.comm.Iallreduce(w.MPI.IN_PLACE, b, op=_mpi_op(w.MPI, op))
                    for b in packed.buffers.values() if b.size]
    return Pending(packed, op, requests, time.perf_counter())


def broadcast(tree, root: int = 0):
    """Rank ``root``'s ``tree`` on every rank (the others pass a tree of the
    same structure, shapes and dtypes, e.g. their own initial parameters)."""
    packed = FlatTree(tree)
    w = world()
    if w.comm is not None and w.size > 1:
        started = time.perf_counter()
        for buffer in packed.buffers.values():
            if buffer.size:
                w.comm.Bcast(buffer, root=root)
        _record(packed.nbytes if w.rank == root else 0, time.perf_counter() - started)
    return packed.unpack()


def allgather(tree):
    """Every rank's ``tree``, stacked: each leaf gets a new leading axis of
    length ``size()`` (entry ``r`` is rank ``r``'s leaf)."""
    packed = FlatTree(tree)
    w = world()
    gathered = {}
    started = time.perf_counter()
    for dtype, buffer in packed.buffers.items():
        out = np.empty((w.size, buffer.size), dtype)
        if w.comm is not None and w.size > 1:
            w.comm.Allgather(buffer, out)
        else:
            out[0] = buffer
        gathered[dtype] = out
    if w.size > 1:
        _record(packed.nbytes, time.perf_counter() - started)
    return packed.unpack(gathered, leading=(w.size,))


def broadcast_object(obj, root: int = 0):
    """Rank ``root``'s picklable ``obj`` on every rank (for small things:
    paths, configs, metadata)."""
    w = world()
    if w.comm is None or w.size == 1:
        return pickle.loads(pickle.dumps(obj))
    return w.comm.bcast(obj, root=root)


def allgather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (picklable objects)."""
    w = world()
    if w.comm is None or w.size == 1:
        return [pickle.loads(pickle.dumps(obj))]
    return w.comm.allgather(obj)
