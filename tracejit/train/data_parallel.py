"""Synchronous data parallelism across processes (``make_train_step(...,
distributed=True)``).

Each rank runs the same program on its own shard of every batch::

    gradients (compiled) -> allreduce(mean) over ranks -> update (compiled)

One :func:`tracejit.distributed.allreduce` per step carries the gradients,
the model state (batch-norm moving statistics) and the batch metrics in one
flat float32 buffer.  With equal shards and a mean loss, the mean of the
ranks' gradients is the gradient of the whole (concatenated) batch, so a
step on ``size`` ranks equals a one-process step on ``size`` times the
batch, up to float rounding.

Dropout and other randomness use ``fold_in(fold_in(state.key, step),
rank)`` on more than one rank, so ranks draw different masks.

Communication is not overlapped with computation: the gradients come out of
one compiled function all at once, so there is nothing left to compute
while a bucket is in flight (``benchmarks/bench_distributed.py`` measures
the communication share, which bounds what an overlap could save).
"""
from __future__ import annotations

import time

from ..api import jit
from ..random import fold_in
from ..distributed import allreduce, broadcast, init

__all__ = ["DataParallelStep"]


class DataParallelStep:
    """``step(state, x, y, with_grads=False) -> (state, metrics[, grads])``,
    averaging over every MPI rank; built by ``make_train_step(...,
    distributed=True)``.

    ``seconds`` accumulates the wall time of the three phases
    (``gradients``, ``allreduce`` -- which includes waiting for the slowest
    rank --, ``update``); ``reset_timings()`` zeroes it."""

    def __init__(self, gradients, update, *, backend=None, donate=True):
        world = init()
        self.rank, self.size = world.rank, world.size
        rank, size = self.rank, self.size

        def grad_step(state, x, y):
            key = fold_in(state.key, state.step)
            if size > 1:
                key = fold_in(key, rank)
            return gradients(state, x, y, key)

        self._gradients = jit(grad_step, backend=backend)
        self._update = jit(update, backend=backend, donate_argnums=(0,) if donate else ())
        self._synced = False
        self.reset_timings()

    def reset_timings(self):
        self.seconds = {"gradients": 0.0, "allreduce": 0.0, "update": 0.0}

    def sync(self, state):
        """Rank 0's ``state`` on every rank (done by the first call)."""
        self._synced = True
        return broadcast(state) if self.size > 1 else state

    def __call__(self, state, x, y, with_grads=False):
        if not self._synced:
            state = self.sync(state)
        t0 = time.perf_counter()
        grads, model_state, metrics = self._gradients(state, x, y)
        t1 = time.perf_counter()
        if self.size > 1:
            grads, model_state, metrics = allreduce((grads, model_state, metrics), "mean")
        t2 = time.perf_counter()
        new_state, learning_rate = self._update(state, grads, model_state)
        t3 = time.perf_counter()
        self.seconds["gradients"] += t1 - t0
        self.seconds["allreduce"] += t2 - t1
        self.seconds["update"] += t3 - t2
        metrics = dict(metrics, learning_rate=learning_rate)
        if with_grads:
            return new_state, metrics, grads
        return new_state, metrics
