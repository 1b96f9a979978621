"""Recurrent cells against NumPy versions of TensorFlow's equations,
dynamic_rnn against the same cell unrolled in a Python loop, and
sequence_length masking."""
import numpy as np
import pytest

import tracejit
import tracejit.numpy as tnp
from tracejit import nn, random
from tracejit.tree import tree_map

KEY = random.key(0)
rng = np.random.default_rng(0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_lstm(p, c, h, x, forget_bias=1.0, peepholes=False):
    """TensorFlow's LSTMCell: gates i, j, f, o from one kernel."""
    z = np.concatenate([x, h], 1) @ p["kernel"] + p["bias"]
    i, j, f, o = np.split(z, 4, axis=1)
    wi, wf, wo = ((p["w_i_diag"], p["w_f_diag"], p["w_o_diag"]) if peepholes else (0, 0, 0))
    c = sigmoid(f + forget_bias + wf * c) * c + sigmoid(i + wi * c) * np.tanh(j)
    h = sigmoid(o + wo * c) * np.tanh(c)
    return c, h


def np_gru(p, h, x):
    r, u = np.split(sigmoid(np.concatenate([x, h], 1) @ p["gates"]["kernel"] + p["gates"]["bias"]),
                    2, axis=1)
    c = np.tanh(np.concatenate([x, r * h], 1) @ p["candidate"]["kernel"] + p["candidate"]["bias"])
    return u * h + (1 - u) * c


def as64(tree):
    return tree_map(lambda a: np.asarray(a, np.float64), tree)


def test_basic_rnn_cell():
    cell = nn.BasicRNNCell(5, activation="relu")
    p = cell.init(KEY, (3,))
    assert {k: v.shape for k, v in p.items()} == {"kernel": (8, 5), "bias": (5,)}
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 5))
    state, out = cell.apply(as64(p), h, x)
    np.testing.assert_allclose(out, np.maximum(np.concatenate([x, h], 1) @ p["kernel"], 0), rtol=1e-12)
    assert state is out
    assert cell.initial_state(4).shape == (4, 5)


@pytest.mark.parametrize("peepholes", [False, True])
def test_lstm_cell_matches_tensorflow_equations(peepholes):
    cell = nn.LSTMCell(4, use_peepholes=peepholes)
    p = as64(cell.init(KEY, (3,)))
    expected = {"kernel": (7, 16), "bias": (16,)}
    if peepholes:
        expected.update(w_f_diag=(4,), w_i_diag=(4,), w_o_diag=(4,))
        p["bias"] = rng.standard_normal(16)
    assert {k: v.shape for k, v in p.items()} == expected
    np.testing.assert_array_equal(cell.init(KEY, (3,))["bias"], 0)   # forget bias added at run time
    c, h, x = rng.standard_normal((2, 4)), rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    state, out = cell.apply(p, nn.LSTMStateTuple(c, h), x)
    ref_c, ref_h = np_lstm(p, c, h, x, peepholes=peepholes)
    assert isinstance(state, nn.LSTMStateTuple)
    np.testing.assert_allclose(state.c, ref_c, rtol=1e-12)
    np.testing.assert_allclose(state.h, ref_h, rtol=1e-12)
    np.testing.assert_allclose(out, ref_h, rtol=1e-12)


def test_gru_cell_matches_tensorflow_equations():
    cell = nn.GRUCell(4)
    p = cell.init(KEY, 3)
    assert tree_map(np.shape, p) == {"gates": {"kernel": (7, 8), "bias": (8,)},
                                     "candidate": {"kernel": (7, 4), "bias": (4,)}}
    np.testing.assert_array_equal(p["gates"]["bias"], 1.0)
    h, x = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    state, out = cell.apply(as64(p), h, x)
    np.testing.assert_allclose(out, np_gru(as64(p), h, x), rtol=1e-12)


def test_lstm_over_50_steps_matches_python_loop_and_numpy():
    cell = nn.LSTMCell(6)
    p = cell.init(KEY, (3,))
    x = rng.standard_normal((4, 50, 3)).astype(np.float32)
    outputs, final = tracejit.jit(lambda p, x: nn.dynamic_rnn(cell, p, x),
                                  backend="reference")(p, x)
    assert outputs.shape == (4, 50, 6)
    state, unrolled = cell.initial_state(4), []
    c, h = np.zeros((4, 6)), np.zeros((4, 6))
    for t in range(50):
        state, out = cell.apply(p, state, x[:, t])
        unrolled.append(out)
        c, h = np_lstm(as64(p), c, h, x[:, t].astype(np.float64))
    np.testing.assert_allclose(outputs, np.stack(unrolled, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.c, state.c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.h, h, rtol=1e-4, atol=1e-5)


def test_time_major_and_initial_state():
    cell = nn.GRUCell(3)
    p = cell.init(KEY, (2,))
    x = rng.standard_normal((5, 2, 2)).astype(np.float32)        # [time, batch, features]
    h0 = rng.standard_normal((2, 3)).astype(np.float32)
    outputs, final = nn.dynamic_rnn(cell, p, x, initial_state=h0, time_major=True)
    h = h0.astype(np.float64)
    for t in range(5):
        h = np_gru(as64(p), h, x[t])
        np.testing.assert_allclose(outputs[t], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final, h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", [nn.BasicRNNCell(3), nn.LSTMCell(3, use_peepholes=True),
                                  nn.GRUCell(3)])
def test_sequence_length_masks_outputs_and_freezes_state(cell):
    p = cell.init(KEY, (2,))
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    lengths = np.array([6, 2, 0], np.int32)
    outputs, final = tracejit.jit(lambda p, x, n: nn.dynamic_rnn(cell, p, x, sequence_length=n),
                                  backend="reference")(p, x, lengths)
    outputs = np.asarray(outputs)
    for b, n in enumerate(lengths):
        full, state = nn.dynamic_rnn(cell, p, x[b:b + 1, :n]) if n else (None, None)
        if n:
            np.testing.assert_allclose(outputs[b, :n], full[0], rtol=1e-5, atol=1e-6)
        assert np.all(outputs[b, n:] == 0)
        expected = state if n else cell.initial_state(1)
        for got, want in zip(tracejit.tree_leaves(final), tracejit.tree_leaves(expected)):
            np.testing.assert_allclose(got[b], want[0], rtol=1e-5, atol=1e-6)


def test_cell_driven_by_a_hand_written_scan():
    cell = nn.LSTMCell(4)
    p = cell.init(KEY, (3,))
    xs = rng.standard_normal((7, 2, 3)).astype(np.float32)
    final, ys = tracejit.scan(lambda s, x: cell.apply(p, s, x), cell.initial_state(2), xs)
    outputs, state = nn.dynamic_rnn(cell, p, xs, time_major=True)
    np.testing.assert_allclose(ys, outputs, rtol=1e-6)
    np.testing.assert_allclose(final.c, state.c, rtol=1e-6)


def test_rnn_gradient_matches_finite_differences():
    cell = nn.LSTMCell(3)
    p = as64(cell.init(KEY, (2,)))
    x = rng.standard_normal((2, 5, 2))
    lengths = np.array([5, 3])

    def loss(kernel):
        outputs, state = nn.dynamic_rnn(cell, {**p, "kernel": kernel}, x, sequence_length=lengths)
        return tnp.sum(outputs * outputs) + tnp.sum(state.c)
    g = np.asarray(tracejit.jit(tracejit.grad(loss), backend="reference")(p["kernel"]))
    v, h = rng.standard_normal(p["kernel"].shape), 1e-6
    numeric = (float(loss(p["kernel"] + h * v)) - float(loss(p["kernel"] - h * v))) / (2 * h)
    assert np.sum(g * v) == pytest.approx(numeric, rel=1e-6)


def test_rnn_layer_in_a_model():
    model = nn.Sequential([nn.RNN(nn.GRUCell(8)), nn.Dense(2)])
    params = model.init(KEY, (10, 3))
    assert sorted(params) == ["dense1", "rnn1"] and "gates" in params["rnn1"]
    x = rng.standard_normal((4, 10, 3)).astype(np.float32)
    y = model.apply(params, x)
    outputs, _ = nn.dynamic_rnn(nn.GRUCell(8), params["rnn1"], x)
    np.testing.assert_allclose(y, outputs[:, -1] @ params["dense1"]["kernel"], rtol=1e-5, atol=1e-6)
    seq = nn.RNN(nn.BasicRNNCell(5), return_sequences=True)
    assert seq.output_shape((10, 3)) == (10, 5)
    assert seq.apply(seq.init(KEY, (10, 3)), x).shape == (4, 10, 5)
    with pytest.raises(tracejit.ShapeError, match="time, features"):
        seq.init(KEY, (3,))
