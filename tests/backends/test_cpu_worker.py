"""Kernels compiled in the worker process (backends/cpu/worker.py, used by
tiered functions' background builds) compute what the reference does; the
worker translates kernels itself (irgen.py) and uses Numba only for the
ones it does not cover."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import cpu, get_backend
from tracejit.backends.cpu import worker


def test_background_build_compiles_in_the_worker_and_matches_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    salt = float(np.random.default_rng().integers(1, 1 << 30))   # a kernel no test loaded before

    def f(x, y):
        return tnp.tanh(x * 0.5 + salt) * y + tnp.maximum(x, y), tnp.sum(x * y, axis=1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 5)).astype(np.float32)
    fn = tracejit.make_ir(f)(x, y)
    before = worker.STATS["compiled"]
    run = cpu.compile(fn, background=True)
    assert worker.STATS["compiled"] > before
    assert not worker.IN_WORKER.get()   # reset after the build
    got = run([x, y])
    want = get_backend("reference").compile(fn)([x, y])
    for u, v in zip(got, want):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_worker_reports_compile_errors():
    with pytest.raises(RuntimeError, match="SyntaxError"):
        worker.compile_object("def kernel(:\n", "broken", ())
    # and keeps serving after one
    obj, symbol, how = worker.compile_object(
        "def kernel(lo, hi, dims):\n    pass\n", "empty", ())
    assert obj[:4] == b"\x7fELF" and symbol == "empty" and how.startswith("llvmlite")
