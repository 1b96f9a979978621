"""Rank 1 raises while rank 0 waits in an allreduce: every rank must end."""
import numpy as np

import tracejit.distributed as dist

world = dist.init()
if world.rank == 1:
    raise ValueError("rank one failed on purpose")
dist.allreduce({"x": np.ones(3, np.float32)})
print("rank 0 got past the allreduce: it should not have", flush=True)
