"""Callbacks for :func:`tracejit.train.fit`, and early stopping.

A callback is an object with any of these methods (the base class
:class:`Callback` has them all as no-ops)::

    on_train_begin(run)          # before the first step (also after a resume)
    on_step_end(run, logs)       # logs: step, loss, accuracy, learning_rate, and
                                 #       val_loss/val_accuracy on evaluation steps
    on_epoch_end(run, logs)      # logs: epoch, train and validation metrics
    on_train_end(run, logs)

``run`` is the :class:`tracejit.train.loop.Run` in progress: ``run.state`` is
the current :class:`TrainState`, ``run.stop_training = True`` ends training
after the current step.  A callback that keeps state across a resume also
defines ``state_dict(run)`` (a tree of arrays and Python scalars, saved in
every checkpoint; its structure must not change during a run) and
``load_state_dict(tree)``, which ``fit`` calls before ``on_train_begin`` when
it resumes.
"""
from __future__ import annotations

import math

import numpy as np

from ..tree import tree_map

__all__ = ["Callback", "EarlyStopping", "LambdaCallback"]


class Callback:
    """Base class: every hook is a no-op."""

    def on_train_begin(self, run):
        pass

    def on_step_end(self, run, logs):
        pass

    def on_epoch_end(self, run, logs):
        pass

    def on_train_end(self, run, logs):
        pass


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_step_end=lambda run, logs: ...)``."""

    def __init__(self, on_train_begin=None, on_step_end=None, on_epoch_end=None,
                 on_train_end=None):
        for name, fn in (("on_train_begin", on_train_begin), ("on_step_end", on_step_end),
                         ("on_epoch_end", on_epoch_end), ("on_train_end", on_train_end)):
            if fn is not None:
                setattr(self, name, fn)


def _copy(tree):
    # A real copy: the training step donates (overwrites) the arrays it is given.
    return tree_map(lambda a: np.array(a, copy=True), tree)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` evaluations.

    As in the book (Ch. 11): evaluate on validation data at regular intervals,
    keep a copy of the best ("winner") parameters, stop after ``patience``
    evaluations without a new winner, and with ``restore_best`` put the winner
    back into the final state.  An improvement must beat the best value by more
    than ``min_delta``.  ``mode`` is ``"min"`` (losses) or ``"max"``
    (accuracies); ``"auto"`` picks ``"max"`` for names containing "acc".

    Evaluations happen where ``fit`` validates: at each epoch end, or every
    ``validation_every`` steps.  The winner and the counters are saved in
    checkpoints, so a resumed run stops exactly where an uninterrupted one would.
    """

    def __init__(self, patience: int = 5, restore_best: bool = True,
                 monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0):
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.patience = int(patience)
        self.restore_best = bool(restore_best)
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step = -1
        self.wait = 0
        self.best_params = None
        self.stopped_step = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value, params, step: int) -> bool:
        """Record one evaluation; return True when training should stop."""
        value = float(value)
        if self._improved(value):
            self.best, self.best_step, self.wait = value, int(step), 0
            if self.restore_best:
                self.best_params = _copy(params)
            return False
        self.wait += 1
        return self.wait >= self.patience

    def _check(self, run, logs):
        if self.monitor in logs and self.update(logs[self.monitor], run.state.params, run.step):
            self.stopped_step = run.step
            run.stop_training = True

    def on_step_end(self, run, logs):
        self._check(run, logs)

    def on_epoch_end(self, run, logs):
        self._check(run, logs)

    def on_train_end(self, run, logs):
        if self.restore_best and self.best_step >= 0:
            run.state = run.state.replace(params=_copy(self.best_params))

    def state_dict(self, run):
        tree = {"best": float(self.best), "best_step": self.best_step, "wait": self.wait}
        if self.restore_best:
            # Before the first evaluation the current params stand in, so every
            # checkpoint has the same structure.
            tree["best_params"] = run.state.params if self.best_params is None else self.best_params
        return tree

    def load_state_dict(self, tree):
        self.best = float(tree["best"])
        self.best_step = int(tree["best_step"])
        self.wait = int(tree["wait"])
        if self.restore_best and self.best_step >= 0:
            self.best_params = tree["best_params"]
