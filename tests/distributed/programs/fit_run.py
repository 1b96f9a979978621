"""fit(distributed=True) on the digits, for the tests.

    fit_run.py OUT TAG [--kill-at STEP] [--resume]

Every rank gets its own checkpoint and log directories (OUT/r<rank>/...), so
the test sees that only rank 0 writes; resuming, only rank 0 reads.  Each
rank saves its final parameters to OUT/TAG-<rank>.npz.  With --kill-at, rank
1 kills itself with SIGKILL after that step."""
import os
import signal
import sys

import numpy as np

import tracejit.distributed as dist
from tracejit import nn, optim
from tracejit.data import load_digits
from tracejit.train import LambdaCallback, fit
from tracejit.tree import tree_flatten_with_path

out, tag = sys.argv[1], sys.argv[2]
kill_at = int(sys.argv[sys.argv.index("--kill-at") + 1]) if "--kill-at" in sys.argv else None
world = dist.init()
(x, y), (xt, yt) = load_digits()
model = nn.Sequential([nn.Dense(32, "relu"), nn.Dense(10)])


def maybe_die(run, logs):
    if world.rank == 1 and run.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


mine = os.path.join(out, f"r{world.rank}")
result = fit(model, optim.momentum(0.05, 0.9), (x[:400], y[:400]), epochs=2, batch_size=32,
             validation_data=(xt[:100], yt[:100]), checkpoint_dir=os.path.join(mine, "ckpt"),
             checkpoint_every=5, logdir=os.path.join(mine, "logs"), histogram_every=None,
             resume="--resume" in sys.argv, distributed=True,
             callbacks=[LambdaCallback(on_step_end=maybe_die)])
np.savez(os.path.join(out, f"{tag}-{world.rank}.npz"),
         **{k: np.asarray(v) for k, v in tree_flatten_with_path(result.state.params)})
print(f"rank {world.rank}: step {int(result.state.step)} "
      f"val_accuracy {result.history['val_accuracy'][-1]:.3f}", flush=True)
