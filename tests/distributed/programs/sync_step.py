"""The 2-rank synchronous step equals one-process steps on the whole batch.

Every rank takes its half of a fixed batch; rank 0 also runs, in-process,
(a) the plain step on the concatenated batch (an MLP without batch norm or
dropout: equal up to rounding) and (b) ``towers=size`` on it for a model
with batch norm and dropout (same per-shard statistics, keys and averaging)."""
import numpy as np

import tracejit.distributed as dist
from tracejit import nn, optim
from tracejit.train import init_train_state, make_train_step

w = dist.init()
r, n = w.rank, w.size
rng = np.random.default_rng(0)
x = rng.normal(size=(8 * n, 12)).astype(np.float32)
y = rng.integers(0, 10, size=8 * n).astype(np.int32)
mine = slice(8 * r, 8 * (r + 1))


def run(model, optimizer, distributed, towers, xs, ys, seed, steps=3):
    state = init_train_state(model, optimizer, (12,), seed=seed)
    step = make_train_step(model, optimizer, distributed=distributed, towers=towers)
    for _ in range(steps):
        state, metrics = step(state, xs, ys)
    return state, metrics


def check(a, b, what):
    for (name, u), v in zip(sorted(a.items()), [b[k] for k in sorted(a)]):
        np.testing.assert_allclose(u, v, rtol=2e-5, atol=2e-6, err_msg=f"{what}: {name}")


def flat(tree):
    from tracejit.tree import tree_flatten_with_path
    return {k: np.asarray(v) for k, v in tree_flatten_with_path(tree)}


plain = nn.Sequential([nn.Dense(16, "relu"), nn.Dense(10)])
# Each rank starts from a different seed: the first step broadcasts rank 0's state.
state, metrics = run(plain, optim.adam(1e-2), True, 1, x[mine], y[mine], seed=r)
allp = dist.allgather(flat(state.params))
for name, stacked in allp.items():
    np.testing.assert_array_equal(stacked[0], stacked[-1], err_msg=name)
if r == 0:
    ref, ref_metrics = run(plain, optim.adam(1e-2), False, 1, x, y, seed=0)
    check(flat(state.params), flat(ref.params), "plain params")
    check(flat(state.opt_state), flat(ref.opt_state), "plain optimizer state")
    check({k: metrics[k] for k in ("loss", "accuracy")},
          {k: ref_metrics[k] for k in ("loss", "accuracy")}, "plain metrics")

bn = nn.Sequential([nn.Dense(16), nn.BatchNorm(), nn.Activation("relu"), nn.Dropout(0.3),
                    nn.Dense(10)])
state, metrics = run(bn, optim.momentum(0.1, 0.9), True, 1, x[mine], y[mine], seed=0)
if r == 0:
    ref, _ = run(bn, optim.momentum(0.1, 0.9), False, n, x, y, seed=0)
    check(flat(state.params), flat(ref.params), "batch-norm params")
    check(flat(state.model_state), flat(ref.model_state), "moving statistics")
print(f"rank {r}: OK", flush=True)
