"""A tiny model and optimizer built on tracejit's core only, so the loop tests
exercise fit/resume/checkpoints without depending on tracejit.nn layers."""
import numpy as np

import tracejit
from tracejit import nn, random
from tracejit.data import load_digits


class TinyMLP:
    """64 -> hidden (ReLU, dropout while training) -> 10."""

    def __init__(self, hidden=16, rate=0.1):
        self.hidden, self.rate = hidden, rate

    def init(self, key, input_shape):
        k1, k2 = random.split(key)
        d = input_shape[-1]
        return {
            "dense1": {"kernel": np.asarray(random.normal(k1, (d, self.hidden))) * np.float32(np.sqrt(2 / d)),
                       "bias": np.zeros(self.hidden, np.float32)},
            "logits": {"kernel": np.asarray(random.normal(k2, (self.hidden, 10)))
                                 * np.float32(np.sqrt(1 / self.hidden)),
                       "bias": np.zeros(10, np.float32)},
        }

    def apply(self, params, x, train=False, key=None):
        h = nn.relu(x @ params["dense1"]["kernel"] + params["dense1"]["bias"])
        if train:
            h = nn.dropout(h, self.rate, key)
        return h @ params["logits"]["kernel"] + params["logits"]["bias"]


class MomentumSGD:
    """Momentum SGD with an exponentially decaying learning rate (state: velocity)."""

    def __init__(self, lr=0.1, momentum=0.9, decay=0.99):
        self.lr, self.momentum, self.decay = lr, momentum, decay

    def learning_rate(self, step):
        return self.lr * self.decay ** tracejit.numpy.astype(step, "float32")

    def init(self, params):
        return {"step": np.zeros((), np.int64),
                "velocity": tracejit.tree_map(np.zeros_like, params)}

    def update(self, grads, state, params):
        lr = self.learning_rate(state["step"])
        velocity = tracejit.tree_map(lambda v, g: self.momentum * v + g, state["velocity"], grads)
        params = tracejit.tree_map(lambda p, v: p - lr * v, params, velocity)
        return params, {"step": state["step"] + 1, "velocity": velocity}


def digits(n_train=400, n_test=120):
    (x, y), (xt, yt) = load_digits()
    return (x[:n_train], y[:n_train]), (xt[:n_test], yt[:n_test])
