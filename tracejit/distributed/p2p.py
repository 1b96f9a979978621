"""Point-to-point messages of pytrees (for the parameter server).

A tree travels as one message per dtype buffer (see
:class:`~tracejit.distributed.collectives.FlatTree`), all with the same tag;
MPI keeps messages from one sender with one tag in order, so the receiver,
which knows the tree's structure from a template, reads them back in order.

Waiting uses ``Iprobe``/``Test`` with short sleeps instead of MPI's blocking
calls, which spin a core at 100% (MPICH): a parameter server waiting for
gradients should leave the core to the workers on a small machine.
"""
from __future__ import annotations

import time

import numpy as np

from .collectives import FlatTree
from .world import world

__all__ = ["send", "recv", "probe", "ANY_SOURCE", "ANY_TAG"]

ANY_SOURCE, ANY_TAG = "any", "any"
_NAP = 1e-4


def _comm():
    comm = world().comm
    if comm is None or world().size < 2:
        raise RuntimeError("point-to-point messages need several MPI processes (mpiexec)")
    return comm


def _mpi_source_tag(MPI, source, tag):
    return (MPI.ANY_SOURCE if source == ANY_SOURCE else source,
            MPI.ANY_TAG if tag == ANY_TAG else tag)


def send(tree, dest: int, tag: int = 0) -> int:
    """Send ``tree`` to rank ``dest``; returns the bytes sent."""
    comm = _comm()
    packed = FlatTree(tree)
    for buffer in packed.buffers.values():
        comm.Send(np.ascontiguousarray(buffer), dest=dest, tag=tag)
    return packed.nbytes


def probe(source=ANY_SOURCE, tag=ANY_TAG) -> tuple[int, int]:
    """Wait for a message; returns its ``(source, tag)`` without receiving it."""
    comm, MPI = _comm(), world().MPI
    source, tag = _mpi_source_tag(MPI, source, tag)
    status = MPI.Status()
    while not comm.Iprobe(source=source, tag=tag, status=status):
        time.sleep(_NAP)
    return status.Get_source(), status.Get_tag()


def recv(like, source: int, tag: int = 0):
    """Receive a tree with the structure, shapes and dtypes of ``like``
    from rank ``source`` (as sent by :func:`send` with this tag)."""
    comm = _comm()
    packed = FlatTree(like)
    for buffer in packed.buffers.values():
        request = comm.Irecv(buffer, source=source, tag=tag)
        while not request.Test():
            time.sleep(_NAP)
    return packed.unpack()
