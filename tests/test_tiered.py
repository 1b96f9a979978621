"""Tiered execution (tracejit/tiered.py): the interpreter's results until the
compiled plan is ready, the plan's after, the same values either way."""
import threading
import warnings

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit.backends import available, get_backend
from tracejit.tiered import TieredExecutable


def my_func(a, b):
    z = 0
    for i in range(8):
        z = a * tnp.cos(z + i) + z * tnp.sin(b - i)
    return z


def mlp_step(params, x, lr):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    loss = tnp.mean((h @ params["w2"]) ** 2)
    return loss


def _params(rng):
    return {"w1": rng.standard_normal((5, 7)).astype(np.float32),
            "b1": rng.standard_normal(7).astype(np.float32),
            "w2": rng.standard_normal((7, 3)).astype(np.float32)}


def _fn():
    a = np.float32(0.2)
    return tracejit.make_ir(tracejit.value_and_grad(my_func, argnums=(0, 1)))(a, a)


def test_interprets_until_the_plan_is_ready_then_switches():
    fn = _fn()
    release, compiled_calls = threading.Event(), []

    def slow_compile(f, donate=()):
        release.wait()
        run = get_backend("reference").compile(f)

        def compiled(args):
            compiled_calls.append(1)
            return run(args)
        return compiled
    ex = TieredExecutable(fn, slow_compile, name="my_func")
    args = [np.float32(0.2), np.float32(0.3)]
    first = ex(args)
    assert ex.interpreted_calls == 1 and not compiled_calls
    assert not ex.wait(0)
    release.set()
    assert ex.wait(30)
    second = ex(args)
    assert ex.interpreted_calls == 1 and compiled_calls == [1]
    for u, v in zip(first, second):
        np.testing.assert_array_equal(u, v)


def test_failed_background_compile_keeps_interpreting_and_warns_once():
    fn = _fn()

    def broken(f, donate=()):
        raise RuntimeError("no compiler today")
    ex = TieredExecutable(fn, broken, name="my_func")
    assert ex.wait(30)
    args = [np.float32(0.2), np.float32(0.3)]
    expected = get_backend("reference").compile(fn)(args)
    with pytest.warns(RuntimeWarning, match="no compiler today"):
        out = ex(args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex(args)   # warned once only
    for u, v in zip(out, expected):
        np.testing.assert_array_equal(u, v)


@pytest.mark.skipif(not available("cpu"), reason="needs Numba")
def test_jit_tiered_matches_reference_and_compiled(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    params, x = _params(rng), rng.standard_normal((4, 5)).astype(np.float32)
    step = tracejit.value_and_grad(mlp_step)
    ref = tracejit.jit(step, backend="reference")(params, x, 0.1)
    plain = tracejit.jit(step, backend="cpu")(params, x, 0.1)
    tiered = tracejit.jit(step, backend="cpu", tiered=True)
    first = tiered(params, x, 0.1)
    assert tiered.wait_compiled(120)
    (executable, _, _), = tiered._cache.values()
    assert executable.compiled is not None
    after = tiered(params, x, 0.1)
    for got in (first, after, plain):
        for u, v in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(ref)):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not available("cpu"), reason="needs Numba")
def test_tiered_with_donation_gives_the_same_updates(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(tmp_path))

    def sgd(params, x):
        loss, g = tracejit.value_and_grad(mlp_step)(params, x, 0.0)
        return tracejit.tree_map(lambda p, d: p - 0.1 * d, params, g), loss
    rng = np.random.default_rng(1)
    params, x = _params(rng), rng.standard_normal((4, 5)).astype(np.float32)
    ref = tracejit.jit(sgd, backend="reference")
    tiered = tracejit.jit(sgd, backend="cpu", donate_argnums=0, tiered=True)
    p_ref, p_tier = params, tracejit.tree_map(np.copy, params)
    for k in range(4):
        if k == 2:
            assert tiered.wait_compiled(120)   # steps before: interpreted unless already compiled
        p_ref, l_ref = ref(p_ref, x)
        p_tier, l_tier = tiered(p_tier, x)
        np.testing.assert_allclose(l_tier, l_ref, rtol=1e-5)
    for u, v in zip(tracejit.tree_leaves(p_tier), tracejit.tree_leaves(p_ref)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_environment_switch(monkeypatch):
    monkeypatch.setenv("TRACEJIT_TIERED", "1")
    f = tracejit.jit(lambda x: x * 2 + 1, backend="cpu" if available("cpu") else "reference")
    np.testing.assert_array_equal(f(np.arange(3.0)), [1.0, 3.0, 5.0])
    assert f.wait_compiled(120)
    (executable, _, _), = f._cache.values()
    assert isinstance(executable, TieredExecutable) == available("cpu")
    monkeypatch.setenv("TRACEJIT_TIERED", "0")
    g = tracejit.jit(lambda x: x * 2 + 1, tiered=None)
    g(np.arange(3.0))
    (executable, _, _), = g._cache.values()
    assert not isinstance(executable, TieredExecutable)
