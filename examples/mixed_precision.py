"""Mixed-precision training: float32 master weights, 16-bit compute.

The recipe (as in JAX and PyTorch AMP): keep the parameters and the
optimizer state in float32; in the loss, cast the parameters and the batch
to bfloat16 or float16 and compute the forward pass there (tracejit's
kernels compute 16-bit values in float32 and round after each operation;
products and sums accumulate in float32); cast the loss back to float32.
The gradient of the float32 parameters flows back through the casts and
comes out float32::

    def loss(params, x, y):
        p16 = tree_map(lambda p: p.astype(dtype), params)     # compute copy
        logits = model(p16, x.astype(dtype))
        return cross_entropy(logits.astype(np.float32), y)     # float32 loss

float16 has 5 exponent bits: small gradients underflow to zero. Loss
scaling multiplies the loss by ``scale`` before differentiating and divides
the gradients by it afterwards; a step whose gradients are not finite is
skipped and the scale halved, and the scale doubles after ``period``
finite steps (dynamic loss scaling). bfloat16 has float32's exponent range
and needs no scaling.

This script trains a softmax classifier on the scikit-learn digits in
bfloat16 or float16 and prints the test accuracy and the final loss scale.
"""
import argparse

import numpy as np

import tracejit
import tracejit.numpy as tnp
from tracejit import optim
from tracejit.data import load_digits


def forward(params, x, dtype):
    """Logits computed in ``dtype`` from float32 ``params`` and ``x``."""
    p = tracejit.tree_map(lambda v: v.astype(dtype), params)
    h = tnp.tanh(x.astype(dtype) @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"]


def loss_fn(params, x, y, dtype):
    logits = forward(params, x, dtype).astype(np.float32)   # the loss in float32
    m = tnp.max(logits, axis=1, keepdims=True)
    logp = logits - m - tnp.log(tnp.sum(tnp.exp(logits - m), axis=1, keepdims=True))
    return -tnp.mean(tnp.take_along_axis(logp, y[:, None], axis=1))


def make_step(opt, dtype, period=200):
    """One step of dynamic loss scaling: ``state = (params, opt_state,
    scale, good_steps)``; returns the new state and the (unscaled) loss."""
    scaled = tracejit.value_and_grad(lambda p, x, y, s: loss_fn(p, x, y, dtype) * s)

    @tracejit.jit
    def step(params, opt_state, scale, good, x, y):
        loss, grads = scaled(params, x, y, scale)
        grads = tracejit.tree_map(lambda g: g / scale, grads)
        finite = tnp.all(tnp.stack([tnp.all(tnp.isfinite(g))
                                    for g in tracejit.tree_leaves(grads)]))
        new_params, new_opt = opt.update(grads, opt_state, params)
        keep = lambda new, old: tracejit.tree_map(lambda a, b: tnp.where(finite, a, b), new, old)
        grow = finite & (good + 1 >= period)
        scale = tnp.where(finite, tnp.where(grow, scale * 2, scale), scale / 2)
        good = tnp.where(finite & ~grow, good + 1, 0)
        return keep(new_params, params), keep(new_opt, opt_state), scale, good, loss / scale
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    args = ap.parse_args(argv)
    (x_train, y_train), (x_test, y_test) = load_digits()
    rng = np.random.default_rng(0)
    params = {"w1": (rng.standard_normal((64, args.hidden)) * 0.1).astype(np.float32),
              "b1": np.zeros(args.hidden, np.float32),
              "w2": (rng.standard_normal((args.hidden, 10)) * 0.1).astype(np.float32),
              "b2": np.zeros(10, np.float32)}
    opt = optim.adam(args.lr)
    opt_state = opt.init(params)
    # float16 starts with a large scale (found by halving); bfloat16 needs none
    scale = np.float32(2.0 ** 15 if args.dtype == "float16" else 1.0)
    good = np.int32(0)
    step = make_step(opt, args.dtype)
    first = None
    for _ in range(args.steps):
        i = rng.integers(0, len(x_train), args.batch_size)
        params, opt_state, scale, good, loss = step(params, opt_state, scale, good,
                                                    x_train[i], y_train[i])
        first = float(loss) if first is None else first
    assert all(np.asarray(p).dtype == np.float32 for p in params.values())   # master weights
    logits = tracejit.jit(lambda p, x: forward(p, x, args.dtype))(params, x_test)
    acc = float(np.mean(np.argmax(np.asarray(logits).astype(np.float32), axis=1) == y_test))
    print(f"{args.dtype}: loss {first:.3f} -> {float(loss):.3f}, test accuracy {acc:.3f}, "
          f"loss scale {float(scale):g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
