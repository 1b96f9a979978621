"""Device residency: device_put, devices, Array, and results that stay on
the GPU across calls; the kernel cache; the default backend."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import default_backend, real_gpu
from tracejit.backends.cuda import cache


def test_devices_and_device_put():
    assert tracejit.devices() == ["cpu", "cuda:0"]
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float32(2.5),
            "n": [np.array([1, 2], np.int32)]}
    on = tracejit.device_put(tree)
    w = on["w"]
    assert isinstance(w, tracejit.Array) and isinstance(on["s"], tracejit.Array)
    assert (w.shape, w.dtype, w.ndim, w.size, w.device, len(w)) == \
        ((2, 3), np.float32, 2, 6, "cuda:0", 2)
    np.testing.assert_array_equal(np.asarray(w), tree["w"])
    np.testing.assert_array_equal(w.to_numpy(), w.copy_to_host())
    assert w.block_until_ready() is w
    assert float(on["s"]) == 2.5 and int(tracejit.device_put(7)) == 7
    assert on["s"].shape == () and "cuda:0" in repr(on["s"])
    back = tracejit.device_put(on, "cpu")
    assert isinstance(back["w"], np.ndarray)
    np.testing.assert_array_equal(back["n"][0], tree["n"][0])
    with pytest.raises(TypeError):
        len(on["s"])
    with pytest.raises(ValueError, match="unknown device"):
        tracejit.device_put(tree, "tpu")


def test_results_stay_on_the_device_across_steps():
    def step(params, x):
        loss, g = tracejit.value_and_grad(lambda p: tnp.sum((x @ p["w"]) ** 2))(params)
        return {"w": params["w"] - 0.01 * g["w"]}, loss

    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2)).astype(np.float32)}
    x = rng.standard_normal((4, 3)).astype(np.float32)
    jitted = tracejit.jit(step)   # no backend: device-resident arguments run on cuda
    ref = tracejit.jit(step, backend="reference")
    p, want = tracejit.device_put(params), params
    for _ in range(3):
        p, loss = jitted(p, x)
        want, want_loss = ref(want, x)
        assert isinstance(p["w"], tracejit.Array) and isinstance(loss, tracejit.Array)
        np.testing.assert_allclose(np.asarray(p["w"]), want["w"], rtol=1e-5)
        np.testing.assert_allclose(float(loss), want_loss, rtol=1e-5)
    assert jitted.trace_count == 1
    # the cpu backend takes device arrays too (copied to the host)
    out, _ = tracejit.jit(step, backend="cpu")(p, x)
    assert isinstance(out["w"], np.ndarray)


def test_captured_constants_and_scalars():
    c = np.arange(4, dtype=np.float32)
    f = tracejit.jit(lambda x, s: x * c + s, backend="cuda")
    for s in (1.0, 2.0):
        np.testing.assert_allclose(np.asarray(f(np.ones(4, np.float32), s)), c + s)
    executable, captured, _ = next(iter(f._cache.values()))
    assert all(isinstance(a, tracejit.Array) for a in captured)


def test_kernel_cache_files_and_batch_sizes(tmp_path, monkeypatch):
    """Kernels are module files named by their hash; identical kernels compile
    once per process; dims are arguments, so another batch size reuses the
    kernel."""
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_loaded", {})

    def f(x):
        return tnp.tanh(x) * 3 + 1, tnp.tanh(x + 1) * 3 + 1

    before = cache.stats()
    for n in (3, 5):
        out = tracejit.jit(f, backend="cuda")(np.ones((n, 7), np.float32))
        np.testing.assert_allclose(np.asarray(out[0]), np.tanh(np.ones((n, 7))) * 3 + 1, rtol=1e-6)
    after = cache.stats()
    files = sorted(p.name for p in (tmp_path / "cuda").glob("k_*.py"))
    assert len(files) == 1, files
    assert after["kernels"] - before["kernels"] == 2
    assert after["memory_hits"] - before["memory_hits"] == 1
    assert "def kernel(" in (tmp_path / "cuda" / files[0]).read_text()


def test_log_compile_reports_kernels_and_launches():
    code = ("import numpy as np, tracejit, tracejit.numpy as tnp\n"
            "f = tracejit.jit(lambda x: tnp.exp(x).sum(axis=1), backend='cuda')\n"
            "f(np.ones((2, 3), np.float32))\n")
    env = dict(os.environ, TRACEJIT_LOG="compile", NUMBA_ENABLE_CUDASIM="1")
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stderr
    assert "cuda k_" in err and "host time per step" in err and "(reduction" in err


def test_simulator_is_never_the_default():
    assert not real_gpu()
    if "TRACEJIT_BACKEND" not in os.environ:
        assert default_backend() == "cpu"


def test_a_kernel_that_does_not_compile_runs_on_the_host(monkeypatch):
    from tracejit.backends.cuda import plan

    def broken(*args, **kwargs):
        raise RuntimeError("no such intrinsic")
    monkeypatch.setattr(plan.cache, "load", broken)
    f = tracejit.jit(lambda x: tnp.exp(x).sum(axis=0), backend="cuda")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.warns(RuntimeWarning, match="did not compile"):
        out = f(x)
    assert isinstance(out, tracejit.Array)
    np.testing.assert_allclose(np.asarray(out), np.exp(x).sum(axis=0), rtol=1e-6)
