"""Asynchronous data parallelism with a parameter server (the book's
between-graph replication with asynchronous updates).

Under ``mpiexec -n P`` rank 0 is the parameter server and ranks 1..P-1 are
workers.  The server holds the parameters and the optimizer state; each
worker loops::

    compute the gradients of its next batch with the parameters it has
    -> send them to the server -> receive the server's current parameters

and the server applies each worker's gradients as they arrive (one
compiled optimizer update each), then answers with its fresh parameters.
No worker waits for another, so slow workers do not hold up fast ones; the
price is *stale* gradients: between a worker's pull and its push the server
may have applied ``s`` updates from other workers.  The server measures
that staleness for every gradient and drops gradients staler than
``max_staleness`` (one of the mitigations the book lists); the staleness
statistics are logged each epoch and returned.

Each worker reads its own shard of every epoch (``Pipeline.shard(P - 1,
rank - 1)``) in batches of ``batch_size``: one update per worker batch, so
an epoch is ``n / batch_size`` updates as in one-process training.  With one
process (no ``mpiexec``), the loop runs locally without staleness.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..distributed import broadcast, broadcast_object, init as init_world, probe, recv, send
from ..random import fold_in
from ..api import jit
from ..data import Pipeline
from ..tree import tree_map
from .state import TrainState
from .steps import evaluate, init_train_state, make_eval_step, step_functions

__all__ = ["fit_async", "AsyncResult"]

_GRADIENTS, _PARAMETERS, _DONE = 1, 2, 3


@dataclasses.dataclass
class AsyncResult:
    """What :func:`fit_async` returns (the same on every rank).

    ``history`` has per epoch (``updates per epoch`` gradients received by
    the server): ``loss``, ``accuracy``, ``val_loss``/``val_accuracy`` with
    validation data, ``staleness_mean``, ``staleness_max`` and ``dropped``.
    ``staleness`` counts gradients by staleness (``{s: count}``).
    """

    state: TrainState
    history: dict
    staleness: dict
    applied: int
    dropped: int
    examples_per_second: float
    checkpoint: None = None
    stopped_early: bool = False

    @property
    def params(self):
        return self.state.params


def _metrics32(metrics):
    return {k: np.float32(v) for k, v in metrics.items()}


def _cast_like(tree, like):
    return tree_map(lambda v, t: np.asarray(v, dtype=np.asarray(t).dtype), tree, like)


def fit_async(model, optimizer, train_data, *, epochs: int, batch_size: int = 32,
              seed: int = 0, validation_data=None, max_staleness: int | None = None,
              loss=None, regularizer=None, backend=None, verbose: bool = True,
              eval_batch_size: int = 256) -> AsyncResult:
    """Train asynchronously with rank 0 as the parameter server; see the module
    docstring.  ``batch_size`` is each worker's batch; ``max_staleness``
    (default: the number of workers) is the largest staleness of a gradient
    the server still applies."""
    world = init_world()
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    workers = max(world.size - 1, 1)
    max_staleness = workers if max_staleness is None else int(max_staleness)
    if max_staleness < 0:
        raise ValueError(f"max_staleness must be >= 0, got {max_staleness}")
    x, y = train_data
    pipeline = Pipeline((x, y)).shuffle(seed)
    if world.size > 1 and world.rank > 0:
        pipeline = pipeline.shard(workers, world.rank - 1)
    pipeline = pipeline.batch(int(batch_size), drop_remainder=True)
    state = init_train_state(model, optimizer, np.shape(x)[1:], seed=seed)
    gradients, update = step_functions(model, optimizer, loss, regularizer, 1)
    rank = world.rank

    def grad_step(state, x, y):
        key = fold_in(fold_in(state.key, state.step), rank)
        return gradients(state, x, y, key)

    verbose = verbose and rank == 0
    if world.size == 1:
        return _local(state, pipeline, jit(grad_step, backend=backend),
                      jit(update, backend=backend, donate_argnums=(0,)), int(epochs),
                      validation_data, model, loss, backend, verbose, eval_batch_size)
    if rank == 0:
        server = _Server(state, jit(update, backend=backend, donate_argnums=(0,)), workers,
                         max_staleness, updates_per_epoch=pipeline.num_batches,
                         batch_size=int(batch_size), validation_data=validation_data,
                         eval_step=(make_eval_step(model, loss=loss, backend=backend)
                                    if validation_data is not None else None),
                         verbose=verbose, eval_batch_size=eval_batch_size)
        result = server.serve()
        state = result.state
    else:
        _work(state, pipeline, jit(grad_step, backend=backend), int(epochs))
        result = None
    state = broadcast(state)
    summary = broadcast_object(None if result is None else dataclasses.replace(
        result, state=None))
    return dataclasses.replace(summary, state=state)


def _work(state, pipeline, grad_step, epochs):
    """A worker: pull, compute, push, until its shard's epochs are done."""
    like = (state.params, state.model_state, np.int64(0))
    params, model_state, version = recv(like, 0, _PARAMETERS)
    for _ in range(epochs):
        for x, y in pipeline:
            state = state.replace(params=params, model_state=model_state,
                                  step=np.asarray(version, np.int64))
            grads, new_model_state, metrics = grad_step(state, x, y)
            send((_cast_like(grads, state.params),
                       _cast_like(new_model_state, state.model_state),
                       _metrics32(metrics), np.int64(version)), 0, _GRADIENTS)
            params, model_state, version = recv(like, 0, _PARAMETERS)
    send(np.zeros(1, np.int8), 0, _DONE)


class _Server:
    """Rank 0: applies gradients as they arrive and answers with parameters."""

    def __init__(self, state, update, workers, max_staleness, *, updates_per_epoch,
                 batch_size, validation_data, eval_step, verbose, eval_batch_size):
        self.state, self.update, self.workers = state, update, workers
        self.max_staleness = max_staleness
        self.updates_per_epoch = updates_per_epoch
        self.batch_size = batch_size
        self.validation_data, self.eval_step = validation_data, eval_step
        self.verbose, self.eval_batch_size = verbose, eval_batch_size
        self.version = 0
        self.history: dict = {}
        self.staleness: dict = {}

    def _reply(self, worker):
        send((self.state.params, self.state.model_state, np.int64(self.version)),
                  worker, _PARAMETERS)

    def serve(self) -> AsyncResult:
        like = (self.state.params, self.state.model_state,
                {"loss": np.float32(0), "accuracy": np.float32(0)}, np.int64(0))
        started = time.perf_counter()
        for worker in range(1, self.workers + 1):
            self._reply(worker)
        active = set(range(1, self.workers + 1))
        received = applied = dropped = 0
        epoch = {"loss": 0.0, "accuracy": 0.0, "staleness": [], "dropped": 0}
        while active:
            source, tag = probe()
            if tag == _DONE:
                recv(np.zeros(1, np.int8), source, _DONE)
                active.discard(source)
                continue
            grads, model_state, metrics, version = recv(like, source, _GRADIENTS)
            stale = self.version - int(version)
            self.staleness[stale] = self.staleness.get(stale, 0) + 1
            if stale <= self.max_staleness:
                self.state, _ = self.update(self.state, grads, model_state)
                self.version += 1
                applied += 1
            else:
                dropped += 1
                epoch["dropped"] += 1
            self._reply(source)
            received += 1
            epoch["loss"] += float(metrics["loss"])
            epoch["accuracy"] += float(metrics["accuracy"])
            epoch["staleness"].append(stale)
            if received % self.updates_per_epoch == 0:
                self._end_epoch(received // self.updates_per_epoch, epoch)
                epoch = {"loss": 0.0, "accuracy": 0.0, "staleness": [], "dropped": 0}
        seconds = time.perf_counter() - started
        rate = received * self.batch_size / max(seconds, 1e-9)
        if self.verbose:
            print(f"parameter server: {applied} updates applied, {dropped} stale gradients "
                  f"dropped (max staleness {self.max_staleness}); staleness counts "
                  f"{dict(sorted(self.staleness.items()))}; {rate:,.0f} examples/s",
                  flush=True)
        return AsyncResult(state=self.state, history=self.history,
                           staleness=dict(sorted(self.staleness.items())), applied=applied,
                           dropped=dropped, examples_per_second=rate)

    def _end_epoch(self, number, epoch):
        count = len(epoch["staleness"])
        logs = {"loss": epoch["loss"] / count, "accuracy": epoch["accuracy"] / count}
        if self.eval_step is not None:
            result = evaluate(self.eval_step, self.state, self.validation_data,
                              batch_size=self.eval_batch_size)
            logs.update(val_loss=result["loss"], val_accuracy=result["accuracy"])
        logs.update(staleness_mean=float(np.mean(epoch["staleness"])),
                    staleness_max=int(max(epoch["staleness"])), dropped=epoch["dropped"])
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.verbose:
            print(f"epoch {number}  " + "  ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in logs.items()), flush=True)


def _local(state, pipeline, grad_step, update, epochs, validation_data, model, loss,
           backend, verbose, eval_batch_size):
    """One process: the same loop without a server (staleness 0)."""
    eval_step = make_eval_step(model, loss=loss, backend=backend) if validation_data else None
    history: dict = {}
    started, steps = time.perf_counter(), 0
    for number in range(1, epochs + 1):
        sums = {"loss": 0.0, "accuracy": 0.0}
        for x, y in pipeline:
            grads, model_state, metrics = grad_step(state, x, y)
            state, _ = update(state, grads, model_state)
            sums["loss"] += float(metrics["loss"])
            sums["accuracy"] += float(metrics["accuracy"])
            steps += 1
        logs = {k: v / pipeline.num_batches for k, v in sums.items()}
        if eval_step is not None:
            result = evaluate(eval_step, state, validation_data, batch_size=eval_batch_size)
            logs.update(val_loss=result["loss"], val_accuracy=result["accuracy"])
        logs.update(staleness_mean=0.0, staleness_max=0, dropped=0)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if verbose:
            print(f"epoch {number}  " + "  ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in logs.items()), flush=True)
    rate = steps * pipeline.batch_size / max(time.perf_counter() - started, 1e-9)
    return AsyncResult(state=state, history=history, staleness={0: steps}, applied=steps,
                       dropped=0, examples_per_second=rate)
