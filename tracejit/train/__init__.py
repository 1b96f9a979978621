"""Training: the ``fit`` loop and its building blocks, checkpoints, logs.

- :func:`fit` -- train a model with validation, early stopping, checkpoints,
  exact resume, TensorBoard logs and a progress bar (:mod:`.loop`).
- :func:`init_train_state`, :func:`make_train_step`, :func:`make_eval_step`,
  :func:`evaluate` -- for hand-written loops (:mod:`.steps`).
- :class:`TrainState`, :func:`save_train_state`, :func:`restore_train_state`
  (:mod:`.state`); :func:`save_checkpoint`, :func:`load_checkpoint`, ...
  (:mod:`.checkpoint`).
- :class:`EarlyStopping`, :class:`Callback`, :class:`LambdaCallback` (:mod:`.callbacks`).
- :class:`SummaryWriter`, :class:`ProgressBar` (:mod:`.logging`).
- :class:`DNNClassifier` -- TensorFlow's canned estimator, ``fit`` /
  ``predict`` / ``evaluate`` (:mod:`.estimator`).
"""
from .callbacks import Callback, EarlyStopping, LambdaCallback
from .checkpoint import (CheckpointError, latest_checkpoint, list_checkpoints,
                         load_checkpoint, save_checkpoint)
from .logging import ProgressBar, SummaryWriter
from .loop import FitResult, Run, fit
from .state import TrainState, restore_train_state, save_train_state
from .steps import accuracy, evaluate, init_train_state, make_eval_step, make_train_step
from .estimator import DNNClassifier

__all__ = [
    "fit", "FitResult", "Run",
    "init_train_state", "make_train_step", "make_eval_step", "evaluate", "accuracy",
    "TrainState", "save_train_state", "restore_train_state",
    "save_checkpoint", "load_checkpoint", "latest_checkpoint", "list_checkpoints",
    "CheckpointError",
    "Callback", "EarlyStopping", "LambdaCallback",
    "SummaryWriter", "ProgressBar",
    "DNNClassifier",
]
