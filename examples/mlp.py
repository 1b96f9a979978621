"""A 784-300-100-10 ReLU network (MNIST-sized) written with tracejit.numpy.

The parameters are a dict ``{"W1", "b1", "W2", "b2", "W3", "b3"}``; the loss
is softmax cross-entropy with a stable log-sum-exp. Print its IR with::

    tracejit ir examples/mlp.py:loss \\
        --arg params.W1=f32[784,300] --arg params.b1=f32[300] \\
        --arg params.W2=f32[300,100] --arg params.b2=f32[100] \\
        --arg params.W3=f32[100,10] --arg params.b3=f32[10] \\
        --arg x=f32[256,784] --arg y=i32[256] --stage simplified

or run this file to evaluate the loss on a random batch, eagerly and jitted.
"""
import numpy as np

import tracejit
import tracejit.numpy as tnp

SIZES = (784, 300, 100, 10)


def init_params(key):
    """He-normal weights (std sqrt(2 / fan_in), for ReLU) and zero biases.
    ``key`` is a ``tracejit.random`` key or an int seed."""
    if isinstance(key, int):
        key = tracejit.random.key(key)
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:]), start=1):
        key, sub = tracejit.random.split(key)
        params[f"W{i}"] = tracejit.random.normal(sub, (n_in, n_out)) * float(np.sqrt(2.0 / n_in))
        params[f"b{i}"] = tnp.zeros(n_out, tnp.float32)
    return params


def predict(params, x):
    """Logits ``[batch, 10]`` for inputs ``x: [batch, 784]``."""
    h = tnp.maximum(x @ params["W1"] + params["b1"], 0.0)
    h = tnp.maximum(h @ params["W2"] + params["b2"], 0.0)
    return h @ params["W3"] + params["b3"]


def loss(params, x, y):
    """Mean softmax cross-entropy of integer labels ``y: [batch]``."""
    logits = predict(params, x)
    m = tnp.max(logits, axis=1, keepdims=True)
    logp = logits - m - tnp.log(tnp.sum(tnp.exp(logits - m), axis=1, keepdims=True))
    return -tnp.mean(logp[tnp.arange(x.shape[0]), y])


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    params = init_params(0)
    x = rng.random((256, 784), dtype=np.float32)
    y = rng.integers(0, 10, 256).astype(np.int32)
    print(f"eager loss  {float(loss(params, x, y)):.6f}")
    print(f"jitted loss {float(tracejit.jit(loss)(params, x, y)):.6f}")
