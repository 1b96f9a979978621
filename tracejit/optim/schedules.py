"""Learning-rate schedules (Hands-On ML, "Learning Rate Scheduling").

A schedule is a function ``schedule(step) -> learning rate`` (float32) of
the number of updates done so far, with TensorFlow's names and formulas.
Given to an optimizer as its learning rate, it is evaluated on the step
held in the optimizer's state, inside the compiled training step::

    lr = optim.exponential_decay(0.1, decay_steps=10_000, decay_rate=0.1)
    opt = optim.momentum(lr, momentum=0.9)

- ``piecewise_constant(boundaries, values)``: ``values[i]`` while
  ``boundaries[i-1] < step <= boundaries[i]``.
- ``exponential_decay(learning_rate, decay_steps, decay_rate, staircase=False)``:
  ``learning_rate * decay_rate ** (step / decay_steps)``; the book's
  exponential scheduling ``eta0 * 10 ** (-t / r)`` is
  ``exponential_decay(eta0, r, 0.1)``.
- ``inverse_time_decay(learning_rate, decay_steps, decay_rate=1.0, power=1.0,
  staircase=False)``: ``learning_rate * (1 + decay_rate * step / decay_steps) ** -power``;
  the book's power scheduling ``eta0 * (1 + t / r) ** -c`` is
  ``inverse_time_decay(eta0, r, 1.0, c)``, TensorFlow's
  ``inverse_time_decay`` the case ``power=1``.

``staircase`` floors ``step / decay_steps`` (a decay every ``decay_steps``).

Performance scheduling, which reacts to the validation error, runs on the
host: :class:`ReduceLROnPlateau`.
"""
from __future__ import annotations

import math

from .. import numpy as tnp

__all__ = ["piecewise_constant", "exponential_decay", "inverse_time_decay",
           "ReduceLROnPlateau"]


def _progress(step, decay_steps, staircase):
    if decay_steps <= 0:
        raise ValueError(f"decay_steps must be positive, got {decay_steps}")
    p = tnp.astype(step, "float32") / float(decay_steps)
    return tnp.floor(p) if staircase else p


def piecewise_constant(boundaries, values):
    """``values[0]`` up to and including step ``boundaries[0]``, ``values[1]``
    up to ``boundaries[1]``, ..., ``values[-1]`` after the last boundary."""
    boundaries, values = list(boundaries), [float(v) for v in values]
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"piecewise_constant needs one more value than boundaries, got "
                         f"{len(boundaries)} boundaries and {len(values)} values")
    if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
        raise ValueError(f"boundaries must increase, got {boundaries}")

    def schedule(step):
        lr = tnp.full((), values[0], "float32")
        for boundary, value in zip(boundaries, values[1:]):
            lr = tnp.where(tnp.greater(step, boundary), value, lr)
        return lr
    return schedule


def exponential_decay(learning_rate, decay_steps, decay_rate, staircase=False):
    """``learning_rate * decay_rate ** (step / decay_steps)``."""
    def schedule(step):
        return learning_rate * tnp.power(tnp.asarray(decay_rate, "float32"),
                                         _progress(step, decay_steps, staircase))
    return schedule


def inverse_time_decay(learning_rate, decay_steps, decay_rate=1.0, power=1.0, staircase=False):
    """``learning_rate * (1 + decay_rate * step / decay_steps) ** -power``."""
    def schedule(step):
        base = 1.0 + decay_rate * _progress(step, decay_steps, staircase)
        return learning_rate * tnp.power(base, -float(power))
    return schedule


class ReduceLROnPlateau:
    """Performance scheduling: divide the learning rate by ``1 / factor`` when
    the monitored value (a validation loss) has not improved for
    ``patience`` evaluations, down to ``min_lr`` (Keras's callback, host side).

    It runs outside the compiled step and passes the rate in as an argument,
    so the step compiles once::

        plateau = optim.ReduceLROnPlateau(0.01, factor=0.5, patience=3)

        @tracejit.jit
        def train_step(params, opt_state, x, y, lr):
            grads = tracejit.grad(loss)(params, x, y)
            return opt.update(grads, opt_state, params, learning_rate=lr)

        for epoch in range(n_epochs):
            ...  # train_step(..., np.float32(plateau.learning_rate))
            plateau.update(validation_loss)

    An improvement must beat the best value by more than ``min_delta``
    (``mode="max"`` for accuracies); the ``cooldown`` evaluations after a
    reduction do not count towards the next one.
    """

    def __init__(self, learning_rate, factor=0.1, patience=10, min_lr=0.0, *, min_delta=1e-4,
                 mode="min", cooldown=0):
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.learning_rate = float(learning_rate)
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)
        self.min_delta, self.mode, self.cooldown = abs(float(min_delta)), mode, int(cooldown)
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_left = 0

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value) -> float:
        """Record one evaluation of the monitored value; returns the learning rate."""
        value = float(value)
        in_cooldown = self.cooldown_left > 0
        if in_cooldown:
            self.cooldown_left -= 1
        if self._improved(value):
            self.best, self.wait = value, 0
        elif not in_cooldown:
            self.wait += 1
            if self.wait >= self.patience:
                self.learning_rate = max(self.learning_rate * self.factor, self.min_lr)
                self.wait, self.cooldown_left = 0, self.cooldown
        return self.learning_rate

    def state_dict(self) -> dict:
        """The counters, to save with a checkpoint."""
        return {"learning_rate": self.learning_rate, "best": self.best, "wait": self.wait,
                "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state: dict):
        self.learning_rate, self.best = float(state["learning_rate"]), float(state["best"])
        self.wait, self.cooldown_left = int(state["wait"]), int(state["cooldown_left"])
