"""The process world: which process this is, how many there are.

Under ``mpiexec`` (any MPI launcher that sets the usual process-manager
variables: ``PMI_RANK``, ``OMPI_COMM_WORLD_RANK``, ``PMIX_RANK``...) and
with :mod:`mpi4py` installed, :func:`init` joins ``MPI.COMM_WORLD``.
Otherwise -- no mpi4py, or a plain ``python script.py`` -- it gives a
one-process world (rank 0 of 1) in which every collective is the identity,
so the same script runs anywhere.  ``TRACEJIT_DISTRIBUTED=0`` forces the
one-process world even under ``mpiexec``.

A rank that dies of an uncaught exception must not leave the others
waiting forever in a collective: :func:`init` installs an exception hook
that prints the traceback (prefixed with the rank) and calls
``MPI_Abort``, which makes the launcher end every rank with a non-zero
exit status.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

__all__ = ["World", "init", "world", "rank", "size", "barrier", "is_distributed",
           "launched_by_mpi"]

#: Seconds a failing rank waits, after writing its traceback, before MPI_Abort.
ABORT_GRACE_SECONDS = 0.2

#: Environment variables set by MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm's PMI).
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                       "MPI_LOCALRANKID", "HYDI_CONTROL_FD")


class World:
    """One process world: ``rank``, ``size``, the MPI communicator and the
    ``mpi4py.MPI`` module (both ``None`` in the one-process world)."""

    def __init__(self, comm=None, mpi=None):
        self.comm, self.MPI = comm, mpi
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()

    def __repr__(self):
        kind = "one process" if self.comm is None else "MPI"
        return f"World(rank={self.rank}, size={self.size}, {kind})"


_world: World | None = None


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``)."""
    if os.environ.get("TRACEJIT_DISTRIBUTED", "") == "0":
        return False
    return any(v in os.environ for v in _LAUNCHER_VARIABLES)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


def _abort_on_exception(comm, previous_hook):
    """An exception hook: print the traceback with the rank, then abort every rank."""

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous_hook(kind, value, tb)
        else:
            text = "".join(traceback.format_exception(kind, value, tb))
            sys.stderr.write("".join(f"[rank {comm.Get_rank()}] {line}\n"
                                     for line in text.rstrip("\n").split("\n")))
            sys.stderr.write(f"[rank {comm.Get_rank()}] aborting all "
                             f"{comm.Get_size()} ranks\n")
        sys.stderr.flush()
        sys.stdout.flush()
        # The launcher forwards each rank's output through a pipe, and MPI_Abort
        # can end it before it has forwarded the lines just written (seen once
        # in CI under load: the failing rank's message missing): give it a moment.
        time.sleep(ABORT_GRACE_SECONDS)
        comm.Abort(1)

    return hook


def init() -> World:
    """Join the MPI world if launched by ``mpiexec`` with mpi4py installed,
    else make a one-process world.  Idempotent; returns the :class:`World`."""
    global _world
    if _world is not None:
        return _world
    MPI = _import_mpi() if launched_by_mpi() else None
    if MPI is None:
        _world = World()
    else:
        comm = MPI.COMM_WORLD
        _world = World(comm, MPI)
        if _world.size > 1:
            sys.excepthook = _abort_on_exception(comm, sys.excepthook)
    return _world


def world() -> World:
    """The world, initialized on first use."""
    return _world if _world is not None else init()


def rank() -> int:
    """This process's rank, 0 to ``size() - 1``."""
    return world().rank


def size() -> int:
    """The number of processes."""
    return world().size


def is_distributed() -> bool:
    """Whether there is more than one process."""
    return world().size > 1


def barrier() -> None:
    """Wait until every rank gets here."""
    w = world()
    if w.comm is not None:
        w.comm.Barrier()
