"""Building blocks of a training loop: the initial state, a jitted training
step, a jitted evaluation step and :func:`evaluate`.

A hand-written loop with them::

    state = init_train_state(model, optimizer, input_shape=(64,), seed=0)
    train_step = make_train_step(model, optimizer)
    eval_step = make_eval_step(model)
    for epoch in range(10):
        for x, y in pipeline:
            state, metrics = train_step(state, x, y)
        print(evaluate(eval_step, state, (x_test, y_test)))

The model follows the :mod:`tracejit.nn` convention: ``model.init(key,
input_shape)`` (one example's shape) gives ``params``, or ``(params, state)``
when ``model.has_state``, and ``model.apply(params, x, state=..., train=...,
key=...)``.  ``loss(labels, logits)``
returns one loss per example (default: sparse softmax cross-entropy); the
step minimizes its mean plus ``regularizer(params)``.
"""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from .. import random
from ..api import jit
from ..nn import add_n, sparse_softmax_cross_entropy_with_logits
from ..polymorphic import BatchPolymorphicStep
from ..transforms.autodiff import value_and_grad
from ..tree import tree_map
from .data_parallel import DataParallelStep
from .state import TrainState

__all__ = ["init_train_state", "make_train_step", "make_eval_step", "evaluate",
           "accuracy"]


def accuracy(labels, logits):
    """1.0 where the top logit is the label, else 0.0 (one per example)."""
    predicted = tnp.argmax(logits, axis=-1)
    return tnp.astype(tnp.equal(predicted, tnp.astype(labels, tnp.result_type_of(predicted))),
                      "float32")


def _apply(model, params, model_state, x, train, key):
    """``(logits, new_model_state)`` for models with or without state."""
    if model_state is None:
        return model.apply(params, x, train=train, key=key), None
    return model.apply(params, x, state=model_state, train=train, key=key)


def _copy(x):
    return np.array(x, copy=True)


def init_train_state(model, optimizer, input_shape, seed: int = 0, params=None) -> TrainState:
    """A fresh :class:`TrainState`: parameters from ``model.init`` (or the given
    ``params``, e.g. pretrained ones), the optimizer's initial state, step 0 and
    the base key ``tracejit.random.key(seed)``."""
    init_key, step_key = random.split(random.key(seed))
    if getattr(model, "has_state", False):
        fresh, model_state = model.init(init_key, tuple(input_shape))
    else:
        fresh, model_state = model.init(init_key, tuple(input_shape)), None
    # Copies: the training step donates (overwrites) the state's buffers, and
    # given params (e.g. pretrained ones) must survive that.
    params = tree_map(_copy, fresh if params is None else params)
    return TrainState(params=params,
                      opt_state=tree_map(_copy, optimizer.init(params)),
                      model_state=None if model_state is None else tree_map(_copy, model_state),
                      step=np.zeros((), np.int64),
                      key=np.asarray(step_key))


def _learning_rate(optimizer, step):
    """The learning rate of this step, for the logs (0 if the optimizer has none)."""
    if hasattr(optimizer, "learning_rate_at"):
        lr = optimizer.learning_rate_at(step)
    else:
        lr = getattr(optimizer, "learning_rate", None)
        lr = lr(step) if callable(lr) else lr
    return tnp.astype(tnp.asarray(0.0 if lr is None else lr), "float32")


def step_functions(model, optimizer, loss, regularizer, towers):
    """``(gradients, update)``: the two halves of a training step, as plain
    functions to trace.  ``gradients(state, x, y, key) -> (grads,
    model_state, metrics)`` and ``update(state, grads, model_state) ->
    (state, learning_rate)``; :func:`make_train_step` compiles them as one
    function, or as two around an allreduce when ``distributed``."""
    loss = sparse_softmax_cross_entropy_with_logits if loss is None else loss

    def objective(params, model_state, x, y, key):
        logits, model_state = _apply(model, params, model_state, x, True, key)
        total = tnp.mean(loss(y, logits))
        if regularizer is not None:
            total = total + regularizer(params)
        return total, (logits, model_state)

    def tower_mean(values):
        return tree_map(lambda *v: add_n(v) / len(v), *values)

    def gradients(state, x, y, key):
        if towers == 1:
            (total, (logits, model_state)), grads = value_and_grad(objective, has_aux=True)(
                state.params, state.model_state, x, y, key)
        else:
            if tnp.shape(x)[0] % towers:
                raise ValueError(f"a batch of {tnp.shape(x)[0]} examples does not split "
                                 f"into {towers} equal tower shards")
            shard = tnp.shape(x)[0] // towers
            results = [value_and_grad(objective, has_aux=True)(
                state.params, state.model_state, x[i * shard:(i + 1) * shard],
                y[i * shard:(i + 1) * shard], random.fold_in(key, i)) for i in range(towers)]
            total = add_n([r[0][0] for r in results]) / towers
            logits = tnp.concatenate([r[0][1][0] for r in results])
            model_state = (None if state.model_state is None
                           else tower_mean([r[0][1][1] for r in results]))
            grads = tower_mean([r[1] for r in results])
        metrics = {"loss": total, "accuracy": tnp.mean(accuracy(y, logits))}
        return grads, model_state, metrics

    def update(state, grads, model_state):
        params, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new_state = state.replace(params=params, opt_state=opt_state,
                                  model_state=model_state, step=state.step + 1)
        return new_state, _learning_rate(optimizer, state.step)

    return gradients, update


def make_train_step(model, optimizer, *, loss=None, regularizer=None, backend=None,
                    donate: bool = True, towers: int = 1, distributed: bool = False):
    """A jitted ``train_step(state, x, y) -> (state, metrics)``, traced once
    for every batch size (x and y get a symbolic batch axis,
    tracejit/polymorphic.py; ``train_step.trace_count``).

    One compiled function does the forward pass, ``value_and_grad``, the
    optimizer update and the metrics (``loss`` -- the minimized objective,
    regularization included --, ``accuracy`` and ``learning_rate`` of the
    batch).  ``train_step(state, x, y, with_grads=True)`` also returns the
    gradients (a second compiled variant: ``with_grads`` is static), for
    histogram steps.

    The step's random key (dropout...) is ``fold_in(state.key, state.step)``.
    With ``donate`` the state's buffers are reused for the new state, so the
    state passed in must not be used afterwards (copy what you keep).

    ``towers=k`` is synchronous data parallelism as in the book's multi-GPU
    training: the batch is split into k equal shards, each tower computes
    the loss and gradients of its shard (its own dropout key and batch-norm
    statistics), the gradients and moving statistics are averaged, and one
    update is applied. Here the towers run in one compiled step; with mean
    losses and no batch norm the result equals the one-tower step's.

    ``distributed=True`` is the same across processes (run under
    ``mpiexec``; see :mod:`tracejit.distributed` and
    :class:`tracejit.train.data_parallel.DataParallelStep`): each rank passes
    its own shard of the batch; the gradients, the batch-norm moving
    statistics and the metrics are averaged over all ranks between a
    compiled gradient function and a compiled update, and the first call
    broadcasts rank 0's state so every rank starts from the same parameters.
    """
    if towers < 1:
        raise ValueError(f"towers must be at least 1, got {towers}")
    gradients, update = step_functions(model, optimizer, loss, regularizer, towers)
    if distributed:
        return DataParallelStep(gradients, update, backend=backend, donate=donate)

    def train_step(state, x, y, with_grads=False):
        key = random.fold_in(state.key, state.step)
        grads, model_state, metrics = gradients(state, x, y, key)
        new_state, learning_rate = update(state, grads, model_state)
        metrics = dict(metrics, learning_rate=learning_rate)
        if with_grads:
            return new_state, metrics, grads
        return new_state, metrics

    options = dict(backend=backend, static_argnames=("with_grads",),
                   donate_argnums=(0,) if donate else ())
    if towers > 1:   # the towers split the batch: concrete sizes
        return jit(train_step, **options)
    # one trace serves every batch size, the last smaller one of an epoch too
    return BatchPolymorphicStep(train_step, data_argnums=(1, 2), **options)


def make_eval_step(model, *, loss=None, backend=None):
    """A jitted ``eval_step(params, model_state, x, y, mask) -> (loss_sum, correct_sum)``:
    sums over the examples where ``mask`` is 1 (padding rows have mask 0, so
    every batch has the same shape and one compiled function serves them all)."""
    loss = sparse_softmax_cross_entropy_with_logits if loss is None else loss

    def eval_step(params, model_state, x, y, mask):
        logits, _ = _apply(model, params, model_state, x, False, None)
        return (tnp.sum(loss(y, logits) * mask), tnp.sum(accuracy(y, logits) * mask))

    return jit(eval_step, backend=backend)


def pad_batch(array, size):
    if len(array) == size:
        return array
    padding = np.zeros((size - len(array),) + array.shape[1:], array.dtype)
    return np.concatenate([array, padding])


def evaluate(eval_step, params, data, *, model_state=None, batch_size: int = 256) -> dict:
    """Mean ``loss`` and ``accuracy`` of ``params`` over ``data = (x, y)``.

    ``eval_step`` comes from :func:`make_eval_step` (build it once and reuse
    it: each new one compiles again).  ``params`` may also be a
    :class:`TrainState`, whose params and model state are used.
    """
    if isinstance(params, TrainState):
        params, model_state = params.params, params.model_state
    x, y = data
    n = len(x)
    if n == 0:
        raise ValueError("evaluate: the dataset is empty")
    batch_size = min(int(batch_size), n)
    loss_sum = correct = 0.0
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        mask = pad_batch(np.ones(len(xb), np.float32), batch_size)
        l, c = eval_step(params, model_state, pad_batch(np.asarray(xb), batch_size),
                         pad_batch(np.asarray(yb), batch_size), mask)
        loss_sum += float(l)
        correct += float(c)
    return {"loss": loss_sum / n, "accuracy": correct / n}
