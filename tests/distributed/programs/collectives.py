"""Checks allreduce/broadcast/allgather on pytrees on every rank; prints OK."""
import numpy as np

import tracejit.distributed as dist

w = dist.init()
r, n = w.rank, w.size
assert n >= 2, f"expected several ranks, got {w}"
tree = {"w": np.full((2, 3), r + 1, np.float32), "pair": (np.arange(4, dtype=np.int64) * (r + 1),
                                                            np.float64(r))}
total = sum(range(1, n + 1))
dist.reset_stats()
out = dist.allreduce(tree, "sum")
assert dist.stats()["calls"] == 1 and dist.stats()["bytes"] == 6 * 4 + 4 * 8 + 8
assert out["w"].dtype == np.float32 and out["w"].shape == (2, 3)
np.testing.assert_array_equal(out["w"], np.full((2, 3), total, np.float32))
np.testing.assert_array_equal(out["pair"][0], np.arange(4) * total)
assert out["pair"][1] == sum(range(n))
mean = dist.allreduce({"w": tree["w"], "s": tree["pair"][1]}, "mean")
np.testing.assert_allclose(mean["w"], total / n)
np.testing.assert_allclose(mean["s"], (n - 1) / 2)
np.testing.assert_array_equal(dist.allreduce(tree, "max")["pair"][0], np.arange(4) * n)
np.testing.assert_array_equal(dist.allreduce(tree, "min")["w"], np.ones((2, 3)))
try:
    dist.allreduce(tree, "mean")
except TypeError as e:
    assert "int64" in str(e)
else:
    raise AssertionError("mean of integer leaves should raise")
np.testing.assert_array_equal(dist.iallreduce(tree, "sum").wait()["w"], out["w"])
got = dist.broadcast(tree, root=n - 1)
np.testing.assert_array_equal(got["w"], np.full((2, 3), n, np.float32))
assert got["pair"][0].dtype == np.int64
edge = dist.allreduce({"empty": np.zeros((0, 3), np.float32), "none": None,
                       "half": np.full(2, r, np.float16)}, "sum")
assert edge["empty"].shape == (0, 3) and edge["none"] is None
assert edge["half"].dtype == np.float16 and edge["half"][0] == sum(range(n))
gathered = dist.allgather(tree)
assert gathered["w"].shape == (n, 2, 3)
np.testing.assert_array_equal(gathered["pair"][0][:, 1], np.arange(1, n + 1))
assert dist.broadcast_object({"rank": r}, root=1) == {"rank": 1}
assert dist.allgather_object(r) == list(range(n))
# Every rank's shard of an epoch: disjoint, and together the whole epoch.
from tracejit.data import Pipeline  # noqa: E402
examples = 10 * n + 1
shard = Pipeline(np.arange(examples)).shuffle(3).shard(n, r).batch(4)
for epoch in (0, 1):
    mine = np.concatenate(list(shard.epoch(epoch)))
    parts = dist.allgather_object(mine)
    union = np.concatenate(parts)
    assert len(set(union.tolist())) == len(union) == 10 * n, (epoch, parts)
    order = next(Pipeline(np.arange(examples)).shuffle(3).epoch(epoch))
    assert set(union.tolist()) == set(order[:10 * n].tolist())
dist.barrier()
print(f"rank {r}: OK", flush=True)
