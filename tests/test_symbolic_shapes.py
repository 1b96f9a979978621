"""Symbolic batch dimensions: ``jit(f, input_specs=[ShapeDtypeStruct((None, ...))])``
traces once for every batch size (tracejit/ir/dims.py, tracejit/symbolic.py)."""
import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit
import tracejit.numpy as tnp
from tracejit import ShapeDtypeStruct, cli, nn, symbolic
from tracejit.errors import SymbolicDimensionError
from tracejit.ir import parse, verify
from tracejit.ir.dims import Dim, parse_dim
from tracejit.nn import functional as F
from tracejit.testing import check_grads

ROOT = pathlib.Path(__file__).resolve().parents[1]
B = Dim("b")


def spec(*shape, dtype=np.float32):
    return ShapeDtypeStruct(shape, dtype)


# --- the size arithmetic ----------------------------------------------------------------
def test_symbolic_sizes_compute_exactly_and_print_by_name():
    assert str(784 * B) == "784*b" and (784 * B) // 784 == B and B * 1 == B
    assert str(B + 1) == "b+1" and B + 1 - 1 - B == 0 and str(2 * B - 1) == "2*b-1"
    assert B >= 0 and B > -1 and not B < 0 and B + 1 > 0 and B != 1
    for text in ("b", "784*b", "b+1", "2*b-1", "b*n", "b-n"):
        assert str(parse_dim(text)) == text
    assert parse_dim("None") == B and parse_dim("7") == 7
    for needs_a_number in (lambda: int(B), lambda: B > 1, lambda: (B + 1) // 2,
                           lambda: B / 2, lambda: bool(B), lambda: range(B)):
        with pytest.raises(SymbolicDimensionError, match="dimension b.* is symbolic"):
            needs_a_number()


# --- one trace for every batch size -----------------------------------------------------
def _layer(x, w):
    h = tnp.tanh(x @ w + 1.0)
    return h.sum(axis=1), h.mean(axis=0), tnp.mean(h), h.T, h.reshape(-1, 2, 3)


def _layer_numpy(x, w):
    h = np.tanh(x @ w + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the mean of an empty batch: NaN
        return h.sum(axis=1), h.mean(axis=0), np.mean(h), h.T, h.reshape(-1, 2, 3)


W = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
LAYER = {backend: tracejit.jit(_layer, input_specs=[spec(None, 4)], backend=backend)
         for backend in ("cpu", "reference")}


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@settings(max_examples=12, deadline=None)
@given(n=st.sampled_from([0, 1, 2, 5, 17, 32, 33]))
def test_one_trace_serves_every_batch_size(backend, n):
    x = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
    outs = LAYER[backend](x, W)
    for got, want in zip(outs, _layer_numpy(x, W)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert LAYER[backend].trace_count == 1


def test_the_ir_names_the_symbolic_dimension_and_parses_back():
    fn = LAYER["cpu"].lower(np.zeros((3, 4), np.float32), W)
    text = str(fn)
    assert "%0: f32[b,4]" in text and "f32[b,6] = dot_general" in text
    assert "f32[b,2,3] = reshape[new_shape=(b, 2, 3)]" in text
    assert "dimension_size[axes=(0,)" in text   # the mean over the batch counts at run time
    again = parse(text)
    verify(again)
    assert str(again) == text


def test_batch_sizes_32_17_1_in_a_row_keep_one_trace():
    f = tracejit.jit(lambda x: tnp.maximum(x, 0.0) * 2.0, input_specs=[spec(None, 784)])
    for n in (32, 17, 1):
        x = np.random.default_rng(n).normal(size=(n, 784)).astype(np.float32)
        np.testing.assert_array_equal(f(x), np.maximum(x, 0) * 2)
    assert f.trace_count == 1


def test_plans_of_the_most_recent_sizes_are_kept(monkeypatch):
    monkeypatch.setattr(symbolic, "MAX_PLANS", 3)
    f = tracejit.jit(lambda x: x * 2.0 + 1.0, input_specs=[spec(None, 4)], backend="reference")
    for n in (1, 2, 3, 1, 4, 5):   # 1 is used again before 4 and 5 arrive
        x = np.full((n, 4), n, np.float32)
        np.testing.assert_array_equal(f(x), x * 2 + 1)
    (executable, _, _), = f._cache.values()
    assert sorted(key[0][1] for key in executable.plans) == [1, 4, 5]
    assert f.trace_count == 1


# --- gradients over a symbolic batch -----------------------------------------------------
def _mlp_loss(params, x, y):
    h = tnp.maximum(x @ params["w1"] + params["b1"], 0.0)
    logits = h @ params["w2"] + params["b2"]
    return tnp.mean(F.sparse_softmax_cross_entropy_with_logits(y, logits))


def _params(dtype):
    rng = np.random.default_rng(1)
    return {"w1": rng.normal(size=(6, 5)).astype(dtype), "b1": rng.normal(size=5).astype(dtype),
            "w2": rng.normal(size=(5, 3)).astype(dtype), "b2": np.zeros(3, dtype)}


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_value_and_grad_over_a_symbolic_batch_matches_concrete_shapes(backend):
    params = _params(np.float32)
    specs = [None, spec(None, 6), spec(None, dtype=np.int32)]
    symbolic = tracejit.jit(tracejit.value_and_grad(_mlp_loss), input_specs=specs,
                            backend=backend)
    concrete = tracejit.jit(tracejit.value_and_grad(_mlp_loss), backend=backend)
    rng = np.random.default_rng(2)
    for n in (9, 4, 1):
        x = rng.normal(size=(n, 6)).astype(np.float32)
        y = rng.integers(0, 3, n).astype(np.int32)
        (v, g), (v2, g2) = symbolic(params, x, y), concrete(params, x, y)
        np.testing.assert_allclose(v, v2, rtol=1e-6)
        for k in g:
            np.testing.assert_allclose(g[k], g2[k], rtol=1e-5, atol=1e-7)
    assert symbolic.trace_count == 1 and concrete.trace_count == 3
    check_grads(lambda p: _mlp_loss(p, x, y), (params,), modes="rev")


def test_symbolic_gradient_agrees_with_finite_differences():
    params = _params(np.float64)
    specs = [None, spec(None, 6, dtype=np.float64), spec(None, dtype=np.int32)]
    loss = tracejit.jit(_mlp_loss, input_specs=specs)
    grad = tracejit.jit(tracejit.grad(_mlp_loss), input_specs=specs)
    rng = np.random.default_rng(3)
    for n in (5, 2):
        x, y = rng.normal(size=(n, 6)), rng.integers(0, 3, n).astype(np.int32)
        g = grad(params, x, y)
        for k in params:
            for idx in [(0,) * params[k].ndim, tuple(s - 1 for s in params[k].shape)]:
                up, down = ({**params, k: params[k].copy()} for _ in range(2))
                up[k][idx] += 1e-6
                down[k][idx] -= 1e-6
                fd = (loss(up, x, y) - loss(down, x, y)) / 2e-6
                assert g[k][idx] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    assert loss.trace_count == 1 and grad.trace_count == 1


def test_dropout_and_convolutions_over_a_symbolic_batch_equal_concrete_shapes():
    model = nn.models.lenet5()
    params = model.init(tracejit.random.key(0), (32, 32, 1))

    def forward(params, x, key):
        return model.apply(params, x, train=True, key=key)

    symbolic = tracejit.jit(forward, input_specs=[None, spec(None, 32, 32, 1)])
    concrete = tracejit.jit(forward)
    key = tracejit.random.key(5)
    for n in (3, 2):
        x = np.random.default_rng(n).normal(size=(n, 32, 32, 1)).astype(np.float32)
        np.testing.assert_allclose(symbolic(params, x, key), concrete(params, x, key),
                                   rtol=1e-5, atol=1e-6)
    assert symbolic.trace_count == 1


# --- errors -------------------------------------------------------------------------------
def _pair_loss(x, y):
    return tnp.sum(x, axis=1) - y


PAIR = tracejit.jit(_pair_loss, input_specs=[spec(None, 4), spec(None)])


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((3, 5), np.float32), np.zeros(3, np.float32), r"axis 1 must be 4"),
    (np.zeros((3,), np.float32), np.zeros(3, np.float32), r"rank 1.*rank 2"),
    (np.zeros((3, 4), np.float64), np.zeros(3, np.float32), r"dtype float64.*astype"),
    (np.zeros((3, 4), np.float32), np.zeros(2, np.float32), r"b is 3 in argument #0.*but 2"),
])
def test_an_argument_that_contradicts_its_spec_is_a_clear_error(x, y, message):
    with pytest.raises(SymbolicDimensionError, match=message) as e:
        PAIR(x, y)
    assert e.value.location.startswith(__file__)


def test_an_operation_that_needs_a_concrete_batch_size_says_so():
    def needs_int(x):
        return x * int(x.shape[0])

    def mixes_axes(x):
        return x.reshape(3, -1)   # 4*b elements in 3 rows: not for every b

    for fun in (needs_int, mixes_axes):
        f = tracejit.jit(fun, input_specs=[spec(None, 4)])
        with pytest.raises(SymbolicDimensionError, match="call jit without input_specs") as e:
            f(np.zeros((2, 4), np.float32))
        assert e.value.location.startswith(__file__)


def test_eval_shape_keeps_the_symbolic_dimension():
    out = tracejit.eval_shape(lambda x: (x @ W).sum(axis=1), spec(None, 4))
    assert out.shape == (B,) and repr(out) == "ShapeDtypeStruct(shape=(b,), dtype=float32)"


# --- the command line --------------------------------------------------------------------
def test_cli_prints_the_symbolic_dimension_and_the_output_parses_back(capsys):
    argv = ["ir", f"{ROOT / 'examples' / 'mlp.py'}:loss",
            "--arg", "params.W1=f32[784,300]", "--arg", "params.b1=f32[300]",
            "--arg", "params.W2=f32[300,100]", "--arg", "params.b2=f32[100]",
            "--arg", "params.W3=f32[100,10]", "--arg", "params.b3=f32[10]",
            "--arg", "x=f32[None,784]", "--arg", "y=i32[None]", "--stage", "simplified"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "f32[b,784]" in out and "i32[b]" in out and "f32[b,300]" in out
    fn = parse(out)
    verify(fn)
    assert str(fn) == out.rstrip("\n")
    with pytest.raises(SystemExit):
        cli.main(argv[:-1] + ["fused"])
    assert "give concrete sizes" in capsys.readouterr().err


@pytest.mark.parametrize("reduction", list(nn.losses.Reduction.all()))
def test_tf_losses_reduce_over_a_symbolic_batch(reduction):
    def loss(y, p):
        return (nn.losses.mean_squared_error(y, p, reduction=reduction)
                + nn.losses.hinge_loss(y, p, reduction=reduction))

    symbolic = tracejit.jit(loss, input_specs=[spec(None, 3), spec(None, 3)])
    for n in (4, 1, 0):
        rng = np.random.default_rng(n)
        y = (rng.random((n, 3)) > 0.5).astype(np.float32)
        p = rng.random((n, 3)).astype(np.float32)
        np.testing.assert_allclose(symbolic(y, p), tracejit.jit(loss)(y, p), rtol=1e-6)
    assert symbolic.trace_count == 1


def test_batch_norm_over_a_symbolic_batch_equals_concrete_shapes():
    layer = nn.BatchNorm()
    params, state = layer.init(tracejit.random.key(0), (5,))

    def forward(params, state, x):
        return layer.apply(params, x, state=state, train=True)

    symbolic = tracejit.jit(forward, input_specs=[None, None, spec(None, 5)])
    for n in (6, 2):
        x = np.random.default_rng(n).normal(size=(n, 5)).astype(np.float32)
        got, want = symbolic(params, state, x), tracejit.jit(forward)(params, state, x)
        for g, w in zip(tracejit.tree_leaves(got), tracejit.tree_leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert symbolic.trace_count == 1
