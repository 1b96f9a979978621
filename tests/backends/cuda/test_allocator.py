"""The caching device allocator: size classes, buffers going back to the
pool when their last view dies, and a training step that allocates nothing
from the driver once its buffers have been through the pool."""
import gc

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends.cuda import allocator

own_pool = pytest.mark.skipif(allocator.use_cupy() is not None,
                              reason="CuPy's pool serves the buffers here")


def test_size_classes():
    assert allocator.size_class(0) == allocator.size_class(1) == 512
    assert allocator.size_class(512) == 512 and allocator.size_class(513) == 1024
    for n in (1, 700, 4096, 5000, 10**6, 3 * 10**7 + 1):
        c = allocator.size_class(n)
        assert n <= c <= max(512, n * 9 // 8 + 512) and c % 512 == 0
        assert allocator.size_class(c) == c


def test_a_block_returns_to_the_pool_when_its_last_view_dies():
    """Tracejit's own pool (driven directly: on a GPU with CuPy, CuPy's pool
    serves the plans)."""
    pool = allocator.Pool()
    a = pool.acquire((3, 5), np.float32)
    before = pool.stats()
    a.copy_to_device(np.arange(15, dtype=np.float32).reshape(3, 5))
    row = a.reshape(15)[5:10]      # a view outliving the array it came from
    del a
    gc.collect()
    b = pool.acquire((3, 5), np.float32)   # must not get the block `row` still uses
    b.copy_to_device(np.zeros((3, 5), np.float32))
    np.testing.assert_array_equal(row.copy_to_host(), np.arange(5, 10, dtype=np.float32))
    assert pool.stats()["driver_allocs"] == before["driver_allocs"] + 1
    del row, b
    gc.collect()
    s = pool.stats()
    assert s["in_use"] == 0 and s["held"] == 1024
    c = pool.acquire((15,), np.float32)      # reuses a freed block
    assert pool.stats()["driver_allocs"] == s["driver_allocs"]
    assert pool.stats()["in_use"] == 512 and pool.stats()["peak"] == 1024
    del c
    gc.collect()
    pool.empty_cache()
    assert pool.stats()["held"] == 0


def _step(params, x):
    def loss(p):
        h = tnp.tanh(x @ p["w"] + p["b"])
        return tnp.mean(h ** 2)
    value, g = tracejit.value_and_grad(loss)(params)
    return {k: params[k] - 0.1 * g[k] for k in params}, value


def _data():
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 4)).astype(np.float32),
              "b": np.zeros(4, np.float32)}
    return params, rng.standard_normal((5, 3)).astype(np.float32)


def test_steady_state_steps_allocate_nothing_from_the_driver():
    params, x = _data()
    step = tracejit.jit(_step, backend="cuda")
    ref = tracejit.jit(_step, backend="reference")
    p, want = params, params
    counts = []
    for _ in range(4):
        p, loss = step(p, x)      # the previous step's results die here
        want, want_loss = ref(want, x)
        gc.collect()
        counts.append(allocator.stats()["held"])
        np.testing.assert_allclose(np.asarray(p["w"]), want["w"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(loss), want_loss, rtol=1e-5)
    # Call 2 still needs new result buffers (call 1's are its arguments);
    # from call 3 on every buffer is a recycled one: the pool does not grow.
    assert counts[2] == counts[1] and counts[3] == counts[2]


def test_a_donated_step_allocates_nothing_after_its_first_call():
    params, x = _data()
    step = tracejit.jit(_step, backend="cuda", donate_argnums=0)
    p, _ = step(tracejit.device_put(params), x)
    gc.collect()
    first = allocator.stats()
    for _ in range(2):
        p, loss = step(p, x)
        gc.collect()
    assert allocator.stats()["held"] == first["held"]
    if "driver_allocs" in first:
        assert allocator.stats()["driver_allocs"] == first["driver_allocs"]
        assert allocator.stats()["requests"] > first["requests"]


@own_pool
def test_the_compile_log_reports_memory(monkeypatch, capsys):
    monkeypatch.setenv("TRACEJIT_LOG", "compile")
    params, x = _data()
    tracejit.jit(_step, backend="cuda")(params, x * 2)
    err = capsys.readouterr().err
    assert "in use, peak" in err and "driver allocations" in err
