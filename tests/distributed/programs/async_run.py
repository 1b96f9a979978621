"""fit_async under mpiexec -n 3 (a server and two workers) on the digits;
then with max_staleness=0, where the server drops every stale gradient."""
import numpy as np

from tracejit import nn, optim
from tracejit.data import load_digits
from tracejit.train.parameter_server import fit_async

(x, y), (xt, yt) = load_digits()
model = nn.Sequential([nn.Dense(64, "relu"), nn.Dense(10)])
result = fit_async(model, optim.adam(3e-3), (x, y), epochs=4, batch_size=32,
                   validation_data=(xt, yt))
print(f"val_accuracy {result.history['val_accuracy'][-1]:.3f} staleness {result.staleness} "
      f"applied {result.applied} dropped {result.dropped}", flush=True)
assert result.history["val_accuracy"][-1] >= 0.85, result.history
# Staleness is not bounded by the number of workers (a descheduled worker
# can miss several updates of the other): the server drops what exceeds
# max_staleness (default: 2 workers -> 2) and applies the rest.
assert result.dropped == sum(c for s, c in result.staleness.items() if s > 2)
assert sum(result.staleness.values()) == result.applied + result.dropped
assert result.applied + result.dropped == 4 * (2 * ((len(x) // 2) // 32))
assert result.history["staleness_max"][-1] >= 1           # two workers: stale gradients
from tracejit.tree import tree_leaves
leaves = [np.asarray(v) for v in tree_leaves(result.state.params)]
assert all(np.isfinite(v).all() for v in leaves)
strict = fit_async(model, optim.adam(3e-3), (x[:256], y[:256]), epochs=1, batch_size=32,
                   max_staleness=0, verbose=False)
assert strict.dropped > 0 and strict.applied + strict.dropped == 8, strict
print("OK", flush=True)
