"""An optimizer that also keeps moving averages of the parameters.

The CIFAR-10 tutorial updates ``ExponentialMovingAverage`` shadows of every
variable right after each gradient step and evaluates with the shadows.
Wrapping the optimizer puts the shadows in the optimizer state, so the
jitted training step, checkpoints and resume handle them with no extra
plumbing::

    opt = WithMovingAverages(optim.sgd(0.1), decay=0.9999)
    state = init_train_state(model, opt, input_shape)
    ...
    eval_params = opt.averages(state.opt_state)
"""
from __future__ import annotations

import numpy as np

from ..optim import ExponentialMovingAverage

__all__ = ["WithMovingAverages"]


class WithMovingAverages:
    """``optimizer`` plus ``ExponentialMovingAverage(decay)`` shadows of the
    parameters, updated after every step with ``num_updates`` = the number of
    steps done (TensorFlow's ``min(decay, (1 + n) / (10 + n))``)."""

    def __init__(self, optimizer, decay: float):
        self.optimizer = optimizer
        self.ema = ExponentialMovingAverage(decay)

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    def learning_rate_at(self, step):
        inner = self.optimizer
        if hasattr(inner, "learning_rate_at"):
            return inner.learning_rate_at(step)
        lr = inner.learning_rate
        return lr(step) if callable(lr) else lr

    def init(self, params):
        return {"optimizer": self.optimizer.init(params), "ema": self.ema.init(params),
                "step": np.zeros((), np.int32)}

    def update(self, grads, state, params, **kwargs):
        params, inner = self.optimizer.update(grads, state["optimizer"], params, **kwargs)
        step = state["step"] + 1
        ema = self.ema.update(state["ema"], params, step)
        return params, {"optimizer": inner, "ema": ema, "step": step}

    def averages(self, state):
        """The averaged parameters in an optimizer state of this wrapper."""
        return self.ema.average(state["ema"])
