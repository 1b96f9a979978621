"""jit: pytrees in and out, static arguments, the trace cache, dtypes,
captured constants, nested jit, and make_ir."""
import dataclasses
from collections import namedtuple

import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp

Point = namedtuple("Point", ["x", "y"])


@tracejit.register_dataclass
@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: np.ndarray


def jit(f=None, **kw):
    return tracejit.jit(f, backend="reference", **kw) if f is not None else \
        (lambda g: tracejit.jit(g, backend="reference", **kw))


def test_pytrees_in_and_out():
    @jit
    def f(tree):
        d, lst, tup, pt, p, none = tree
        return {"sum": d["a"] + d["b"], "list": [lst[0] * 2, None, lst[1]],
                "point": Point(pt.y, pt.x), "params": Params(p.w * 2, p.b + 1),
                "none": none, "tuple": (tup[0],)}

    a, b = np.ones(3, np.float32), np.arange(3, dtype=np.float32)
    out = f(({"b": b, "a": a}, [a, b], (b,), Point(a, b), Params(a, b), None))
    np.testing.assert_array_equal(out["sum"], a + b)
    assert out["list"][1] is None and out["none"] is None
    np.testing.assert_array_equal(out["list"][0], 2 * a)
    assert isinstance(out["point"], Point) and isinstance(out["params"], Params)
    np.testing.assert_array_equal(out["point"].x, b)
    np.testing.assert_array_equal(out["params"].b, b + 1)
    assert isinstance(out["tuple"], tuple) and isinstance(out["list"], list)


def test_static_argnums_and_argnames():
    @jit(static_argnums=1, static_argnames="mode")
    def f(x, n, mode="sum"):
        y = tnp.tile(x, n)
        return y.sum() if mode == "sum" else y.max()

    x = np.array([1.0, 3.0])
    assert f(x, 2) == 8.0
    assert f(x, 3, mode="max") == 3.0
    assert f(x, n=3, mode="sum") == 12.0
    assert f.trace_count == 3
    assert f(x, 3, mode="max") == 3.0
    assert f.trace_count == 3
    with pytest.raises(tracejit.ArgumentTypeError):
        f(x, [2])   # static arguments must be hashable


def test_static_argnames_given_positionally():
    @jit(static_argnames=("shape",))
    def f(x, shape):
        return tnp.reshape(x, shape)

    assert f(np.arange(6), (2, 3)).shape == (2, 3)
    assert f(np.arange(6), shape=(3, 2)).shape == (3, 2)


def test_trace_cache():
    @jit
    def step(w, x, lr):
        return w - lr * (x @ w)

    w = np.eye(3, dtype=np.float32)
    x = np.ones((3, 3), np.float32)
    step(w, x, 0.1)
    step(w + 1, x * 2, 0.1)
    assert step.trace_count == 1
    out = step(w, x, 0.01)          # a new learning rate is not a new signature
    assert step.trace_count == 1
    np.testing.assert_allclose(out, w - 0.01 * (x @ w), rtol=1e-6)
    assert out.dtype == np.float32  # the Python scalar is weak
    step(w, x, 1)                   # an int is a different weak type: retrace
    assert step.trace_count == 2
    step(np.eye(4, dtype=np.float32), np.ones((4, 4), np.float32), 0.1)   # new shape
    assert step.trace_count == 3
    step(w.astype(np.float64), x.astype(np.float64), 0.1)                # new dtype
    assert step.trace_count == 4
    step({"w": w}["w"], x, 0.5)
    assert step.trace_count == 4


def test_retrace_is_logged(monkeypatch, capsys):
    monkeypatch.setenv("TRACEJIT_LOG", "retrace")
    f = jit(lambda x: x + 1)
    f(np.zeros(2))
    f(np.zeros(3))
    assert "retracing because argument types changed" in capsys.readouterr().err


def test_tree_structure_change_retraces():
    f = jit(lambda t: tracejit.tree_leaves(t)[0] * 2)
    f({"a": np.ones(2)})
    f({"b": np.ones(2)})
    f([np.ones(2)])
    assert f.trace_count == 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes_are_kept(dtype):
    @jit
    def f(x, y):
        h = tnp.tanh(x @ y) * 0.5 + 1
        return h.mean(axis=0), tnp.exp(-h).sum(), h > 0

    x = np.ones((4, 3), dtype)
    m, s, b = f(x, x.T)
    assert m.dtype == dtype and s.dtype == dtype and b.dtype == np.bool_


def test_python_scalar_arguments_are_weak():
    f = jit(lambda x, a, b: x * (a * b) + a)   # a int, b float: a * b is a weak float
    out = f(np.ones(2, np.float32), 2, 0.5)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [3.0, 3.0])
    assert jit(lambda a, b: a + b)(1, 2.5) == 3.5
    assert jit(lambda x, n: x * n)(np.ones(2, np.int32), 3).dtype == np.int32
    assert jit(lambda x, s: x * s)(np.ones(2, np.int32), 2.5).dtype == np.float64
    assert jit(lambda x, s: x * s)(np.ones(2, np.float32), np.float64(2)).dtype == np.float64


def test_captured_constants():
    table = np.arange(6.0).reshape(2, 3)
    bias = np.float32(1.5)

    @jit
    def f(i):
        return tnp.take(table, i, axis=0) + bias

    np.testing.assert_array_equal(f(np.array([1, 0])), table[[1, 0]] + 1.5)
    fn = tracejit.make_ir(lambda i: tnp.take(table, i, axis=0) + 1.0)(np.array([1]))
    assert len(fn.params) == 2   # the index, then the captured table
    assert fn.params[1].type.shape == (2, 3)


def test_nested_jit_is_inlined():
    inner = jit(lambda x: tnp.exp(x) * 2)

    @jit
    def outer(x):
        return inner(x) + inner(x + 1)

    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(outer(x), 2 * np.exp(x) + 2 * np.exp(x + 1))
    assert inner.trace_count == 0
    prims = [ins.prim for ins in tracejit.make_ir(outer)(x).body]
    assert prims.count("exp") == 2


def test_make_ir_primitives():
    def loss(w, x, y):
        logits = x @ w
        logp = logits - tnp.log(tnp.sum(tnp.exp(logits), axis=1, keepdims=True))
        return -tnp.mean(logp[tnp.arange(x.shape[0]), y])

    fn = tracejit.make_ir(loss)(np.zeros((3, 4), np.float32), np.zeros((5, 3), np.float32),
                                np.zeros(5, np.int32))
    prims = {ins.prim for ins in fn.body}
    assert {"dot_general", "exp", "log", "reduce_sum", "gather", "neg"} <= prims
    assert [str(t) for t in fn.out_types] == ["f32[]"]
    assert "dot_general" in str(fn)


def test_lower_returns_the_function():
    f = jit(lambda x: x.sum())
    fn = f.lower(np.zeros((2, 2)))
    assert [ins.prim for ins in fn.body][-1] == "reduce_sum"
    assert f.trace_count == 0


def test_unsupported_arguments():
    f = jit(lambda x: x)
    with pytest.raises(tracejit.ArgumentTypeError):
        f("text")
    with pytest.raises(tracejit.DTypeError):
        f(np.zeros(2, np.complex64))


def test_donation_counts_positions_past_static_arguments(monkeypatch):
    from tracejit.backends import reference
    seen = []
    compile_ = reference.compile
    monkeypatch.setattr(reference, "compile",
                        lambda fn, donate=(): seen.append(donate) or compile_(fn, donate))

    @tracejit.jit(backend="reference", static_argnums=0, donate_argnums=1)
    def f(n, x, y):
        return x * n + y

    np.testing.assert_array_equal(f(3, np.ones(2), {"a": 1.0, "b": 2.0}["a"]), [4.0, 4.0])
    assert seen == [(0,)]   # x (leaf 0) is donated, not y


def test_dispatch_shortcut_keeps_signatures_apart():
    # the dispatch shortcut (api._fast_signature) must tell apart whatever
    # the full leaf types tell apart: shape, dtype, weak Python scalars vs
    # NumPy scalars, and Python ints beyond int64 (which take the full path)
    f = tracejit.jit(lambda x, s: x * s)
    x32, x64 = np.ones(3, np.float32), np.ones(3, np.float64)
    calls = [(x32, 2.0), (x32, 2.0), (x64, 2.0), (np.ones(4, np.float32), 2.0),
             (x32, np.float64(2.0)), (x32, 2), (x32, True), (x32, 2**70), (x32, 3.0)]
    want_traces = [1, 1, 2, 3, 4, 5, 6, 7, 7]
    for (x, s), traces in zip(calls, want_traces):
        got = f(x, s)
        ref = np.asarray(x) * (float(s) if isinstance(s, int) and abs(s) >= 2**63 else s)
        assert got.dtype == tracejit.jit(lambda x, s: x * s, backend="reference")(x, s).dtype
        np.testing.assert_allclose(got, ref, rtol=1e-6)
        assert f.trace_count == traces, (x.dtype, x.shape, s)
