"""Training across processes on MPI (``pip install tracejit[mpi]``).

    import tracejit.distributed as dist

    dist.init()                      # MPI under mpiexec, else a one-process world
    grads = dist.allreduce(grads)    # mean over ranks, one buffer per dtype
    params = dist.broadcast(params)  # rank 0's values everywhere

Run with ``mpiexec -n 4 python train.py`` (one machine) or ``mpiexec -f
hostfile -n 8 python train.py`` (several).  Without mpi4py or without
``mpiexec`` every function works on a one-process world.
"""
from .world import World, init, world, rank, size, barrier, is_distributed, launched_by_mpi
from .collectives import (FlatTree, allreduce, iallreduce, broadcast, allgather,
                          broadcast_object, allgather_object, stats, reset_stats, Pending)
from .p2p import send, recv, probe, ANY_SOURCE, ANY_TAG

__all__ = ["World", "init", "world", "rank", "size", "barrier", "is_distributed",
           "launched_by_mpi", "allreduce", "iallreduce", "broadcast", "allgather",
           "broadcast_object", "allgather_object", "stats", "reset_stats", "Pending",
           "FlatTree", "send", "recv", "probe", "ANY_SOURCE", "ANY_TAG"]
