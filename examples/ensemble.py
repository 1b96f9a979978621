"""An ensemble of k networks trained as ONE batched step with ``vmap``.

Write the training step of one model, then map it over a leading "model"
axis of the parameters (``in_axes=(0, None, None)``: each model has its
own parameters, all see the same batch). Initialization is mapped over
random keys the same way, so the k models start from different points::

    init_all = tracejit.vmap(init, in_axes=0)            # keys [k, 2] -> params [k, ...]
    step_all = tracejit.jit(tracejit.vmap(step, in_axes=(0, None, None)))

One compiled program updates all k models: the matrix products become
batched ones, the elementwise work one fused kernel for the whole
ensemble. The script trains k MLPs on the scikit-learn digits, checks the
batched step against stepping each model alone, and compares each model's
test accuracy with the ensemble's (averaged probabilities).
"""
import argparse

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit.data import load_digits


def init(key, hidden=32):
    k1, k2 = tracejit.random.split(key)
    return {"w1": tracejit.random.normal(k1, (64, hidden)) * 0.2,
            "b1": tnp.zeros(hidden, tnp.float32),
            "w2": tracejit.random.normal(k2, (hidden, 10)) * 0.2,
            "b2": tnp.zeros(10, tnp.float32)}


def logits(params, x):
    return tnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def loss(params, x, y):
    z = logits(params, x)
    m = tnp.max(z, axis=1, keepdims=True)
    logp = z - m - tnp.log(tnp.sum(tnp.exp(z - m), axis=1, keepdims=True))
    return -tnp.mean(tnp.take_along_axis(logp, y[:, None], axis=1))


def step(params, x, y, lr=0.3):
    """One SGD step of ONE model."""
    g = tracejit.grad(loss)(params, x, y)
    return tracejit.tree_map(lambda p, gi: p - lr * gi, params, g)


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits()
    rng = np.random.default_rng(0)

    keys = tracejit.random.split(tracejit.random.key(0), args.models)
    params = tracejit.vmap(init)(keys)                       # every leaf: [models, ...]
    step_all = tracejit.jit(tracejit.vmap(step, in_axes=(0, None, None)))
    predict_all = tracejit.jit(tracejit.vmap(logits, in_axes=(0, None)))

    # the batched step is each model's own step
    i = rng.integers(0, len(x_train), args.batch_size)
    stepped = step_all(params, x_train[i], y_train[i])
    for m in range(args.models):
        alone = step(tracejit.tree_map(lambda p: p[m], params), x_train[i], y_train[i])
        for k in alone:
            np.testing.assert_allclose(stepped[k][m], alone[k], rtol=1e-4, atol=1e-5)

    for _ in range(args.steps):
        i = rng.integers(0, len(x_train), args.batch_size)
        params = step_all(params, x_train[i], y_train[i])
    probs = softmax(np.asarray(predict_all(params, x_test)))   # [models, n, 10]
    each = (probs.argmax(-1) == y_test).mean(axis=1)
    together = float((probs.mean(0).argmax(-1) == y_test).mean())
    print("test accuracy of each model:", np.array2string(each, precision=3))
    print(f"test accuracy of the ensemble {together:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
