"""Exponential moving averages of the parameters (TensorFlow's
``ExponentialMovingAverage``; the CIFAR-10 tutorial evaluates with them)."""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from ..tree import tree_map

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage:
    """Shadow copies of the parameters, ``shadow <- shadow - (1 - d) * (shadow - value)``::

        ema = optim.ExponentialMovingAverage(0.9999)
        ema_state = ema.init(params)                   # {"average": copy of params}
        ema_state = ema.update(ema_state, params, step)     # after each optimizer update
        eval_params = ema.average(ema_state)

    ``d`` is ``decay``, or with ``step`` (TensorFlow's ``num_updates``)
    ``min(decay, (1 + step) / (10 + step))``, so that early averages follow
    the parameters quickly.
    """

    def __init__(self, decay):
        if not 0 <= decay <= 1:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.decay = decay

    def init(self, params):
        """Shadows starting at the parameters' values (copies, when not traced)."""
        return {"average": tree_map(
            lambda p: np.array(p, copy=True) if isinstance(p, np.ndarray) else p, params)}

    def update(self, ema_state, params, step=None):
        def move(shadow, value):
            dtype = tnp.result_type_of(shadow)
            d = self.decay
            if step is not None:
                n = tnp.astype(step, dtype)
                d = tnp.minimum(d, (1.0 + n) / (10.0 + n))
            return tnp.astype(shadow - (1 - d) * (shadow - value), dtype)
        return {"average": tree_map(move, ema_state["average"], params)}

    def average(self, ema_state):
        """The averaged parameters, shaped like the parameters."""
        return ema_state["average"]
