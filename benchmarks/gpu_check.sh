#!/usr/bin/env bash
# The first-run check of the CUDA backend on a machine with an NVIDIA GPU.
#
#   benchmarks/gpu_check.sh                 # uses the python on PATH (tracejit[cuda,test] installed)
#   WHEELS=/path/to/wheels benchmarks/gpu_check.sh
#                                           # a bare GPU machine: first installs tracejit and its
#                                           # dependencies from the wheels in that folder, offline
#   QUICK=1 benchmarks/gpu_check.sh         # skip the full-size benchmark
#
# Steps, each with its own time limit so the whole check stays under 8 minutes on an H100:
#   1. the CUDA test suite with Numba's simulator off (tests/backends/cuda)
#   2. benchmarks/bench_gpu.py --quick, then full sizes
#   3. the kernel cache: a second process must load every kernel from disk, compiling none
# and a summary of what passed. Logs go to $OUT (or ./gpu_check_logs).
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS="${OUT:-gpu_check_logs}"
mkdir -p "$LOGS"
PY="${PYTHON:-python3}"

if [[ -n "${WHEELS:-}" ]]; then
    echo "== installing from $WHEELS (no index)"
    "$PY" -m venv "$LOGS/venv" && PY="$LOGS/venv/bin/python"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" -e ".[test]" "numba-cuda[cu13]" cupy-cuda13x \
        >"$LOGS/install.log" 2>&1 || { echo "install failed: see $LOGS/install.log"; tail -5 "$LOGS/install.log"; exit 1; }
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
    | sed 's/^/device: /' || echo "device: nvidia-smi not found"
"$PY" - <<'PY' || { echo "numba-cuda finds no GPU: nothing to check"; exit 1; }
import os, sys
os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
from numba import cuda
sys.exit(0 if cuda.is_available() else 1)
PY

declare -A RESULT
step() {   # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s)"
    local t0=$SECONDS
    if timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1; then
        RESULT[$name]="ok ($((SECONDS - t0)) s)"
    else
        RESULT[$name]="FAILED rc=$? ($((SECONDS - t0)) s), see $LOGS/$name.log"
    fi
    tail -25 "$LOGS/$name.log"
}

export NUMBA_ENABLE_CUDASIM=0
step cuda_tests 240 "$PY" -m pytest -q -x tests/backends/cuda
step bench_quick 90 "$PY" benchmarks/bench_gpu.py --quick
if [[ -z "${QUICK:-}" ]]; then
    step bench_full 150 "$PY" benchmarks/bench_gpu.py
fi

CACHE="$(mktemp -d)"
cache_run() {
    TRACEJIT_CACHE_DIR="$CACHE" TRACEJIT_LOG=cache "$PY" - <<'PY'
import numpy as np
import tracejit
import tracejit.numpy as tnp

def step(w, x):
    h = tnp.tanh(x @ w)
    return tnp.sum(h * h, axis=1), tnp.max(h)

w = np.ones((64, 32), np.float32)
x = np.linspace(-1, 1, 128 * 64, dtype=np.float32).reshape(128, 64)
out = tracejit.jit(step, backend="cuda")(w, x)
print("result", float(np.asarray(out[1])))
PY
}
echo "== kernel cache across processes"
cache_run >"$LOGS/cache_first.log" 2>&1
cache_run >"$LOGS/cache_second.log" 2>&1
misses=$(grep -c " miss" "$LOGS/cache_second.log" || true)
hits=$(grep -c " hit" "$LOGS/cache_second.log" || true)
if [[ "$hits" -gt 0 && "$misses" -eq 0 ]] && grep -q "^result" "$LOGS/cache_second.log"; then
    RESULT[cache]="ok ($hits kernels loaded from disk, none compiled)"
else
    RESULT[cache]="FAILED: second process had $hits hits, $misses misses, see $LOGS/cache_second.log"
fi
rm -rf "$CACHE"

echo
echo "== summary"
for k in cuda_tests bench_quick bench_full cache; do
    [[ -n "${RESULT[$k]:-}" ]] && printf '%-12s %s\n' "$k" "${RESULT[$k]}"
done
for v in "${RESULT[@]}"; do [[ "$v" == FAILED* ]] && exit 1; done
exit 0
