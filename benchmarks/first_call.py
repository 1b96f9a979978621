"""First-call latency of a jitted MLP training step (trace + fuse + compile),
in a fresh process: run it twice with the same TRACEJIT_CACHE_DIR to get the
cold and the warm-disk-cache numbers.

    TRACEJIT_CACHE_DIR=$(mktemp -d) python benchmarks/first_call.py   # cold
    TRACEJIT_CACHE_DIR=<same dir>   python benchmarks/first_call.py   # warm cache
"""
import json
import sys
import time

from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
start = time.perf_counter()
import numpy as np  # noqa: E402,F401

import tracejit  # noqa: E402
from workloads import mlp_step, mlp_data  # noqa: E402

imported = time.perf_counter()
params, x, y = mlp_data(256)
step = tracejit.jit(mlp_step, donate_argnums=0)
t = time.perf_counter()
params, loss = step(params, x, y, 0.01)
first = time.perf_counter() - t
t = time.perf_counter()
params, loss = step(params, x, y, 0.01)
second = time.perf_counter() - t
from tracejit.backends.cpu import stats  # noqa: E402
print(json.dumps({"import_s": imported - start, "first_call_s": first, "second_call_s": second,
                  **stats()}))
