"""The benchmark workloads, written once with tracejit.numpy; bench_cpu.py
has the NumPy, JAX and PyTorch versions of the same computations."""
import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit import lax
from tracejit.nn import functional as F


# --- elementwise chain ----------------------------------------------------------------
def chain(x):
    return tnp.tanh(x * 0.7 - 0.3) * F.sigmoid(x) + 0.5 * x * x


# --- softmax cross-entropy ------------------------------------------------------------
def log_softmax(x):
    """As jax.nn.log_softmax: the shift by the row maximum is a constant for
    differentiation (it cancels), so the gradient is softmax - onehot."""
    z = x - tracejit.stop_gradient(tnp.max(x, axis=1, keepdims=True))
    return z - tnp.log(tnp.sum(tnp.exp(z), axis=1, keepdims=True))


def softmax_ce(logits, labels):
    logp = log_softmax(logits)
    return -tnp.mean(logp[tnp.arange(logits.shape[0]), labels])


softmax_ce_grad = tracejit.value_and_grad(softmax_ce)


def softmax_ce_take_along_axis(logits, labels):
    logp = log_softmax(logits)
    return -tnp.mean(tnp.take_along_axis(logp, labels[:, None], axis=1))


def softmax_ce_one_hot(logits, labels):
    logp = log_softmax(logits)
    return -tnp.mean(tnp.sum(logp * F.one_hot(labels, logits.shape[1]), axis=1))


def softmax_ce_nn(logits, labels):
    return tnp.mean(F.sparse_softmax_cross_entropy_with_logits(labels, logits))


#: The four idiomatic ways to write the cross-entropy (issue 16).
CE_FORMS = {"index": softmax_ce, "take_along_axis": softmax_ce_take_along_axis,
            "one_hot": softmax_ce_one_hot, "nn op": softmax_ce_nn}


def ce_data(n=4096, k=1000, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)).astype(np.float32) * 3,
            rng.integers(0, k, n).astype(np.int32))


# --- MLP 784-300-100-10 ----------------------------------------------------------------
def mlp_data(batch=256, sizes=(784, 300, 100, 10), seed=0):
    rng = np.random.default_rng(seed)
    params = [{"w": (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32),
               "b": np.zeros(b, np.float32)} for a, b in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch).astype(np.int32)
    return params, x, y


def mlp_loss(params, x, y):
    h = x
    for i, p in enumerate(params):
        h = h @ p["w"] + p["b"]
        if i < len(params) - 1:
            h = tnp.maximum(h, 0)
    return softmax_ce(h, y)


def mlp_step(params, x, y, lr):
    loss, grads = tracejit.value_and_grad(mlp_loss)(params, x, y)
    return tracejit.tree_map(lambda p, g: p - lr * g, params, grads), loss


# --- CIFAR-10 tutorial CNN (no LRN) ------------------------------------------------------
CNN_SHAPES = {"conv1": (5, 5, 3, 64), "conv2": (5, 5, 64, 64), "local3": (6 * 6 * 64, 384),
              "local4": (384, 192), "logits": (192, 10)}


def cnn_data(batch=64, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in CNN_SHAPES.items():
        fan_in = int(np.prod(shape[:-1]))
        params[name] = {"w": (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32),
                        "b": np.zeros(shape[-1], np.float32)}
    x = rng.standard_normal((batch, 24, 24, 3)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    return params, x, y


def cnn_loss(params, x, y):
    h = x
    for name in ("conv1", "conv2"):
        p = params[name]
        h = tnp.maximum(F.conv2d(h, p["w"], padding="SAME") + p["b"], 0)
        h = F.max_pool(h, 3, 2, "SAME")
    h = tnp.reshape(h, (h.shape[0], -1))
    for name in ("local3", "local4", "logits"):
        p = params[name]
        h = h @ p["w"] + p["b"]
        if name != "logits":
            h = tnp.maximum(h, 0)
    return softmax_ce(h, y)


def cnn_step(params, x, y, lr):
    loss, grads = tracejit.value_and_grad(cnn_loss)(params, x, y)
    return tracejit.tree_map(lambda p, g: p - lr * g, params, grads), loss


# --- LSTM over 32 steps with scan ------------------------------------------------------------
def lstm_data(hidden=128, inputs=64, batch=64, steps=32, seed=0):
    rng = np.random.default_rng(seed)
    params = {"wx": (rng.standard_normal((inputs, 4 * hidden)) / np.sqrt(inputs)).astype(np.float32),
              "wh": (rng.standard_normal((hidden, 4 * hidden)) / np.sqrt(hidden)).astype(np.float32),
              "b": np.zeros(4 * hidden, np.float32)}
    xs = rng.standard_normal((steps, batch, inputs)).astype(np.float32)
    return params, xs


def lstm_loss(params, xs):
    batch, hidden = xs.shape[1], params["wh"].shape[0]

    def cell(carry, x):
        h, c = carry
        z = x @ params["wx"] + h @ params["wh"] + params["b"]
        i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = F.sigmoid(f) * c + F.sigmoid(i) * tnp.tanh(g)
        h = F.sigmoid(o) * tnp.tanh(c)
        return (h, c), h
    zeros = tnp.zeros((batch, hidden), "float32")
    _, hs = tracejit.scan(cell, (zeros, zeros), xs)
    return tnp.mean(hs * hs)


lstm_grad = tracejit.value_and_grad(lstm_loss)
__all__ = ["chain", "softmax_ce", "softmax_ce_grad", "mlp_step", "cnn_step", "lstm_grad", "lax"]
