"""``fit``: the common training loop, with validation, early stopping,
checkpoints and exact resume, TensorBoard logs and a progress bar.

    from tracejit import nn, optim, train

    result = train.fit(model, optim.adam(1e-3), (x_train, y_train),
                       epochs=20, batch_size=32, validation_data=(x_val, y_val),
                       early_stopping=5, checkpoint_dir="ckpt", logdir="runs/mlp")
    print(result.history["val_accuracy"][-1])

Exact resume: each checkpoint holds the whole :class:`TrainState` (params,
optimizer state, model state, step, base key), the states of the callbacks
(early stopping's winner and counters), and in its metadata the input
pipeline's position, the per-epoch history and the logged scalars.  Running
``fit(..., resume=True)`` with the same arguments after a crash continues from
the latest checkpoint and ends with the same parameters, bit for bit, as a run
that never stopped: every batch and every random key is a pure function of
the seed and the step.  (Steps after the latest checkpoint are recomputed.)

Across processes (``fit(..., distributed=True)`` under ``mpiexec -n P``):
``batch_size`` is the global batch; rank ``r`` reads shard ``r`` of ``P``
of every epoch (:meth:`tracejit.data.Pipeline.shard`, the same shuffle on
every rank) in batches of ``batch_size / P``, and the step averages the
gradients over the ranks (:mod:`tracejit.train.data_parallel`), so the run
follows the one-process run with the same ``batch_size`` up to float
rounding.  Only rank 0 writes checkpoints, TensorBoard events, the progress
bar and the printed lines.  Resuming, rank 0 reads the checkpoint and sends
it to the other ranks (only rank 0 needs the files).  "Exact" then means:
with the same number of processes, bit for bit as a run that never stopped;
with another number, the parameters, optimizer state, step, key and
callback states continue exactly and the epoch continues after the same
examples of its order (rounded down to a whole global batch), but the sums
of the allreduce are grouped differently and dropout masks are drawn per
rank, so the trajectory matches only up to rounding (and dropout).
"""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from ..data import Pipeline
from ..data.pipeline import batch_seed
from ..distributed import broadcast_object, init as init_world
from ..tree import tree_flatten_with_path
from .callbacks import EarlyStopping
from .checkpoint import CheckpointError, latest_checkpoint, remove_stale_files
from .graph import training_graph
from .logging import ProgressBar, SummaryWriter
from .state import TrainState, restore_train_state, save_train_state
from .steps import evaluate, init_train_state, make_eval_step, make_train_step

__all__ = ["fit", "FitResult", "Run"]


@dataclasses.dataclass
class Run:
    """The run in progress, as callbacks see it."""

    state: TrainState
    pipeline: Pipeline
    epochs: int
    writer: SummaryWriter | None = None
    stop_training: bool = False
    history: dict = dataclasses.field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(np.asarray(self.state.step))

    @property
    def epoch(self) -> int:
        return self.pipeline.position[0]


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history`` has one entry per completed epoch for each metric (``loss``,
    ``accuracy`` and, with validation data, ``val_loss``, ``val_accuracy``).
    ``checkpoint`` is the manifest of the last checkpoint written (or None).
    """

    state: TrainState
    history: dict[str, list[float]]
    stopped_early: bool
    checkpoint: str | None

    @property
    def params(self):
        return self.state.params

    def __repr__(self):
        # Short: the state's arrays would fill the screen.
        parts = [f"step={int(np.asarray(self.state.step))}",
                 f"epochs={len(next(iter(self.history.values()), []))}"]
        parts += [f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v]
        parts.append(f"stopped_early={self.stopped_early}")
        if self.checkpoint is not None:
            parts.append(f"checkpoint={self.checkpoint!r}")
        return f"FitResult({', '.join(parts)})"


def _make_pipeline(train_data, batch_size, seed, augment, world=None,
                   drop_remainder=True) -> Pipeline:
    """The training pipeline; with a ``world`` of several ranks, this rank's
    shard, in batches of ``batch_size / world.size``."""
    shards = 1 if world is None else world.size
    if isinstance(train_data, Pipeline):
        if shards > 1 and train_data.num_shards == 1:
            return train_data.shard(shards, world.rank)
        return train_data
    if int(batch_size) % shards:
        raise ValueError(f"batch_size {batch_size} (the global batch) does not split "
                         f"evenly over {shards} processes")
    pipeline = Pipeline(tuple(train_data)).shuffle(seed)
    if shards > 1:
        pipeline = pipeline.shard(shards, world.rank)
    pipeline = pipeline.batch(int(batch_size) // shards, drop_remainder=drop_remainder)
    if augment is not None and shards > 1:
        # Each rank's shard of batch k gets its own draws (else every rank
        # would crop and flip its images alike).
        rank = world.rank
        pipeline = pipeline.map(lambda x, y, s: (augment(x, batch_seed(s, rank, 0)), y),
                                with_seed=True).prefetch(2)
    elif augment is not None:
        # augment(images, seed) -> images; the labels pass through.
        pipeline = pipeline.map(lambda x, y, s: (augment(x, s), y), with_seed=True).prefetch(2)
    return pipeline


def _first_batch(pipeline: Pipeline) -> tuple:
    """The first batch ``(x, y)`` of epoch 0, after the pipeline's maps."""
    batches = pipeline.epoch(0)
    try:
        return tuple(next(batches))
    finally:
        batches.close()


def _input_shape(pipeline: Pipeline) -> tuple:
    """The shape of one batch of inputs, after the pipeline's maps."""
    return tuple(np.shape(_first_batch(pipeline)[0]))


def _stateful(callbacks) -> dict:
    """``{name: callback}`` for callbacks with a state to checkpoint, named by
    class (``early_stopping``, ``early_stopping_1``, ...): stateless callbacks
    may come and go between a run and its resume."""
    named = {}
    for cb in callbacks:
        if hasattr(cb, "state_dict"):
            base = "".join("_" + c.lower() if c.isupper() else c
                           for c in type(cb).__name__).lstrip("_")
            name, i = base, 0
            while name in named:
                i += 1
                name = f"{base}_{i}"
            named[name] = cb
    return named


def _callback_states(callbacks, run) -> dict:
    return {name: cb.state_dict(run) for name, cb in _stateful(callbacks).items()}


class _Checkpointer:
    """Saves the run with everything a resume needs; remembers the last save."""

    def __init__(self, directory, keep, metadata, callbacks, write=True):
        self.directory, self.keep = directory, keep
        self.metadata, self.callbacks = metadata, callbacks
        self.write = write   # False on the ranks other than 0
        self.last_path, self.last_step = None, None

    def save(self, run: Run, epoch_sums, stopped_early=False):
        if not self.write:
            self.last_step = run.step
            return None
        metadata = dict(self.metadata)
        metadata.update(pipeline=run.pipeline.state(), history=run.history,
                        epoch_sums=epoch_sums, stopped_early=stopped_early,
                        scalars=dict(run.writer.history) if run.writer else {})
        self.last_path = save_train_state(self.directory, run.state,
                                          extra=_callback_states(self.callbacks, run),
                                          metadata=metadata, keep=self.keep)
        self.last_step = run.step
        return self.last_path


def _changed_settings(saved: dict, current: dict) -> list[str]:
    """What differs between the settings recorded in a checkpoint's metadata
    (its ``config`` and ``fit`` sections) and this run's, except ``epochs``
    (resuming to train longer is what resume is for) and ``processes`` (a
    distributed run may resume on another number of processes)."""
    changes = []
    for section in ("config", "fit"):
        old, new = saved.get(section), current.get(section)
        if not isinstance(old, dict) or not isinstance(new, dict):
            continue
        for key in sorted(set(old) | set(new)):
            if key not in ("epochs", "processes") and old.get(key) != new.get(key):
                changes.append(f"{key}: checkpoint {old.get(key)!r}, now {new.get(key)!r}")
    return changes


def _load(checkpointer, run, callbacks, verbose, source, override=False):
    """``(path, state, extra, metadata)`` of checkpoint ``source`` (True: the
    latest in the checkpoint directory), or None if there is none.  Removes
    what an interrupted save left first; refuses a checkpoint whose recorded
    settings differ from this run's unless ``override``."""
    removed = remove_stale_files(checkpointer.directory)
    if removed and verbose:
        print(f"removed {len(removed)} file(s) left by an interrupted save in "
              f"{checkpointer.directory}")
    if source is True:
        path = latest_checkpoint(checkpointer.directory)
        if path is None:
            if verbose:
                print(f"no checkpoint in {checkpointer.directory}; starting from step 0")
            return None
        source = checkpointer.directory   # load_checkpoint names older ones if it is damaged
    else:
        path = os.fspath(source)
    state, extra, metadata = restore_train_state(
        source, run.state, extra_like=_callback_states(callbacks, run))
    saved_model = (metadata or {}).get("model")
    if saved_model is not None and saved_model != checkpointer.metadata.get("model"):
        raise CheckpointError(f"{path}: checkpoint belongs to model {saved_model!r}, "
                              f"not {checkpointer.metadata.get('model')!r}")
    changes = _changed_settings(metadata or {}, checkpointer.metadata)
    if changes and not override:
        raise CheckpointError(f"{path}: the checkpoint was saved with other settings "
                              f"({'; '.join(changes)}); resuming would not continue that run. "
                              f"Use the checkpoint's settings, or override them "
                              f"(--override, fit(..., override=True))")
    if changes and verbose:
        print(f"resuming with changed settings: {'; '.join(changes)}")
    return path, state, extra, metadata


def _resume(checkpointer, run, callbacks, verbose, source, world=None, override=False):
    """Load checkpoint ``source`` into ``run``; returns its metadata, or None
    if there is none.  With a ``world`` of several ranks, rank 0 reads it and
    sends it to the others (a failure there stops every rank)."""
    if world is None or world.size == 1:
        loaded = _load(checkpointer, run, callbacks, verbose, source, override)
    else:
        loaded = error = None
        if world.rank == 0:
            try:
                loaded = _load(checkpointer, run, callbacks, verbose, source, override)
            except CheckpointError as e:
                error = e
        loaded, error = broadcast_object((loaded, error))
        if error is not None:
            raise error
    if loaded is None:
        return None
    path, state, extra, metadata = loaded
    run.state = state
    for name, cb in _stateful(callbacks).items():
        cb.load_state_dict(extra[name])
    try:
        run.pipeline.restore(metadata["pipeline"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot restore the input pipeline: {e}") from None
    run.history = {k: list(v) for k, v in metadata.get("history", {}).items()}
    if run.writer is not None:
        for tag, points in metadata.get("scalars", {}).items():
            run.writer.history[tag] = [tuple(p) for p in points]
    checkpointer.last_path, checkpointer.last_step = path, run.step
    if verbose:
        print(f"resumed from {path} (step {run.step}, epoch {run.epoch + 1})")
    return metadata


def _log_histograms(writer, step, params, grads):
    for prefix, tree in (("params", params), ("grads", grads)):
        for name, value in tree_flatten_with_path(tree):
            writer.histogram(f"{prefix}/{name}", value, step)


def _summary_line(epoch, epochs, logs, rate) -> str:
    parts = [f"epoch {epoch + 1}/{epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k != "epoch"]
    return "  ".join(parts) + f"  ({rate:,.0f} examples/s)"


def _step_line(step, loss, examples, batches, duration) -> str:
    """``step 120, loss = 1.234 (1520.3 examples/sec; 0.021 sec/batch)``."""
    return (f"step {step}, loss = {loss:.3f} ({examples / duration:.1f} examples/sec; "
            f"{duration / max(batches, 1):.3f} sec/batch)")


def fit(model, optimizer, train_data, *, epochs: int, batch_size: int = 32,
        validation_data=None, seed: int = 0, loss=None, regularizer=None, augment=None,
        callbacks=(), early_stopping=None, validation_every: int | None = None,
        eval_batch_size: int = 256, checkpoint_dir=None, checkpoint_every: int | None = None,
        keep_checkpoints: int = 5, resume=False, override: bool = False,
        metadata: dict | None = None,
        logdir=None, log_every: int = 10, histogram_every: int | None = 100,
        init_params=None, backend=None, verbose: bool = True,
        print_every: int | None = None, distributed: bool = False,
        drop_remainder: bool = True) -> FitResult:
    """Train ``model`` with ``optimizer`` on ``train_data`` for ``epochs`` epochs.

    ``train_data`` is ``(x, y)`` arrays -- shuffled every epoch from ``seed``
    and cut into ``batch_size`` batches (the remainder of each epoch is
    dropped unless ``drop_remainder=False``: then the last batch is smaller,
    and the same trace runs it, since the step has a symbolic batch size,
    tracejit/polymorphic.py) -- or a ready
    :class:`tracejit.data.Pipeline` yielding ``(x, y)``.  ``augment(images,
    seed) -> images`` (e.g. :func:`tracejit.data.augment.cifar10_distort`)
    runs on each training batch with a per-batch seed.

    Validation on ``validation_data = (x, y)`` runs at each epoch end, or every
    ``validation_every`` steps.  ``early_stopping`` is an :class:`EarlyStopping`
    or a patience (stop after that many validations without a lower
    ``val_loss``, then restore the best parameters).

    Checkpoints go to ``checkpoint_dir`` every ``checkpoint_every`` steps (else
    at each epoch end) and at the end, keeping the last ``keep_checkpoints``;
    ``metadata`` (JSON-able, e.g. the model's name and config) is stored in
    each.  With ``resume=True`` the run continues from the latest one there
    (from step 0 if there is none); ``resume`` may also be the path of one
    checkpoint, e.g. an older one when the latest is damaged.  A resume
    refuses a checkpoint saved with other settings (``metadata['config']``,
    the seed, the batch size; not ``epochs``) unless ``override=True``;
    files left by an interrupted save are removed first.

    With ``logdir``: TensorBoard scalars (``train/loss``, ``train/accuracy``,
    ``learning_rate`` every ``log_every`` steps; ``valid/loss``,
    ``valid/accuracy`` at each validation), histograms of parameters and
    gradients every ``histogram_every`` steps, and ``curves.png`` at the end.

    With ``verbose`` and ``print_every=N``, every N steps a line as in the
    TensorFlow CIFAR-10 tutorial: ``step 120, loss = 1.234 (1520.3
    examples/sec; 0.021 sec/batch)`` (the step's loss; rates averaged over
    the steps since the previous line).

    ``distributed=True`` trains data-parallel across the processes of
    ``mpiexec`` (see the module docstring; a one-process world without
    it): ``batch_size`` is then the global batch, split evenly over the
    ranks, and only rank 0 writes and prints.
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if print_every is not None and int(print_every) < 1:
        raise ValueError(f"print_every must be >= 1, got {print_every}")
    if resume is not False and checkpoint_dir is None:
        raise ValueError("resume needs a checkpoint_dir (new checkpoints are written there)")
    world = init_world() if distributed else None
    rank0 = world is None or world.rank == 0
    shards = 1 if world is None else world.size
    verbose = verbose and rank0
    pipeline = _make_pipeline(train_data, batch_size, seed, augment, world, drop_remainder)
    callbacks = list(callbacks)
    if early_stopping is not None:
        callbacks.append(early_stopping if isinstance(early_stopping, EarlyStopping)
                         else EarlyStopping(patience=int(early_stopping)))
    if any(isinstance(cb, EarlyStopping) for cb in callbacks) and validation_data is None:
        raise ValueError("early stopping needs validation_data")

    state = init_train_state(model, optimizer, _input_shape(pipeline)[1:], seed=seed,
                             params=init_params)
    train_step = make_train_step(model, optimizer, loss=loss, regularizer=regularizer,
                                 backend=backend, distributed=distributed)
    eval_step = make_eval_step(model, loss=loss, backend=backend) if validation_data else None
    writer = SummaryWriter(logdir) if logdir is not None and rank0 else None
    run = Run(state=state, pipeline=pipeline, epochs=int(epochs), writer=writer)
    metadata = dict(metadata or {})
    fit_info = {"epochs": int(epochs), "batch_size": pipeline.batch_size * shards,
                "seed": pipeline.seed}
    if distributed:
        fit_info["processes"] = shards
    metadata.setdefault("fit", fit_info)
    checkpointer = (_Checkpointer(os.fspath(checkpoint_dir), keep_checkpoints, metadata,
                                  callbacks, write=rank0)
                    if checkpoint_dir is not None else None)
    epoch_sums = {"loss": 0.0, "accuracy": 0.0, "examples": 0}
    stopped_early = False
    try:
        if resume is not False:
            saved = _resume(checkpointer, run, callbacks, verbose, resume, world, override)
            if saved is not None:
                epoch_sums = saved.get("epoch_sums", epoch_sums)
                stopped_early = run.stop_training = bool(saved.get("stopped_early", False))
        if writer is not None and run.step == 0:   # the graph, once per run
            writer.add_graph_def(training_graph(model, optimizer, run.state,
                                                *_first_batch(pipeline)[:2], loss=loss,
                                                regularizer=regularizer))
        for cb in callbacks:
            cb.on_train_begin(run)

        def validate(logs):
            result = evaluate(eval_step, run.state, validation_data, batch_size=eval_batch_size)
            logs.update(val_loss=result["loss"], val_accuracy=result["accuracy"])
            if writer is not None:
                writer.scalars({"valid/loss": result["loss"],
                                "valid/accuracy": result["accuracy"]}, run.step)

        while not run.stop_training and run.epoch < run.epochs:
            epoch = run.epoch
            bar = ProgressBar(pipeline.num_batches * pipeline.batch_size * shards,
                              desc=f"epoch {epoch + 1}/{run.epochs}",
                              disable=None if verbose else True)
            started, seen = time.perf_counter(), 0
            mark_time, mark_seen, mark_step = started, 0, run.step
            for x, y in pipeline:
                step = run.step + 1   # the step number after this update
                with_grads = bool(writer and histogram_every and step % histogram_every == 0)
                out = train_step(run.state, x, y, with_grads=with_grads)
                run.state = out[0]
                metrics = {k: float(v) for k, v in out[1].items()}
                n = len(x) * shards   # metrics are means over all ranks' examples
                seen += n
                epoch_sums["loss"] += metrics["loss"] * n
                epoch_sums["accuracy"] += metrics["accuracy"] * n
                epoch_sums["examples"] += n
                bar.update(n, loss=metrics["loss"], accuracy=metrics["accuracy"])
                if verbose and print_every and step % print_every == 0:
                    now = time.perf_counter()
                    duration = max(now - mark_time, 1e-9)
                    print(_step_line(step, metrics["loss"], seen - mark_seen, step - mark_step,
                                     duration), flush=True)
                    mark_time, mark_seen, mark_step = now, seen, step
                logs = {"step": step, **metrics}
                if writer is not None:
                    if step % log_every == 0:
                        writer.scalars({"train/loss": metrics["loss"],
                                        "train/accuracy": metrics["accuracy"],
                                        "learning_rate": metrics["learning_rate"]}, step)
                    if with_grads:
                        _log_histograms(writer, step, run.state.params, out[2])
                if validation_every and eval_step and step % validation_every == 0:
                    validate(logs)
                for cb in callbacks:
                    cb.on_step_end(run, logs)
                if checkpointer and checkpoint_every and step % checkpoint_every == 0:
                    checkpointer.save(run, epoch_sums)
                if run.stop_training:
                    break
            bar.close()
            if run.epoch == epoch:   # stopped in the middle of the epoch
                break
            count = max(epoch_sums["examples"], 1)
            logs = {"epoch": epoch, "loss": epoch_sums["loss"] / count,
                    "accuracy": epoch_sums["accuracy"] / count}
            epoch_sums = {"loss": 0.0, "accuracy": 0.0, "examples": 0}
            if eval_step and not validation_every:
                validate(logs)
            for key, value in logs.items():
                if key != "epoch":
                    run.history.setdefault(key, []).append(value)
            if verbose:
                rate = seen / max(time.perf_counter() - started, 1e-9)
                print(_summary_line(epoch, run.epochs, logs, rate), flush=True)
            for cb in callbacks:
                cb.on_epoch_end(run, logs)
            if checkpointer and not checkpoint_every:
                checkpointer.save(run, epoch_sums)

        stopped_early = stopped_early or any(
            isinstance(cb, EarlyStopping) and cb.stopped_step is not None for cb in callbacks)
        for cb in callbacks:
            cb.on_train_end(run, {"step": run.step})
        if checkpointer:
            checkpointer.save(run, epoch_sums, stopped_early=stopped_early)
        if writer is not None:
            writer.plot(os.path.join(writer.logdir, "curves.png"))
    finally:
        if writer is not None:
            writer.close()
    return FitResult(state=run.state, history=run.history, stopped_early=stopped_early,
                     checkpoint=checkpointer.last_path if checkpointer else None)
