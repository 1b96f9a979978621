"""Per-example gradients with ``vmap(grad(loss))``, and what they are for.

The gradient of the mean loss averages away how much each example
contributes; many methods need the contributions themselves: differential
privacy (DP-SGD clips each example's gradient before averaging), influence
and data-quality scores, gradient-noise estimates. ``tracejit.vmap`` turns
the one-example gradient into a batched program (one compiled kernel
sequence, no Python loop)::

    per_example = tracejit.jit(tracejit.vmap(tracejit.grad(loss), in_axes=(None, 0, 0)))
    grads = per_example(params, xs, ys)      # each leaf: [batch, *param.shape]

This script trains a small softmax classifier on the scikit-learn digits
with DP-SGD-style clipped per-example gradients, checks them against a
Python loop, and prints the spread of per-example gradient norms.
"""
import argparse

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit.data import load_digits


def loss(params, x, y):
    """Softmax cross-entropy of ONE example: ``x: [features]``, ``y``: int label."""
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    m = tnp.max(logits)
    return m + tnp.log(tnp.sum(tnp.exp(logits - m))) - logits[y]


per_example_grads = tracejit.vmap(tracejit.grad(loss), in_axes=(None, 0, 0))


def clipped_mean(grads, clip):
    """DP-SGD's aggregation: scale each example's gradient to norm <= clip."""
    sq = sum(tnp.sum(tnp.reshape(g, (g.shape[0], -1)) ** 2, axis=1)
             for g in tracejit.tree_leaves(grads))
    scale = tnp.minimum(1.0, clip / (tnp.sqrt(sq) + 1e-12))
    return tracejit.tree_map(
        lambda g: tnp.mean(g * tnp.reshape(scale, (-1,) + (1,) * (g.ndim - 1)), axis=0), grads)


@tracejit.jit
def train_step(params, x, y, lr, clip):
    grads = clipped_mean(per_example_grads(params, x, y), clip)
    return tracejit.tree_map(lambda p, g: p - lr * g, params, grads)


def accuracy(params, x, y):
    logits = tnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    return float(np.mean(np.argmax(np.asarray(logits), axis=1) == y))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=0.5)
    args = ap.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits()
    rng = np.random.default_rng(0)
    params = {"w1": (rng.standard_normal((64, args.hidden)) * 0.2).astype(np.float32),
              "b1": np.zeros(args.hidden, np.float32),
              "w2": (rng.standard_normal((args.hidden, 10)) * 0.2).astype(np.float32),
              "b2": np.zeros(10, np.float32)}

    # the batched gradients are the loop's, example by example
    xb, yb = x_train[:8], y_train[:8]
    batched = tracejit.jit(per_example_grads)(params, xb, yb)
    looped = [tracejit.grad(loss)(params, xi, yi) for xi, yi in zip(xb, yb)]
    for k in params:
        np.testing.assert_allclose(batched[k], np.stack([g[k] for g in looped]),
                                   rtol=1e-4, atol=1e-6)
    norms = np.sqrt(sum(np.sum(np.reshape(g, (8, -1)) ** 2, axis=1) for g in batched.values()))
    print("per-example gradient norms of 8 examples:", np.array2string(norms, precision=3))

    for _ in range(args.steps):
        i = rng.integers(0, len(x_train), args.batch_size)
        params = train_step(params, x_train[i], y_train[i], args.lr, args.clip)
    print(f"test accuracy {accuracy(params, x_test, y_test):.3f} after {args.steps} "
          f"clipped per-example-gradient steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
